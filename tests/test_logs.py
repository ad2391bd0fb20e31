"""qmail-send logs: stamps, joins, rotation like tail -F, filter, counters."""

from __future__ import annotations

import calendar
import os
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from qconsole.demo_live import rspawn_results
from qconsole.logformat import delivery, logsafe, split_stamp, tai64n, tai64n_label
from qconsole.logindex import DEFERRAL, FAILURE, RAW, SUCCESS, LogIndex
from qconsole.logquery import parse_query
from qconsole.logsearch import Search
from qconsole.logsource import LogSource

T0 = 1_795_000_000.0


def stamp(t: float) -> str:
    return tai64n_label(t)


def delivery_lines(t: float, n: int, msg: int, rcpt: str, status: str, text: str,
                   ) -> list[str]:
    return [f"{stamp(t)} new msg {msg}",
            f"{stamp(t)} info msg {msg}: bytes 300 from <a@b.org> qp 1 uid 2",
            f"{stamp(t + 1)} starting delivery {n}: msg {msg} to remote {rcpt}",
            f"{stamp(t + 3.5)} delivery {n}: {status}: {logsafe(text)}",
            f"{stamp(t + 4)} end msg {msg}"]


OK_TEXT = ("127.0.0.1 accepted message.\nRemote host said: 250 ok\n"
           "route=route1 local=127.0.0.2 remote=127.0.0.20:465 tls=TLSv1.3 auth=PLAIN")


def test_tai64n_round_trip_and_known_value() -> None:
    # tai64nlocal: @4000000000000000 + 10 s is 1970-01-01 00:00:00 UTC.
    assert tai64n(b"400000000000000a00000000") == 0
    assert abs(tai64n(stamp(T0 + 0.25)[1:].encode()) - (T0 + 0.25)) < 1e-6


def test_split_stamp_forms() -> None:
    when, rest = split_stamp(b"@400000006b05bca41ac5cc9d new msg 1")
    assert rest == b"new msg 1" and when is not None
    when, rest = split_stamp(b"Nov 24 10:00:00 mail qmail: 1795000000.500000 new msg 1")
    assert when == 1795000000.5 and rest == b"new msg 1"
    when, rest = split_stamp(b"Nov  4 10:00:00 mail qmail-send[12]: new msg 1", year=2026)
    assert rest == b"new msg 1"
    assert when == time.mktime((2026, 11, 4, 10, 0, 0, 0, 0, -1))
    when, rest = split_stamp(b"2026-11-24T10:00:00.123+01:00 mail qmail: new msg 1")
    assert when == calendar.timegm((2026, 11, 24, 9, 0, 0, 0, 0, 0)) and rest == b"new msg 1"
    assert split_stamp(b"new msg 1") == (None, b"new msg 1")


def test_delivery_joins_the_three_lines() -> None:
    lines = [x.encode() for x in delivery_lines(T0, 7, 4242, "x@example.com", "success",
                                                 OK_TEXT)]
    row = delivery(lines[3], lines[2], lines[1])
    assert (row.msg, row.recipient, row.sender, row.status) == \
        ("4242", "x@example.com", "a@b.org", "success")
    assert (row.route, row.local, row.remote, row.tls, row.auth) == \
        ("route1", "127.0.0.2", "127.0.0.20:465", "TLSv1.3", "PLAIN")
    assert row.duration == 2.5
    assert row.reply == "127.0.0.1 accepted message. · Remote host said: 250 ok"


@given(st.binary(max_size=300))
def test_any_bytes_make_a_row(data: bytes) -> None:
    row = delivery(data.replace(b"\n", b""))
    assert row.status in ("raw", "success", "deferral", "failure")


def test_rspawn_results_combine_recipient_and_message_reports() -> None:
    reports = (b"r\0h127.0.0.1 does not like recipient.\nRemote host said: 550 no\n\0"
               b"K127.0.0.1 accepted message.\nroute=r local=- remote=- tls=none auth=none\0")
    (s1, t1), (s2, t2) = rspawn_results(reports, 2)
    assert s1 == "success" and t1.startswith("127.0.0.1 accepted")
    assert s2 == "failure" and "550 no" in t2 and t2.endswith("auth=none")


def write(path: Path, lines: list[str], mode: str = "a") -> None:
    with open(path, mode, encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))


def test_index_history_rotated_files_garbage_and_counters(tmp_path: Path) -> None:
    log = tmp_path / "current"
    now = time.time()
    write(tmp_path / "@400000006b000000000000aa.s",
          delivery_lines(now - 600, 1, 100, "old@x.org", "failure", "No such domain"))
    write(log, delivery_lines(now - 300, 1, 101, "a@x.org", "deferral", "Sorry (#4.4.1)\n"
                              "route=route2 local=127.0.0.3 remote=- tls=none auth=none"))
    with open(log, "ab") as fh:
        fh.write(b"\xff\xfe binary \x00 junk\n")
    write(log, ["Nov 24 10:00:00 mail sshd[1]: unrelated syslog line"])
    write(log, delivery_lines(now - 10, 2, 102, "b@x.org", "success", OK_TEXT))
    index = LogIndex(LogSource(log))
    assert list(index.scan_history())[-1] == 4
    rows = [index.row(i) for i in range(len(index))]
    assert [r.recipient for r in rows] == ["old@x.org", "a@x.org", "", "b@x.org"]
    assert [index.status(i) for i in range(4)] == [FAILURE, DEFERRAL, RAW, SUCCESS]
    assert "binary" in rows[2].reply
    counters = {(k, n): (s, d, f) for k, n, s, d, f, _ in index.counters.table(time.time())}
    assert counters[("route", "route1")] == (1, 0, 0)
    assert counters[("route", "route2")] == (0, 1, 0)
    assert counters[("local IP", "127.0.0.3")] == (0, 1, 0)


def test_follow_across_rotation_and_truncation(tmp_path: Path) -> None:
    log = tmp_path / "current"
    now = time.time()
    lines = delivery_lines(now, 3, 200, "first@x.org", "success", OK_TEXT)
    write(log, lines[:3])  # the delivery is in progress when the console opens
    index = LogIndex(LogSource(log))
    list(index.scan_history())
    assert len(index) == 0
    write(log, lines[3:4])
    with open(log, "a") as fh:
        fh.write(stamp(now) + " delivery 9: succ")  # half a line: not yet
    assert index.follow() == 1
    assert index.row(0).recipient == "first@x.org"  # joined with the older start line
    # multilog rotates: current becomes @....s, a new current starts.
    with open(log, "a") as fh:
        fh.write("ess: did_0+0+1/\n")
    os.rename(log, tmp_path / "@400000006b000000000000bb.s")
    write(log, delivery_lines(now + 5, 4, 201, "second@x.org", "deferral", "try later"))
    assert index.follow() == 2
    assert [index.row(i).recipient for i in range(3)] == ["first@x.org", "", "second@x.org"]
    assert index.row(1).status == "success"  # the line finished in the rotated file
    # logrotate-style truncation: the same file starts again from zero. The rows of
    # the truncated file (second's) are gone with its bytes, never read from the new
    # bytes at their offsets; the rotated file's rows stay.
    with open(log, "w") as fh:
        fh.write("\n".join(delivery_lines(now + 9, 5, 202, "third@x.org", "failure",
                                          "no")) + "\n")
    assert index.follow() == 1
    assert [index.row(i).recipient for i in range(len(index))] == [
        "first@x.org", "", "third@x.org"]
    assert [index.row(i).status for i in range(3)] == ["success", "success", "failure"]


def _search(index: LogIndex, text: str) -> Search:
    """A filter searched through the whole history, as the view's worker does."""
    search = Search(index, parse_query(text))
    for rows in search.run(lambda: False):
        search.merge(rows)
    return search


def test_filter_matches_history_and_new_rows(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    now = time.time()
    write(log, delivery_lines(now, 1, 1, "alice@x.org", "success", OK_TEXT))
    write(log, delivery_lines(now, 2, 2, "bob@y.org", "deferral", "later"))
    index = LogIndex(LogSource(log))
    filtered = _search(index, "Y.ORG")
    assert [filtered.row(i).recipient for i in range(len(filtered))] == ["bob@y.org"]
    write(log, delivery_lines(now, 3, 3, "carol@y.org", "success", OK_TEXT))
    index.follow()
    assert not filtered.complete
    filtered.scan_newer()
    assert filtered.complete
    assert [filtered.row(i).recipient for i in range(len(filtered))] == \
        ["bob@y.org", "carol@y.org"]


def test_a_huge_line_without_newline_is_shown_in_pieces(tmp_path: Path) -> None:
    from qconsole import logsource

    log = tmp_path / "current"
    write(log, delivery_lines(T0, 1, 1, "a@x.org", "success", OK_TEXT))
    with open(log, "ab") as fh:
        fh.write(b"\x01" * (logsource.CHUNK * 2 + 10) + b"\n")
    write(log, delivery_lines(T0, 2, 2, "b@x.org", "success", OK_TEXT))
    index = LogIndex(LogSource(log))
    list(index.scan_history())
    rows = [index.row(i) for i in range(len(index))]
    assert rows[0].recipient == "a@x.org" and rows[-1].recipient == "b@x.org"
    assert all(r.status == "raw" for r in rows[1:-1]) and len(rows) >= 3


def test_a_row_shown_before_its_start_line_is_indexed_is_not_kept_stale(
        tmp_path: Path, monkeypatch) -> None:
    """The newest page can show while history is still being read: a row whose
    start line is not indexed yet must get a new key once it is (the table caches by
    key)."""
    log = tmp_path / "current"
    lines = delivery_lines(T0, 1, 1, "late@x.org", "success", OK_TEXT)
    write(log, lines[:3] + ["garbage " * 20] * 5 + lines[3:])
    monkeypatch.setattr("qconsole.logsource.CHUNK", 400)  # the start in another chunk
    index = LogIndex(LogSource(log))
    scan = index.scan_history(first=1, progress=1)
    next(scan)  # the result row is in, its start line not yet
    i = len(index) - 1
    early_key, early = index.key(i), index.row(i)
    assert early.recipient == "" and early.status == "success"
    list(scan)
    i = len(index) - 1
    assert index.key(i) != early_key and index.row(i).recipient == "late@x.org"


def _detail_of(text: str):
    row = delivery(f"{stamp(T0)} delivery 1: failure: {logsafe(text)}".encode())
    return row


def test_only_the_last_line_is_the_detail_line() -> None:
    forged = "route=evil local=6.6.6.6 remote=6.6.6.6:25 tls=TLSv1.3 auth=PLAIN"
    # The stock qmail-remote ends its report with a newline; a reply can hold "/".
    stock = _detail_of(f"6.6.6.6 does not like recipient.\nRemote host said: 550 x/{forged}\n")
    assert (stock.route, stock.detail) == ("?", False)
    real = _detail_of(f"Remote host said: 550 {forged}\nroute=route2 local=127.0.0.2 "
                      "remote=127.0.0.20:465 tls=none auth=none")
    assert (real.route, real.local, real.tls) == ("route2", "127.0.0.2", "none")
    assert real.lines == (f"Remote host said: 550 {forged}",)


def test_an_expired_report_keeps_its_detail_line() -> None:
    from qconsole.logformat import EXPIRED

    text = ("Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"
            "route=route4 local=127.0.0.4 remote=127.0.0.40:25 tls=none auth=none"
            + EXPIRED + "\n")  # qmail-send appends its sentence right after the report
    row = _detail_of(text)
    assert (row.route, row.auth, row.expired) == ("route4", "none", True)
    assert row.lines[-1] == EXPIRED


def test_a_slash_in_a_reply_is_not_a_line_break() -> None:
    row = _detail_of("Remote host said: 550 see https://example.com/why and/or 5.7.1\n"
                     "route=r local=- remote=- tls=none auth=none")
    assert row.lines == ("Remote host said: 550 see https://example.com/why and/or 5.7.1",)


def test_filter_language_errors_are_said() -> None:
    import pytest

    from qconsole.logquery import QueryError

    for bad, said in (("result:maybe", "write one of"), ("/(/", "not a regular"),
                      ("msg:abc", "digits"), ("route:", "needs a value")):
        with pytest.raises(QueryError, match=said):
            parse_query(bad)
    assert [str(t) for t in parse_query('-route:R1 "a b" /x y/ rcpt:*@x.org').terms] == \
        ["-route:r1", "a b", "/x y/", "to:*@x.org"]


RECIPIENTS = ("ann@x.org", "bob@y.org", "cy@x.org")
TEXTS = (OK_TEXT, "Sorry (#4.4.1)\nroute=relay local=127.0.0.3 remote=- tls=none auth=none",
         "127.0.0.9 does not like recipient.\nRemote host said: 550 no_such user\n"
         "route=relay local=127.0.0.2 remote=127.0.0.9:25 tls=TLSv1.2 auth=LOGIN",
         "stock reply/\n")
QUERIES = ("x.org", "route:relay", "-route:relay", "ip:127.0.0.2", "result:deferral",
           "to:x.org", "from:b.org", "msg:3", "/ANN|bob/", "/no.such/", "no such",
           "-x.org result:success", "tls:tlsv1.*", "remote:127.0.0.9", "bounce",
           "route:relay -to:bob@y.org", "garbage")


@given(st.lists(st.tuples(st.sampled_from(RECIPIENTS), st.sampled_from(
    ("success", "deferral", "failure"))), min_size=1, max_size=12),
       st.sampled_from(QUERIES), st.integers(200, 2000), st.randoms())
def test_the_bulk_search_finds_what_a_row_by_row_filter_finds(
        tmp_path_factory, deliveries, query, block, rnd) -> None:
    """The oracle: every row of the index, its lines joined, tested one by one."""
    from qconsole import logsearch
    from qconsole.logquery import Lines
    from qconsole.logsearch import STATUS_NAMES

    log = tmp_path_factory.mktemp("search") / "current"
    lines: list[str] = []
    held: list[list[str]] = []  # deliveries under way, to end in any order
    for n, (rcpt, status) in enumerate(deliveries, 1):
        message = delivery_lines(T0 + n, n, n, rcpt, status, rnd.choice(TEXTS))
        if status == "failure" and rnd.random() < 0.5:  # qmail-send: before "end msg"
            message.insert(-1, f"{stamp(T0 + n)} bounce msg {n} qp 9")
        lines += message[:3]
        held.append(message[3:])
        while held and rnd.random() < 0.5:
            lines += held.pop(rnd.randrange(len(held)))
        if rnd.random() < 0.2:
            lines.append("garbage line for bob")
    for tail in held:
        lines += tail
    write(log, lines)
    index = LogIndex(LogSource(log))
    list(index.scan_history())
    q = parse_query(query)
    read = index.source.read_line
    expected = []
    for i in range(len(index)):
        rows, j = index.locate(i)
        row_lines = Lines(read(rows.result[j]),
                          read(rows.start[j]) if rows.start[j] >= 0 else None,
                          read(rows.info[j]) if rows.info[j] >= 0 else None,
                          STATUS_NAMES[rows.status[j]])
        if q.matches(row_lines) and (rows.status[j] != RAW or q.driver is not None):
            expected.append(rows.result[j])
    old = logsearch.BLOCK
    logsearch.BLOCK = block  # lines of one delivery in different blocks
    try:
        search = _search(index, query)
    finally:
        logsearch.BLOCK = old
    found = [search.locate(i)[0].result[search.locate(i)[1]] for i in range(len(search))]
    assert found == expected


@given(st.text(alphabet=st.sampled_from('ab:/-*"\\ .@^$()[]|route:ip:msg:1'), max_size=40))
def test_any_filter_text_parses_or_says_why(text: str) -> None:
    from qconsole.logquery import QueryError

    try:
        query = parse_query(text)
    except QueryError as exc:
        assert str(exc)
        return
    for term in query.terms:  # what the search looks for is what a line must hold
        assert term.regex is not None or all(p == p.lower() for p in term.patterns)
