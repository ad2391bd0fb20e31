"""Issue 11 tried again on another program's syslog lines (session 9): logs not in the
repository, hosts and programs as real machines name them, lines as long as a syslog
daemon may be told to let them be."""

from __future__ import annotations

from pathlib import Path

import pytest

from qconsole import logbulk, logfast
from qconsole.logformat import event, foreign, logsafe
from qconsole.logindex import LogIndex
from qconsole.logjoin import Joiner
from qconsole.logsource import LogSource
from tests.test_logs import OK_TEXT, _search, compiled_path

SPY = "Invalid user starting delivery 7: msg 9 to remote spy@x.org from 192.0.2.1"
REAL = [("real@x.org", "a@b.org", "8", "success")]


def _log(path: Path, host: str, forged: str, iso: bool = False) -> Path:
    """Delivery 7 of message 8 on a host named ``host``, another program's line (sshd's,
    on the same host) holding ``forged`` between its start and its result."""
    stamp = "2026-11-24T10:00:0{}.5+01:00" if iso else "Nov 24 10:00:0{}"
    pre = stamp + f" {host} qmail: 179500000{{}}.500000 "
    path.write_bytes("\n".join([
        pre.format(0, 0) + "new msg 8",
        pre.format(0, 0) + "info msg 8: bytes 300 from <a@b.org> qp 1 uid 2",
        pre.format(1, 1) + "starting delivery 7: msg 8 to remote real@x.org",
        stamp.format(2) + f" {host} sshd[77]: " + forged,
        pre.format(3, 3) + f"delivery 7: success: {logsafe(OK_TEXT)}",
        pre.format(3, 3) + "end msg 8"]).encode() + b"\n")
    return path


def _shown(view) -> list[tuple[str, str, str, str]]:
    rows = (view.row(i) for i in range(len(view)))
    return [(r.recipient, r.sender, r.msg, r.status) for r in rows]


# A mail server named "delivery" (delivery.example.org: syslog writes the short name)
# or "triple": its sshd's lines begin, after the stamp, with an event's first word.
@pytest.mark.parametrize("iso", [False, True], ids=["syslog", "iso"])
@pytest.mark.parametrize("host", ["delivery", "triple"])
def test_a_host_named_as_an_event_begins_still_runs_other_programs(
        tmp_path: Path, host: str, iso: bool) -> None:
    log = _log(tmp_path / "maillog", host, SPY, iso)
    index = LogIndex(LogSource(log))
    for _ in index.scan_history(None):
        pass
    assert _shown(index) == REAL
    index.source.close()
    for fast in (True, False):
        compiled_path(fast)
        was, logfast.ENABLED = logfast.ENABLED, fast
        try:
            for query, want in (("to:real@x.org", REAL), ("spy", []), ("msg:9", [])):
                search = _search(LogIndex(LogSource(log)), query)
                assert _shown(search) == want, (query, fast)
                search.index.source.close()
        finally:
            logfast.ENABLED = was
    source = LogSource(log)
    data = log.read_bytes()
    result = data.rfind(b"\n", 0, data.index(b"delivery 7: success")) + 1
    start, _ = Joiner(source).join(result, 1)
    assert b"to remote real@x.org" in source.read_line(start)
    source.close()


@pytest.mark.parametrize(("line", "theirs"), [
    (b"Nov 24 10:00:02 delivery sshd[77]: " + SPY.encode(), True),
    (b"Nov 24 10:00:02 triple sshd[77]: " + SPY.encode(), True),
    (b"Nov 24 10:00:02 delivery cron[1]: delivery 7: success: x", True),
    (b"2026-11-24T10:00:02Z delivery kernel: [ 1.0] delivery 7: success: x", True),
    (b"Nov 24 10:00:02 delivery qmail: 1795000000.500000 delivery 7: success: x", False),
    # qmail-send's own words where a host and a program would stand
    (b"Nov 24 10:00:02 delivery 7: success: x", False),
    (b"2026-11-24 10:00:02.123456789 delivery 12: failure: x", False),
    (b"2026-11-24 10:00:02.123456789 triple bounce: discarding bounce/9", False),
])
def test_an_event_word_as_host_alone_is_no_event(line: bytes, theirs: bool) -> None:
    """Only a host and a program that are an event's first two words (``delivery N:``,
    ``triple bounce:``) read as qmail-send's line stamped without them; the compiled
    loop says the same."""
    assert foreign(line) is theirs
    assert (event(line) is None) is theirs
    compiled_path(True)
    found = logbulk.foreign_lines(line + b"\n", logfast.load())
    assert found == (([0], [len(line)]) if theirs else ([], []))


def _long_log(path: Path, size: int, forged: str) -> Path:
    """Delivery 7 of message 8, and sshd's line of ``size`` bytes ending with
    ``forged`` (rsyslog writes lines as long as its $MaxMessageSize, which an operator
    may raise): before the start line for a forged info line, else after it."""
    pre = "Nov 24 10:00:0{} mail qmail: 179500000{}.500000 "
    sshd = ["Nov 24 10:00:02 mail sshd[77]: Invalid user " + "A" * size + " " + forged,
            *(pre.format(1, 1) + f"status: local 0/10 remote {k}/20" for k in range(50))]
    info = forged.startswith("info")
    path.write_bytes("\n".join([
        pre.format(0, 0) + "new msg 8",
        pre.format(0, 0) + "info msg 8: bytes 300 from <a@b.org> qp 1 uid 2",
        *(sshd if info else []),
        pre.format(1, 1) + "starting delivery 7: msg 8 to remote real@x.org",
        *([] if info else sshd),
        pre.format(3, 3) + f"delivery 7: success: {logsafe(OK_TEXT)}",
        pre.format(3, 3) + "end msg 8"]).encode() + b"\n")
    return path


@pytest.mark.parametrize(("size", "forged"), [
    # longer than LogSource.find_back reads back from inside a line (128 KiB)
    (200_000, "starting delivery 7: msg 9 to remote spy@x.org"),
    (200_000, "info msg 8: bytes 1 from <spy@x.org> qp 1 uid 2"),
    # longer than LogSource.forward's largest chunk (1 MiB): a look forwards for
    # another result of delivery 7 between its start and its result
    (1_500_000, "delivery 7: failure: spy_said_no"),
    (1_500_000, "starting delivery 7: msg 9 to remote spy@x.org"),
], ids=["start-200k", "info-200k", "result-1.5M", "start-1.5M"])
def test_a_long_line_of_another_program_is_none_of_a_rows_lines(
        tmp_path: Path, size: int, forged: str) -> None:
    """The joins find a needle inside a long line from inside it: whose line it is,
    is told by where it begins (the bulk search's blocks hold the line whole and blank
    it). The filter's rows, their story, and its row-by-row oracle agree."""
    from tests.test_logs import row_by_row

    log = _long_log(tmp_path / "maillog", size, forged)
    source = LogSource(log)
    data = log.read_bytes()
    result = data.rfind(b"\n", 0, data.index(b"delivery 7: success")) + 1
    start, info = Joiner(source).join(result, 1)
    assert source.read_line(start).endswith(b"to remote real@x.org")
    assert b"from <a@b.org>" in source.read_line(info)
    source.close()
    for query, want in (("to:real@x.org", REAL), ("from:a@b.org", REAL), ("spy", []),
                        ("result:failure", [])):
        assert len(row_by_row(log, query)) == len(want), query
        search = _search(LogIndex(LogSource(log)), query)
        assert _shown(search) == want, query
        search.index.source.close()


def test_the_table_reads_no_piece_of_another_programs_line_longer_than_a_chunk(
        tmp_path: Path) -> None:
    """The index reads a line longer than its 1 MiB chunks whole (up to LONG_LINE, as
    the filter's blocks do): it read it in pieces, each a line without stamp, and
    qmail-send's words in a piece of sshd's line made a forged failure row (the real
    result lost its start)."""
    log = _long_log(tmp_path / "maillog", 1_500_000, "delivery 7: failure: spy_said_no")
    index = LogIndex(LogSource(log))
    for _ in index.scan_history(None):
        pass
    assert _shown(index) == REAL
    index.source.close()


@pytest.mark.parametrize("helpers", [False, True], ids=["here", "helpers"])
@pytest.mark.parametrize("fast", [True, False], ids=["compiled", "python"])
def test_the_filter_reads_no_piece_of_another_programs_line_longer_than_a_block(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool, helpers: bool,
        ) -> None:
    """A block is read back to where its first line begins, up to LONG_LINE (it cut
    a line longer than the block and 64 KiB, and the piece, without its stamp, was
    not blanked: a forged failure row of the real recipient). In the console: a line
    longer than HELPER_BLOCK (4 MiB) in a history searched by helper processes, which
    the console's own 16 MiB blocks held whole (another answer)."""
    from qconsole import logsearch, logworkers

    if helpers and not logworkers.helpers_wanted():
        pytest.skip("one CPU: no helper process")
    compiled_path(fast)
    monkeypatch.setattr(logfast, "ENABLED", fast)
    if helpers:  # the console's blocks as they are, the helpers' small
        monkeypatch.setattr(logsearch, "HELPER_BLOCK", 3000)
        monkeypatch.setattr(logsearch, "PARALLEL_BLOCKS", 0)
    else:  # (small blocks, as the oracle's property test has them)
        monkeypatch.setattr(logsearch, "BLOCK", 3000)
        monkeypatch.setattr(logsearch, "PARALLEL_BLOCKS", 1 << 40)
    log = _long_log(tmp_path / "maillog", 200_000, "delivery 7: failure: spy_said_no")
    for query, want in (("to:real@x.org", REAL), ("result:failure", []), ("spy", [])):
        search = _search(LogIndex(LogSource(log)), query)
        assert _shown(search) == want, query
        search.index.source.close()


# journalctl writes each further line of a message of many lines indented under its
# first (-o short, short-iso, short-precise): another program's line, without stamp.
JOURNAL = ("2026-11-24T10:00:02+0100 mail webapp[77]: form from 192.0.2.1:\n"
           + " " * 40 + "starting delivery 7: msg 9 to remote spy@x.org")
# journalctl -o short-precise (and syslog-ng's frac-digits()): a syslog stamp with
# microseconds, which neither _SYSLOG nor qc_foreign read (now they do; and a line
# beginning with a blank is another program's).
PRECISE = "Nov 24 10:00:02.123456 mail sshd[77]: " + SPY


@pytest.mark.parametrize("line", [JOURNAL, PRECISE], ids=["continued", "short-precise"])
def test_journalctl_output_of_another_program_is_none_of_a_rows_lines(
        tmp_path: Path, line: str) -> None:
    pre = "2026-11-24T10:00:0{}+0100 mail qmail-send[8]: "
    log = tmp_path / "journal"
    log.write_text("\n".join([
        pre.format(0) + "info msg 8: bytes 300 from <a@b.org> qp 1 uid 2",
        pre.format(1) + "starting delivery 7: msg 8 to remote real@x.org",
        line,
        pre.format(3) + f"delivery 7: success: {logsafe(OK_TEXT)}",
        pre.format(3) + "end msg 8"]) + "\n")
    index = LogIndex(LogSource(log))
    for _ in index.scan_history(None):
        pass
    assert _shown(index) == REAL
    index.source.close()


def test_a_look_back_past_many_lines_of_another_program_reads_each_block_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sshd logs each failed login: an attacker's user names repeating a start needle
    lie between a delivery's start and its result. The join looks past them in the
    blocks it reads (about 16 reads of 64 KiB for 1 MiB of them), not with a read of
    a block, and of the line, for each (20,000 reads: 1.5 s a row on 64 MiB of them)."""
    from qconsole import logsource

    log = _between(tmp_path / "maillog", (f"Nov 24 10:00:02 mail sshd[{k}]: Invalid user "
                                           f"{SPY}" for k in range(10_000)))
    data = log.read_bytes()
    result = data.rfind(b"\n", 0, data.index(b"delivery 7: success")) + 1
    source = LogSource(log)
    reads = []
    pread = logsource.Segment.pread
    monkeypatch.setattr(logsource.Segment, "pread",
                        lambda seg, offset, length: reads.append(length) or pread(
                            seg, offset, length))
    start, info = Joiner(source).join(result, 1)
    assert source.read_line(start).endswith(b"to remote real@x.org")
    assert b"from <a@b.org>" in source.read_line(info)
    assert len(data) > 1 << 20 and len(reads) < 100, len(reads)  # (40,000 before)
    source.close()


@pytest.mark.parametrize("fast", [True, False], ids=["compiled", "python"])
def test_the_example_result_raw_filter_finds_a_raw_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    """``result:raw`` alone is refused with an example: that example finds qmail-send's
    own line that is no event, in a syslog file where sshd's lines are skipped (it said
    ``sshd result:raw``, which no syslog file can match)."""
    import re

    from qconsole.logquery import QueryError, parse_query

    with pytest.raises(QueryError) as refused:
        parse_query("result:raw")
    example = re.search(r"for example: ([^)]*)\)", str(refused.value))[1]
    compiled_path(fast)
    monkeypatch.setattr(logfast, "ENABLED", fast)
    log = tmp_path / "maillog"
    log.write_text(
        "Nov 24 10:00:01 mail sshd[77]: Accepted publickey for root from 192.0.2.3\n"
        "Nov 24 10:00:02 mail qmail: 1795000002.500000 warning: trouble injecting bounce"
        " message, will try later\n"
        "Nov 24 10:00:03 mail sshd[77]: warning: sshd says no\n")
    search = _search(LogIndex(LogSource(log)), example)
    assert [search.row(i).status for i in range(len(search))] == ["raw"], example
    search.index.source.close()


def test_a_look_back_through_long_lines_reads_them_about_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A block that begins inside a long line is read back to the line's start in
    growing reads (most long lines are found in the first), not LONG_LINE at once:
    a join back past 60 lines of 100 KB read 1 GB that way."""
    from qconsole import logsource

    log = _between(tmp_path / "maillog", (f"Nov 24 10:00:02 mail webapp[{k}]: " + "B" * 100_000
                                           for k in range(60)))
    data = log.read_bytes()
    result = data.rfind(b"\n", 0, data.index(b"delivery 7: success")) + 1
    source = LogSource(log)
    read = [0]
    pread = logsource.Segment.pread
    monkeypatch.setattr(logsource.Segment, "pread", lambda seg, offset, length: (
        read.__setitem__(0, read[0] + length) or pread(seg, offset, length)))
    start, _ = Joiner(source).join(result, 1)
    assert source.read_line(start).endswith(b"to remote real@x.org")
    assert read[0] < 8 * len(data), read[0]
    source.close()


def _between(log: Path, lines) -> Path:
    """A splogger log of delivery 7 of message 8 with ``lines`` between its start and
    its result."""
    pre = "Nov 24 10:00:0{} mail qmail: 179500000{}.500000 "
    with open(log, "w") as fh:
        fh.write(pre.format(0, 0) + "info msg 8: bytes 300 from <a@b.org> qp 1 uid 2\n")
        fh.write(pre.format(1, 1) + "starting delivery 7: msg 8 to remote real@x.org\n")
        fh.writelines(line + "\n" for line in lines)
        fh.write(pre.format(3, 3) + f"delivery 7: success: {logsafe(OK_TEXT)}\n")
    return log
