"""Attack on session 8's console commits (logjoin's one-pass looks forwards, lines with
no event decided in the blocks, case_blind, Block.text_for, long lines, the fields'
priority keys): each test is a defect found, or a rule checked that held."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from qconsole.logformat import logsafe

_DETAIL = "route=relay local=127.0.0.2 remote=127.0.0.9:25 tls=none auth=none"


def _long_row(tmp_path: Path, text: str):
    """The only row of a log with one deferral whose report is ``text``, as the view
    shows it, and how many rows ``route:relay`` finds."""
    from qconsole.logindex import LogIndex
    from qconsole.logsource import LogSource
    from tests.test_logs import _search, delivery_lines

    log = tmp_path / "current"
    log.write_text("\n".join(delivery_lines(time.time(), 1, 1, "a@x.org", "deferral",
                                            text)) + "\n")
    index = LogIndex(LogSource(log))
    found = _search(index, "route:relay")
    try:
        return found.row(0) if len(found) else None, len(found)
    finally:
        index.source.close()


def test_a_long_row_whose_detail_line_is_over_32_kb_shows_its_route(tmp_path: Path) -> None:
    """A report over 64 KB whose detail line (its last) is over 32 KB: the view kept the
    line's last 32 KB from a ``/`` in them, there is none, so the row showed route
    ``?`` while ``route:relay`` found it (the filter reads the whole line)."""
    text = "451 " + "x" * 30_000 + "/" + _DETAIL + "a" * 40_000
    row, found = _long_row(tmp_path, text)
    assert found == 1
    assert (row.route, row.local, row.remote) == ("relay", "127.0.0.2", "127.0.0.9:25"), row


def test_a_row_over_16_mb_shows_its_route(tmp_path: Path) -> None:
    """A result line of 17 MiB (a report's lines, the detail line at its end): the
    filter ``route:relay`` finds it, and the row shows its route and how many bytes are
    not shown (read_long_line read 16 MiB of it only: the "tail" was the line's middle,
    route ``?``)."""
    text = "451 " + ("x" * 1000 + "/") * (17 << 10) + _DETAIL
    row, found = _long_row(tmp_path, text)
    assert found == 1
    assert (row.route, row.local) == ("relay", "127.0.0.2"), (row.route, row.reply[-200:])
    import re

    line = len(logsafe(text)) + len("@400000006adf9bf8280ae852 delivery 1: deferral: ")
    hidden = int(re.search(r"\[([\d,]+) bytes not shown\]", row.reply)[1].replace(",", ""))
    assert line - 65536 <= hidden <= line - 32768, (line, hidden)  # (32 KiB and a tail)


# -- logjoin: one look forwards for many numbers, against one a number ---------------

_NUM = ("1", "2", "12", "123", "3", "21")
_PIECES = (
    "starting delivery {n}: msg {m} to remote a@b.org", "delivery {n}: {s}: ok",
    "delivery {n}: {s}: ok/end msg {m}", "info msg {m}: bytes 5 from <a@b.org> qp 1",
    "end msg {m}", "end msg {m} ", "bounce msg {m} qp 2",
    "triple bounce: discarding bounce/{m}", "msg {m}", "msg {m}{m}", "delivery {n}: ",
    "status: local 0/10 remote 1/20", "x" * 40, "", "\r",
)


def _pieces():
    from hypothesis import strategies as st

    often = (_PIECES[0], _PIECES[3]) * 4  # lines naming several: the bulk pass
    piece = st.builds(lambda p, n, m, s: p.format(n=n, m=m, s=s),
                      st.sampled_from(_PIECES + often),
                      st.sampled_from(_NUM), st.sampled_from(_NUM),
                      st.sampled_from(("success", "deferral", "failure")))
    return st.lists(st.lists(piece, min_size=1, max_size=5).map("".join), max_size=30)


def _bulk_and_single(path: Path, monkeypatch_values: dict) -> None:
    from operator import itemgetter

    from qconsole import logjoin
    from qconsole.logjoin import INFO_NEEDLES, START_NEEDLES, Joiner
    from qconsole.logsource import LogSource

    saved = {k: getattr(logjoin, k) for k in monkeypatch_values}
    for k, v in monkeypatch_values.items():
        setattr(logjoin, k, v)
    source = LogSource(path)
    try:
        joiner = Joiner(source)
        offset = 0
        for line in path.read_bytes().split(b"\n")[:-1]:
            numbers = list(dict.fromkeys(map(itemgetter(1), START_NEEDLES.finditer(line))))
            msgs = list(dict.fromkeys(map(itemgetter(1), INFO_NEEDLES.finditer(line))))
            single = {n: joiner.row_after_start(offset, n) for n in numbers}
            assert joiner.rows_after_starts(offset, numbers) == {
                n: r for n, r in single.items() if r is not None}, line
            assert joiner.rows_after_infos(offset, msgs) == {
                m: list(joiner.rows_after_info(offset, m)) for m in msgs}, line
            offset += len(line) + 1
    finally:
        source.close()
        for k, v in saved.items():
            setattr(logjoin, k, v)


def test_one_look_forwards_with_small_chunks_and_limits(tmp_path_factory) -> None:
    """rows_after_starts / rows_after_infos against row_after_start / rows_after_info,
    with the reader's chunks small (MAX_LINE 8 to 64: needles cut across chunks,
    lines longer than a chunk read in pieces), JOIN_LIMIT small, CRLF lines."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=400, deadline=None)
    @given(_pieces(), st.sampled_from((8, 13, 64, 1 << 16)),
           st.sampled_from((20, 100, 1000, 64 << 20)), st.booleans())
    def check(pieces, max_line, limit, crlf) -> None:
        path = tmp_path_factory.mktemp("join") / "current"
        end = "\r\n" if crlf else "\n"
        path.write_bytes("".join(p + end for p in pieces).encode())
        _bulk_and_single(path, {"MAX_LINE": max_line, "JOIN_LIMIT": limit})

    check()


def _index(log: Path):
    from qconsole.logindex import LogIndex
    from qconsole.logsource import LogSource

    index = LogIndex(LogSource(log))
    for _ in index.scan_history():
        pass
    return index


def test_the_view_and_the_filter_read_an_at_line_the_same(tmp_path: Path) -> None:
    """Two lines starting with ``@`` that are not multilog stamps, each holding an event
    in its first 26 bytes and another at byte 26 (a mixed log's other program, or a
    multilog line cut by a crash)."""
    from tests.test_logs import _search

    log = tmp_path / "current"
    a, b = "@delivery 12: failure: xxx", "@new msg 3 000000000000000"
    assert len(a) == len(b) == 26
    log.write_text(f"{a}new msg 3\n{b}delivery 12: failure: yyy\n")
    index = _index(log)
    try:
        view = [(index.row(i).status, index.row(i).reply) for i in range(len(index))]
        found = _search(index, "result:failure")
        filtered = [(found.row(i).status, found.row(i).reply) for i in range(len(found))]
        assert filtered == [r for r in view if r[0] == "failure"], (view, filtered)
    finally:
        index.source.close()


# -- lines with no event decided in the blocks, against the row-by-row oracle ---------

_OTHER = (
    "", " ", "   ", "\t", " \r", "\r",
    "{s} sshd[1]: password for bob from 192.0.2.1",
    "{s} cron: msg of the day for bob",
    "{s} bounce rate 5% for bob",
    "{s} deliveryman bob rang",
    "{s} the delivery 5 of bob",
    "{s} status:bob",
    "{s} msg {m}x bob",
    "{s} bob end msg {m}",
    "Nov 24 10:00:00 mail sshd[1]: bob msg {m} bounce status: x",
    "Nov 24 10:00:00 mail qmail: garbage for bob",
    "Nov 24 10:00:00 mail splogger: bob said Hi",
    "Nov 24 10:00:00 mail postfix/smtp[9]: to=<bob@y.org> status=sent",
    "bob\r", "garbage Bob\xe9 caf\xc9",
    "{s} 4000 @4000 12: msg",
    "{s} starting delivery {n}: msg {m} to nowhere bob",  # a start needle, no event
    "{s} info msg {m}: no bytes from bob",  # an info needle, no event
    "bob starting delivery {n}: msg {m} to remote spy@x.org\r",
)
_OTHER_QUERIES = (
    "bob", "/bob/", "/Bob/", "garbage", "-to:x.org bob", "bob -from:b.org", "sshd result:raw",
    "/^ +$/", "/[0-9]+/", "/\\d: /", "@4000", "sshd", "-bob", "garbage -/bob/ result:raw",
    "msg", "status", "/\\s$/", "caf\xe9", "/caf./", "-from:b.org garbage",
    "-to:bob@y.org /bob/", "12", "5%", "-msg:1 bob", "-/nowhere/ x.org", "-bob x.org",
    "-bob -to:x.org garbage", "nowhere", "-from:b.org -bob /o/", "to:spy@x.org bob",
)


def _with_others(draw_log):
    from hypothesis import strategies as st

    from tests.test_logs import NUMBERS, stamp

    @st.composite
    def logs(draw):
        lines = draw(draw_log)
        rnd = draw(st.randoms())
        for _ in range(draw(st.integers(0, 40))):
            line = rnd.choice(_OTHER).format(s=stamp(1_795_000_100), m=rnd.choice(NUMBERS),
                                             n=rnd.choice(NUMBERS))
            lines.insert(rnd.randrange(len(lines) + 1), line)
        if draw(st.booleans()):  # CRLF on some lines
            lines = [line + "\r" if rnd.random() < 0.3 else line for line in lines]
        return lines

    return logs()


@pytest.mark.parametrize("fast", [True, False], ids=["compiled", "python"])
def test_lines_with_no_event_found_as_row_by_row(tmp_path_factory, fast) -> None:
    """The oracle of test_logs (blocks of any size, helpers or not, dense or not) on
    logs full of other programs' lines: multilog-stamped and syslog ones, empty lines and
    lines of spaces, lines holding ``msg ``, ``bounce``, ``status:`` but no event, CRLF;
    filters that find raw rows, also while waiting for older blocks (an exclusion of a
    start or info line's term)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tests import test_logs
    from tests.test_logs import QUERIES, any_log

    oracle = test_logs.test_the_bulk_search_finds_what_a_row_by_row_filter_finds
    inner = oracle.hypothesis.inner_test

    @settings(max_examples=300, deadline=None)
    @given(_with_others(any_log()), st.sampled_from(_OTHER_QUERIES + QUERIES[:12]),
           st.sampled_from((300, 700, 2000, 1 << 20)), st.sampled_from((0.2, 1, 5)),
           st.sampled_from((0, 2, 4096)), st.booleans(), st.sampled_from((0, 1, 64)))
    def check(lines, query, block, reach, dense, helpers, dense_infos) -> None:
        inner(tmp_path_factory, fast, lines, query, block, reach, dense, helpers,
              dense_infos)

    check()


def test_an_appended_row_over_64_kb_is_filtered_as_in_the_history(tmp_path: Path) -> None:
    """The same deferral over 64 KB (its detail line at the end), once in the history
    and once appended while ``route:relay`` is the filter: the history's is found (the
    search reads a row's line up to 16 MB), the appended one was not (newer_matches
    read its first 64 KB only)."""
    from qconsole.logindex import LogIndex
    from qconsole.logsource import LogSource
    from tests.test_logs import _search, delivery_lines, write

    text = "451 " + "x" * 100_000 + "\n" + _DETAIL
    log = tmp_path / "current"
    now = time.time()
    write(log, delivery_lines(now, 1, 1, "a@x.org", "deferral", text))
    index = LogIndex(LogSource(log))
    try:
        found = _search(index, "route:relay")
        assert [found.row(i).recipient for i in range(len(found))] == ["a@x.org"]
        write(log, delivery_lines(now + 5, 2, 2, "b@x.org", "deferral", text))
        index.follow()
        found.scan_newer()
        assert [found.row(i).recipient for i in range(len(found))] == ["a@x.org", "b@x.org"]
        assert found.row(1).route == "relay"
    finally:
        index.source.close()


def test_a_long_row_without_a_detail_line_is_still_cut(tmp_path: Path) -> None:
    """A report over 64 KB with a ``/`` near its start and none after (no detail line:
    a stock qmail-remote's long reply): shown cut to about 64 KB as before, not whole."""
    row, found = _long_row(tmp_path, "451 x\n" + "y" * 200_000)
    assert found == 0
    from qconsole.logindex import LogIndex
    from qconsole.logsource import LogSource

    index = LogIndex(LogSource(tmp_path / "current"))
    try:
        for _ in index.scan_history():
            pass
        row = index.row(0)
        assert row.route == "?" and "bytes not shown]" in row.reply, row.route
        assert len(row.reply) < 70_000
    finally:
        index.source.close()


@pytest.mark.parametrize("query", ["-bob", "-to:a@x.org", "-result:success", "-/x/",
                                   "garbage", "/ +/"])
def test_appended_lines_with_no_event_are_filtered_as_in_the_history(
        tmp_path: Path, query: str) -> None:
    """A log with a delivery and a line of garbage; the same again appended while the
    filter is set. A filter of exclusions only shows no line without an event in the
    history (raw_row_matches), but showed the appended one (newer_matches read it with
    query.matches alone). Should: after the append, the rows of the whole log, as the
    row-by-row oracle finds them."""
    from qconsole.logindex import LogIndex
    from qconsole.logsource import LogSource
    from tests.test_logs import OK_TEXT, _search, delivery_lines, row_by_row, write

    log = tmp_path / "current"
    now = time.time()
    other = ["garbage one", "   ", "Nov 24 10:00:00 mail sshd[1]: bob"]
    write(log, delivery_lines(now, 1, 1, "a@x.org", "success", OK_TEXT) + other)
    index = LogIndex(LogSource(log))
    try:
        found = _search(index, query)
        write(log, delivery_lines(now + 9, 2, 2, "b@x.org", "success", OK_TEXT) + other)
        index.follow()
        found.scan_newer()
        got = sorted(found.locate(i)[0].result[found.locate(i)[1]] for i in range(len(found)))
        assert got == sorted(r[0] for r in row_by_row(log, query)), query
    finally:
        index.source.close()


@pytest.mark.xfail(strict=True, reason="newer_matches filters an appended row with the "
                   "index's joins (a start or info line is an event), the history's "
                   "search with logjoin's (the nearest line holding the needle): a line "
                   "holding another delivery's start needle joins differently")
def test_an_appended_row_is_joined_as_in_the_history(tmp_path: Path) -> None:
    """Delivery 3 of ann, then a line holding delivery 3's start needle (not a qmail-send
    log: its replies have ``_`` for spaces), then delivery 3's result. In the history
    ``spy`` finds delivery 3 (joined to the line naming spy) and ``to:ann@x.org`` does
    not; appended, the other way round."""
    from qconsole.logindex import LogIndex
    from qconsole.logsource import LogSource
    from tests.test_logs import _search, row_by_row, stamp, write

    s = stamp(1_795_000_000)
    lines = [f"{s} info msg 1: bytes 300 from <a@b.org> qp 1 uid 2",
             f"{s} starting delivery 3: msg 1 to remote ann@x.org",
             f"{s} delivery 7: deferral: said starting delivery 3: msg 1 to remote spy@x.org",
             f"{s} delivery 3: success: ok", f"{s} end msg 1"]
    log = tmp_path / "current"
    for query in ("spy", "to:ann@x.org"):
        log.write_text("")
        index = LogIndex(LogSource(log))
        try:
            found = _search(index, query)
            write(log, lines)
            index.follow()
            found.scan_newer()
            got = sorted(found.locate(i)[0].result[found.locate(i)[1]]
                         for i in range(len(found)))
            assert got == sorted(r[0] for r in row_by_row(log, query)), query
        finally:
            index.source.close()


def test_a_long_last_line_that_is_no_detail_line_is_still_cut(tmp_path: Path) -> None:
    """The last line of a report over 64 KB starting ``route=`` but 200 KB long (a
    remote's reply copied by a stock qmail-remote): shown cut, not whole."""
    from qconsole.logsource import LogSource
    from tests.test_logs import delivery_lines

    log = tmp_path / "current"
    log.write_text("\n".join(delivery_lines(time.time(), 1, 1, "a@x.org", "deferral",
                                            "451 x\nroute=" + "y" * 200_000)) + "\n")
    data = log.read_bytes()
    offset = data.rfind(b"\n", 0, data.index(b"delivery 1: deferral")) + 1
    source = LogSource(log)
    shown = source.read_long_line(offset)
    source.close()
    assert b"bytes not shown]" in shown and len(shown) < 100_000


# -- the fields' priority keys ---------------------------------------------------------

async def _case_escape_in_the_field_during_a_probe(home: Path, mute) -> dict:
    from textual.widgets import Input

    from qconsole.app import QConsole
    from tests.test_console_probe import SIZE, probing

    app = QConsole(home)
    out: dict = {}
    async with app.run_test(size=SIZE) as pilot:
        view, output = await probing(app, pilot, mute)
        sender = app.query_one("#sender", Input)
        sender.focus()
        await pilot.pause()
        await pilot.press("escape", "escape", "z")  # one burst
        await pilot.pause()
        out["cancelled"] = "Probe cancelled" in str(output.render()) and not view.probing
        out["left"] = app.focused is view.query_one("#simulate-scroll")
        out["values"] = (sender.value, app.query_one("#recipients", Input).value)
        await pilot.press("tab")
        await pilot.pause()
        out["tab"] = type(app.focused).__name__
        await pilot.press(*"x@y.org", "enter")
        await pilot.pause()
        out["typed"] = sender.value
        out["screen"] = type(app.screen).__name__
        mute.release()  # (the cancelled probe's attempt ends now)
        await app.workers.wait_for_complete()
        await pilot.press("ctrl+q")
        await pilot.pause()
        out["quit"] = not app.is_running
    return out


def test_escape_in_a_field_during_a_probe_cancels_once_and_types_nothing(
        make_home, monkeypatch) -> None:
    """Held: a probe waiting on a mute server, the sender field focused; Escape, Escape,
    z in one burst cancels the probe, leaves the field, types nothing; Ctrl+Q quits."""
    import asyncio

    from qconsole import simulate_view
    from tests.test_console_probe import Mute, _home

    monkeypatch.setattr(simulate_view, "PROBE_READ_TIMEOUT", 30.0)
    mute = Mute()
    try:
        out = asyncio.run(_case_escape_in_the_field_during_a_probe(
            _home(make_home, mute.port), mute))
    finally:
        mute.release()
    assert out["cancelled"] and out["left"], out
    assert out["values"] == ("a@b.org", "c@d.org"), out
    # Tab from the output goes on to the view's tabs (not a field): what is typed then
    # is the view's keys, none of which opens anything here.
    assert (out["tab"], out["typed"], out["screen"]) == ("ContentTabs", "a@b.org", "Screen")
    assert out["quit"], out


async def _case_quit_during_a_probe(home: Path, mute) -> bool:

    from qconsole.app import QConsole
    from tests.test_console_probe import SIZE, probing

    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await probing(app, pilot, mute)
        app.query_one("#recipients").focus()
        await pilot.pause()
        await pilot.press("ctrl+q")
        await pilot.pause()
        return not app.is_running


def test_ctrl_q_during_a_probe_does_not_wait_for_the_probe(make_home, monkeypatch) -> None:
    """Ctrl+Q from the recipients field while a probe waits on a mute server: the
    console is closed at once, and so is its event loop (``asyncio.run``, as qconsole
    runs): when the app's run returns, the probe's connection is still open (its read
    times out in 3 s here). Before, the probe ran on the loop's default executor, which
    asyncio.run joins: the shell prompt came back only when the attempt ended."""
    import asyncio
    import socket

    from qconsole import simulate_view
    from tests.test_console_probe import Mute, _home

    monkeypatch.setattr(simulate_view, "PROBE_READ_TIMEOUT", 3.0)
    mute = Mute()
    try:
        quit_ = asyncio.run(_case_quit_during_a_probe(_home(make_home, mute.port), mute))
        assert quit_
        conn = mute.conns[0]
        try:
            closed = conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            closed = False
        assert not closed, "qconsole's run returned only once the probe had given up"
    finally:
        mute.release()


def test_result_raw_shows_the_raw_lines_or_says_why(tmp_path: Path) -> None:
    """``result:raw`` (or ``result:r``) over a log with a garbage line: accepted without
    a word, and shows nothing. Should: the garbage line, or a QueryError saying why."""
    from qconsole.logquery import QueryError, parse_query
    from tests.test_logs import OK_TEXT, _search, delivery_lines, write

    log = tmp_path / "current"
    write(log, [*delivery_lines(time.time(), 1, 1, "a@x.org", "success", OK_TEXT),
                "garbage line"])
    try:
        parse_query("result:raw")
    except QueryError:
        return
    index = _index(log)
    try:
        found = _search(index, "result:raw")
        assert [found.row(i).status for i in range(len(found))] == ["raw"]
    finally:
        index.source.close()
