"""Another program's lines in a syslog file (logformat.foreign): anyone may choose
their words (a user name given to sshd, a web form logged by a CGI), so none of them is
a row or any line of a row, whatever qmail-send's words it holds: the table (history
and lines appended), the delivery's story and the filter (compiled and Python loops)
alike, with syslog's stamps and ISO's."""

from __future__ import annotations

from pathlib import Path

import pytest

from qconsole import logfast
from qconsole.logformat import event, foreign, logsafe
from qconsole.logindex import LogIndex
from qconsole.logjoin import Joiner
from qconsole.logsource import LogSource
from tests.test_logs import OK_TEXT, _search, compiled_path

BSD = "Nov 24 10:00:0{} mail qmail: 1795000000.50000{} "
ISO = "2026-11-24T10:00:0{}.5+01:00 mail qmail: 1795000000.50000{} "
SSHD = {BSD: "Nov 24 10:00:02 mail sshd[77]: Invalid user ",
        ISO: "2026-11-24T10:00:02.123456+01:00 mail sshd[77]: Invalid user "}
# What another program's line may hold, between the delivery's start and its result,
# and what the row then shows if it is taken for qmail-send's.
FORGED = {
    "start": "starting delivery 7: msg 9 to remote spy@x.org from 192.0.2.1 port 4242",
    "info": "info msg 8: bytes 1 from <spy@x.org> qp 1 uid 2",
    "end": "end msg 8",
    "result": "delivery 7: failure: spy_bounced_it",
}


def _log(path: Path, pre: str, forged: str) -> Path:
    path.write_text("\n".join([
        pre.format(0, 0) + "new msg 8",
        pre.format(0, 0) + "info msg 8: bytes 300 from <a@b.org> qp 1 uid 2",
        pre.format(1, 1) + "starting delivery 7: msg 8 to remote real@x.org",
        SSHD[pre] + forged,
        pre.format(3, 3) + f"delivery 7: success: {logsafe(OK_TEXT)}",
        pre.format(3, 3) + "end msg 8"]) + "\n")
    return path


def _shown(index: LogIndex) -> list[tuple[str, str, str, str]]:
    rows = (index.row(i) for i in range(len(index)))
    return [(r.recipient, r.sender, r.msg, r.status) for r in rows]


REAL = [("real@x.org", "a@b.org", "8", "success")]


@pytest.mark.parametrize("pre", [BSD, ISO], ids=["syslog", "iso"])
@pytest.mark.parametrize("forged", FORGED, ids=list(FORGED))
def test_the_table_reads_no_line_of_another_program(tmp_path: Path, pre: str,
                                                    forged: str) -> None:
    log = _log(tmp_path / "maillog", pre, FORGED[forged])
    history = LogIndex(LogSource(log))
    for _ in history.scan_history(None):
        pass
    assert _shown(history) == REAL
    history.source.close()
    # The same lines appended while the console follows the log.
    text = log.read_bytes()
    log.write_bytes(b"")
    followed = LogIndex(LogSource(log))
    for _ in followed.scan_history(None):
        pass
    log.write_bytes(text)
    followed.follow()
    assert _shown(followed) == REAL
    followed.source.close()


@pytest.mark.parametrize("fast", [True, False], ids=["compiled", "python"])
@pytest.mark.parametrize("pre", [BSD, ISO], ids=["syslog", "iso"])
@pytest.mark.parametrize("forged", FORGED, ids=list(FORGED))
def test_the_filter_reads_no_line_of_another_program(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pre: str, forged: str,
        fast: bool) -> None:
    compiled_path(fast)
    monkeypatch.setattr(logfast, "ENABLED", fast)
    log = _log(tmp_path / "maillog", pre, FORGED[forged])
    for query, want in (("to:real@x.org", REAL), ("from:a@b.org", REAL), ("msg:8", REAL),
                        ("result:success", REAL), ("spy", []), ("msg:9", []),
                        ("result:failure", []), ("from:spy@x.org", [])):
        search = _search(LogIndex(LogSource(log)), query)
        assert _shown(search) == want, query
        search.index.source.close()


def test_the_story_of_a_delivery_joins_past_another_programs_line(tmp_path: Path) -> None:
    """The start and info lines a row is joined from are qmail-send's, looked up past
    the other program's lines that hold the same needles."""
    log = _log(tmp_path / "maillog", BSD, FORGED["start"])
    source = LogSource(log)
    data = log.read_bytes()
    result = data.index(b"delivery 7: success")
    result = data.rfind(b"\n", 0, result) + 1
    start, info = Joiner(source).join(result, 1)
    assert b"to remote real@x.org" in source.read_line(start)
    assert b"from <a@b.org>" in source.read_line(info)
    source.close()


@pytest.mark.parametrize("fast", [True, False], ids=["compiled", "python"])
def test_a_block_of_mostly_another_programs_events_is_read_alike(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    """The shape of a block's qmail-send lines is learned from its events: another
    program's lines that outnumber them are not what it is learned from."""
    compiled_path(fast)
    monkeypatch.setattr(logfast, "ENABLED", fast)
    lines = []
    for k in range(40):
        lines += [f"Nov 24 10:00:02 mail sshd[{k}]: Invalid user delivery {k}: success: x"
                  for _ in range(3)]
        lines += [BSD.format(0, 0) + f"info msg {k}: bytes 3 from <a@b.org> qp 1 uid 2",
                  BSD.format(1, 1) + f"starting delivery {k}: msg {k} to remote r@x.org",
                  BSD.format(3, 3) + f"delivery {k}: deferral: later", BSD.format(3, 3)
                  + f"end msg {k}"]
    log = tmp_path / "maillog"
    log.write_text("\n".join(lines) + "\n")
    for query in ("to:r@x.org", "result:success", "invalid"):
        search = _search(LogIndex(LogSource(log)), query)
        assert {s for *_, s in _shown(search)} == ({"deferral"} if query == "to:r@x.org"
                                                   else set()), query
        assert len(search) == (40 if query == "to:r@x.org" else 0)
        search.index.source.close()


@pytest.mark.parametrize(("line", "theirs"), [
    (b"Nov 24 10:00:02 mail sshd[77]: starting delivery 7: msg 9 to remote x", True),
    (b"Nov 24 10:00:02 mail qmail: 1795000000.500000 delivery 7: success: x", False),
    (b"Nov 24 10:00:02 mail qmail-send[8]: delivery 7: success: x", False),
    (b"Nov 24 10:00:02 mail splogger[3]: delivery 7: success: x", False),
    # qmail's servers log what their clients say (a HELO, with recordio).
    (b"Nov 24 10:00:02 mail qmail-smtpd[9]: 9 < HELO starting delivery 7: msg 9 to remote x",
     True),
    (b"2026-11-24T10:00:02Z mail qmail-pop3d[9]: delivery 7: success: x", True),
    (b"2026-11-24T10:00:02.5+01:00 mail cron[1]: delivery 7: success: x", True),
    (b"2026-11-24T10:00:02Z mail qmail: delivery 7: success: x", False),
    # Stamped without host and program: qmail-send's words where they would stand.
    (b"2026-11-24T10:00:02Z delivery 7: success: x", False),
    (b"2026-11-24 10:00:02.123456789 triple bounce: discarding bounce/9", False),
    (b"Nov 24 10:00:02 delivery 7: success: x", False),
    (b"@400000006adf9bf8280ae852 delivery 7: success: x", False),
])
def test_another_program_is_told_by_its_syslog_fields(line: bytes, theirs: bool) -> None:
    assert foreign(line) is theirs
    assert (event(line) is None) is theirs


@pytest.mark.parametrize(("first", "rows"), [
    ("", "0 rows"),
    # journalctl's own line (or sysklogd's "-- MARK --") is a raw row: still no delivery
    ("-- Logs begin at Mon 2026-11-23 08:00:01 UTC, end at Tue 2026-11-24 10:00:04 UTC. --",
     "1 row")], ids=["alone", "a raw row"])
def test_a_log_of_qmail_sends_lines_under_another_name_says_why_it_shows_none(
        tmp_path: Path, make_home, first: str, rows: str) -> None:
    """qmail-send's lines logged by a program not named qmail (systemd running
    /var/qmail/rc: ``rc[812]:``) are another program's: the view shows no delivery, and
    its status line says how many such lines were skipped and whose."""
    import asyncio

    from qconsole.app import QConsole
    from qconsole.logs_view import LogsView
    from tests.test_console_logs import _wait

    pre = "Nov 24 10:00:0{} mail rc[812]: "
    log = tmp_path / "maillog"
    log.write_text("\n".join([*([first] if first else []),
        pre.format(0) + "info msg 8: bytes 300 from <a@b.org> qp 1 uid 2",
        pre.format(1) + "starting delivery 7: msg 8 to remote real@x.org",
        pre.format(3) + f"delivery 7: success: {logsafe(OK_TEXT)}",
        "Nov 24 10:00:04 mail sshd[9]: Accepted publickey for root"]) + "\n")

    async def status() -> str:
        app = QConsole(make_home(), log=log)
        async with app.run_test(size=(200, 30)) as pilot:
            view = app.query_one(LogsView)
            await _wait(pilot, lambda: view.index is not None and view.index.history_done)
            shown = app.query_one("#log-status")
            await _wait(pilot, lambda: "skipped" in str(shown.render()), 5)
            return str(shown.render())

    said = asyncio.run(status())
    assert rows in said and "3 lines of rc[812] hold qmail-send's words" in said, said


@pytest.mark.parametrize(("line", "program"), [
    (b"Nov 24 10:00:02.5 mail sshd[77]: x", b"sshd[77]"),
    (b"2026-11-24T10:00:02Z mail cron[1]: x", b"cron[1]"),
    (b"1795000002.500000 mail rc[812]: x", b"rc[812]"),
    (b"@400000006adf9bf8280ae852 auth.info: Nov 24 10:00:02 sshd[77]: x", b"sshd[77]"),
    (b"@400000006adf9bf8280ae852 delivery 7: success: x", None),
])
def test_the_program_named_is_the_one_foreign_reads(line: bytes, program: bytes | None,
                                                     ) -> None:
    """The status line's hint names the program of the lines skipped: every stamp
    foreign() reads names it (one reading of syslog's fields for both)."""
    from qconsole.logformat import syslog_program

    assert syslog_program(line) == program
