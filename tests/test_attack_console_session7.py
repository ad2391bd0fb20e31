"""Issue 11's logs view tried again as an operator would (session 7): qconsole in tmux at
80x24, 120x40 and 200x60 on 1 GB logs (multilog, syslog, splogger, a busy multilog
directory with rotated files) and logs made by hand, filters typed as fast as a person
does. Each test is one stumble found there, reproduced with Pilot.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Input

from qconsole.app import QConsole
from qconsole.delivery_screen import DeliveryScreen
from tests.test_console_keys import _log, _ready

# ctrl+q while the filter box has the focus did nothing: the filter of a 1 GB log was
# still searching, the operator pressed ctrl+q to leave, and the console stayed (quit
# was a single key, and single keys are typed in a text field). A control key is never
# text: ctrl+q quits from the filter box, Simulate's fields and the story alike.

async def _case_ctrl_q(log: Path, keys: tuple[str, ...]) -> tuple[bool, str]:
    app = QConsole(Path("/nonexistent-qmail-home"), log=log)
    async with app.run_test(size=(80, 24)) as pilot:
        await _ready(pilot)
        await pilot.press(*keys)
        await pilot.pause()
        where = "Input" if isinstance(app.focused, Input) else type(
            app.screen).__name__
        await pilot.press("ctrl+q")
        await pilot.pause()
        return app.is_running, where


def test_ctrl_q_quits_from_the_filter_box(tmp_path: Path) -> None:
    running, where = asyncio.run(_case_ctrl_q(_log(tmp_path), ("slash", *"anne")))
    assert where == "Input" and not running


def test_ctrl_q_quits_from_simulate_and_the_story(tmp_path: Path) -> None:
    log = _log(tmp_path)
    running, where = asyncio.run(_case_ctrl_q(log, ("3",)))
    assert where == "Input" and not running
    running, where = asyncio.run(_case_ctrl_q(log, ("enter",)))
    assert where == DeliveryScreen.__name__ and not running


# A log with two prefixes (multilog's stamp on some lines, syslog's on others: a log
# moved from one logger to the other, or merged) and replies over 64 KB: `/route=route9/`
# found 20 of the 40 rows holding it in the console, the multilog ones. A line of the
# block's own prefix is searched whole in the block; one of the other prefix was read
# the exact way, cut at 64 KB, and its end (the words after the long reply) never seen.

def _mixed_long_lines(log: Path, reply: int) -> None:
    lines = []
    for i in range(40):
        pre = ("Oct 27 00:33:49 mail qmail-send[2741]: " if i % 2
               else "@400000006adf9bf8280ae852 ")
        lines += [f"{pre}new msg {i}",
                  f"{pre}info msg {i}: bytes 2000 from <a@b.test> qp 1 uid 1",
                  f"{pre}starting delivery {i + 1}: msg {i} to remote u{i}@d.test",
                  f"{pre}delivery {i + 1}: success: ok./Remote_host_said:_250_{'x' * reply}"
                  "_route=route9/route=r3_local=1.2.3.4_remote=5.6.7.8:25_tls=none_auth=none",
                  f"{pre}end msg {i}"]
    log.write_text("\n".join(lines) + "\n")


def test_a_long_line_of_the_other_prefix_is_searched_whole(tmp_path: Path) -> None:
    from qconsole.logindex import LogIndex
    from qconsole.logsource import LogSource
    from tests.test_logs import _search, row_by_row

    log = tmp_path / "current"
    _mixed_long_lines(log, 100_000)
    for query in ("/route=route9/", "route9"):
        expected = sorted(e[0] for e in row_by_row(log, query))
        search = _search(LogIndex(LogSource(log)), query)
        found = []
        for i in range(len(search)):
            rows, j = search.locate(i)
            found.append(rows.result[j])
        assert len(expected) == 40
        assert sorted(found) == expected, query


# A log written with CRLF line ends (a writer loop appending them, as a log copied from
# another system has them): the rows showed route4, auth none and the recipient without
# the "\r", but `route:route4` and `auth:none` found only the LF rows, `to:d.test` the
# same, and `to:u1@d.test` nothing: the filter read the detail line and the recipient
# with the "\r" the row leaves out.

def _crlf_log(log: Path) -> None:
    lines = []
    for i in range(40):
        pre, end = "@400000006adf9bf8280ae852 ", "\r" if i % 2 else ""
        lines += [f"{pre}new msg {i}{end}",
                  f"{pre}info msg {i}: bytes 2000 from <a@b.test> qp 1 uid 1{end}",
                  f"{pre}starting delivery {i + 1}: msg {i} to remote u{i}@d.test{end}",
                  f"{pre}delivery {i + 1}: deferral: Sorry./route=route4_local=127.0.0.4_"
                  f"remote=127.0.0.40:25_tls=none_auth=none{end}",
                  f"{pre}end msg {i}{end}"]
    log.write_text("\n".join(lines) + "\n")


def test_fields_of_crlf_lines_are_filtered_as_the_rows_show_them(tmp_path: Path) -> None:
    from qconsole.logindex import LogIndex
    from qconsole.logsource import LogSource
    from tests.test_logs import _search, row_by_row

    log = tmp_path / "current"
    _crlf_log(log)
    index = LogIndex(LogSource(log))
    for _ in index.scan_history():
        pass
    shown = [index.row(i) for i in range(len(index))]
    assert {(r.route, r.auth, r.recipient[-7:]) for r in shown} == {
        ("route4", "none", "@d.test")}
    for query, count in (("route:route4", 40), ("auth:none", 40), ("ip:127.0.0.4", 40),
                         ("to:d.test", 40), ("to:u1@d.test", 1), ("to:u1*", 11),
                         ("-route:route4", 0)):
        assert len(_search(index, query)) == count, query
        assert len(row_by_row(log, query)) == count, query
