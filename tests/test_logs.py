"""qmail-send logs: stamps, joins, rotation like tail -F, filter, counters."""

from __future__ import annotations

import calendar
import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qconsole import logworkers
from qconsole.demo_live import rspawn_results
from qconsole.logformat import delivery, logsafe, split_stamp, tai64n, tai64n_label
from qconsole.logindex import DEFERRAL, FAILURE, RAW, SUCCESS, LogIndex
from qconsole.logquery import QueryError, parse_query
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


RECIPIENTS = ("ann@x.org", "bob@y.org", "Cy@X.org", "d_e@relay.test", "\xe9t\xe9@x.org",
              "\xc9t\xe9@X.org")
SENDERS = ("a@b.org", "", "news@shop.test", "Bob@Y.org")
TEXTS = (OK_TEXT, "Sorry (#4.4.1)\nroute=relay local=127.0.0.3 remote=- tls=none auth=none",
         "127.0.0.9 does not like recipient.\nRemote host said: 550 no_such user\n"
         "route=relay local=127.0.0.2 remote=127.0.0.9:25 tls=TLSv1.2 auth=LOGIN",
         "stock reply/\n", "route=r local=- remote=- tls=none auth=none",
         "Sorry (#4.4.1)\nroute=relay local=127.0.0.3 remote=- tls=none auth=none"
         "I'm not going to try again; this message has been in the queue too long.\n",
         "x\nroute=a_local=b remote=c tls=d auth=eroute=zz",
         "Remote host said: 250 ok (mailbox full)\nroute=Route1 local=127.0.0.2 "
         "remote=[::1]:25 tls=none auth=none",
         "junk route=r local=- remote=- tls=none auth=none",
         "route=r local=- remote=- tls=none auth=none\nmore")
SYSLOG = "Nov 24 10:00:00 mail qmail: 1795000000.500000 "
# Lines of every shape a log may hold: qmail-send's, and others (a needle of a start or
# info line inside another line, syslog lines, no multilog stamp, bytes not UTF-8).
TEMPLATES = (
    "{s} info msg {m}: bytes 300 from <{f}> qp 1 uid 2",
    "{s} starting delivery {n}: msg {m} to remote {r}",
    "{s} starting delivery {n}: msg {m} to local {r}",
    "{s} delivery {n}: {st}: {t}",
    "{s} bounce msg {m} qp 9",
    "{s} triple bounce: discarding bounce/{m}",
    "{s} triple bounce: discarding bounce/{m}",
    SYSLOG + "triple bounce: discarding bounce/{m}",
    "{s} said triple bounce: discarding {m}",
    "{s} triple bounce: discarding bounce/{m}{n} ",
    "{s} end msg {m}",
    "{s} new msg {m}",
    "{s} status: local 0/10 remote 1/20",
    "garbage line for bob",
    SYSLOG + "delivery {n}: {st}: {t}",
    SYSLOG + "starting delivery {n}: msg {m} to remote {r}",
    "Nov 24 10:00:00 mail sshd[1]: delivery 3: success: not qmail",
    "{s} delivery {n}: {st}: said starting delivery {n2}: msg {m} to remote spy@x.org",
    "{s} info msg {m}: bytes 1 from <spy@x.org> qp info msg {m2}: ",
    "{s} delivery {n}: msg {m} to remote {r}",
    "{s} starting delivery {n}: {st}: {t}",
    "{S} delivery {n}: {st}: {t}",
    "",
    "{s} delivery {n}: {st}: caf\xe9 route=x local=y remote=z tls=none auth=none",
    "{s} delivery {n}: {st}: CAF\xc9_ROUTE=x local=y remote=z tls=none auth=none",
    "@x delivery {n}: {st}: short stamp",
    "{s} info msg {m}: weird",
    "{s} end msg {m} and more",
    "{s} bounce msg {m}{n}",
    "@xxxxxxxxxxxxxxxxxxxxx\nab delivery {n}: {st}: {t}",
    "{s} delivery {n2}: {st}: see delivery {n}: later",
    # Prefixes that look like a log's but are not (another host or program of the same
    # width, a letter where digits stand, a day without its padding) or that hold the
    # beginning of an event themselves (event() reads there, not after them).
    "Nov 18 11:06:40 mx2a qmail: 1795000000.500000 starting delivery {n}: msg {m} to remote {r}",
    "Nov 18 11:06:40 mail qmail: 17950000a0.500000 delivery {n}: {st}: {t}",
    "Nov 18 11:06:40 mail qmail-send[8]: delivery {n}: {st}: {t}",
    "Dec 4 11:06:40 mail qmail: 1795000000.500000 delivery {n}: {st}: {t}",
    "Nov 18 11:06:40 xdelivery {n}: {st}: the host and program are an event",
    "Nov 18 11:06:40 triple bounce: discarding bounce/{m}",
    "Nov 18 11:06:40 mail xstatus: 1795000000.500000 delivery {n}: {st}: {t}",
    "@PLANTED delivery {n}: {st}: {t}",  # an event where the log's prefix stands
    "@PLANTED starting delivery {n}: msg {m} to remote {r}",
    "@PLANTED bounce msg {m} qp 9",
    "Nov 18 11:06:40 new msg: 1795000000.500000 info msg {m}: bytes 3 from <{f}> qp 1",
    "2026-11-18T11:06:40Z starting delivery {n}: msg {m} to local {r}",
    "1795000000.500000 bounce msg {m} qp 9",
    "delivery {n}: {st}: {t}",
    "info msg {m}: bytes 300 from <{f}> qp 1 uid 2",
    # A message's number in other text.
    "Nov 18 11:06:40 mail sshd[9]: msg {m}: bytes 5 from <a@b.org> qp info msg {m}",
    # Another program's line holding qmail-send's words (a user name given to sshd):
    # none of a row's lines, whatever it holds; with an ISO stamp too.
    "Nov 18 11:06:40 mail sshd[9]: Invalid user starting delivery {n}: msg {m} to remote "
    "spy@x.org from 192.0.2.1",
    "Nov 18 11:06:40 mail sshd[9]: u info msg {m}: bytes 1 from <spy@x.org> qp 1 uid 2",
    "Nov 18 11:06:40 mail sshd[9]: u delivery {n}: {st}: {t}",
    "Nov 18 11:06:40 mail sshd[9]: u end msg {m}",
    "Nov 18 11:06:40 mail sshd[9]: u bounce msg {m} qp 9",
    "2026-11-18T11:06:40.5+01:00 mail sshd[9]: starting delivery {n}: msg {m} to remote {r}",
    "2026-11-18T11:06:40Z delivery {n}: {st}: a host and program that are an event",
    "{s} delivery {n}: {st}: queued_as_msg_{m}_to_remote_x/msg {m}{n} to remote x",
    "{s} delivery {n}: msg {m}{n} to remote {r}",
)
# Line prefixes logformat reads (each a function of the time, with its trailing space):
# a log has one of them on its qmail-send lines, or a mix.
FORMS = {
    "multilog": lambda t: stamp(t) + " ",
    "splogger": lambda t: time.strftime("%b %e %H:%M:%S mail qmail: ", time.gmtime(t))
    + f"{t:.6f} ",
    "syslog": lambda t: time.strftime("%b %e %H:%M:%S mail qmail-send[812]: ", time.gmtime(t)),
    "iso": lambda t: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
    + f".{int(t % 1 * 1e6):06d}+01:00 mail qmail: ",
    "iso-bare": lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime(t)),
    "epoch": lambda t: f"{t:.6f} ",
    "none": lambda t: "",
}
# Where a log starts: a two-digit day, a day padded with a space, the last seconds of
# Dec 9 (the padding goes as the log goes on).
STARTS = (T0, T0 + 16 * 86400, T0 + 21 * 86400 + 46395)
_STAMPED = re.compile(r"@([0-9a-f]{24}) ")
NUMBERS = (1, 2, 3, 12)
MSGS = (1, 2, 12, 21)
QUERIES = (
    "x.org", "success", "bob", "no such", "msg", "test", "1", "garbage", "spy", "said",
    "mailbox full", "caf\xe9", "CAF\xc9", "\xc9T\xc9@", "-\xe9t\xe9", '"caf\xe9 route"',
    "/ANN|bob/", "/no.such/", "/ok\\s+@/", "/^@4/", "/org$/",
    "/(?=bob)b/", "/x*/", "/[0-9]+: msg 1 /", "route:relay", "route:route1", "route:r*",
    "ip:127.0.0.2", "remote:127.0.0.9", "remote:127.0.0.9:25", "remote:::1",
    "tls:tlsv1.*", "auth:none", "auth:e", "result:deferral", "result:bounce", "garbage result:raw",
    "to:x.org", "to:bob@y.org", "to:*@relay.test", "to:d_e@relay.test", "to:*",
    "to:\xc9T\xc9@x.org", "to:\xe9t\xe9@*", "-to:*\xc9@*",
    "from:b.org", "from:<>", "from:news@*", "from:y.org", "msg:1", "msg:12",
    "route:?", "route:(local)", "-route:relay", "-result:deferral", "-to:bob@y.org",
    "-from:b.org", "-x.org", "-msg:1",
    "-/bob/", "-spy", "-route:route1 -result:deferral", "-x.org result:success",
    "route:relay -to:bob@y.org", "bob -route:relay", "success -to:x.org",
    "to:x.org -from:b.org", "garbage -route:x", "msg:1 result:success", "spy -msg:2",
    "result:failure -from:<>", "-to:* -result:success", "route:r", "auth:none -route:r",
    "-auth:none -route:relay", "ip:127.0.0.2 tls:tlsv1.2 -remote:127.0.0.1", "route:a",
    "garbage -to:x.org", "garbage -spy")


def _stamp_upper(t: float) -> str:
    return "@" + stamp(t)[1:].upper()


@st.composite
def any_log(draw) -> list[str]:
    """qmail-send's deliveries interleaved as they happen, with lines of every other
    kind among them, their prefixes of one form (some of other forms)."""
    rnd = draw(st.randoms())
    lines: list[str] = []
    held: list[list[str]] = []
    t0 = draw(st.sampled_from(STARTS))
    for n in range(draw(st.integers(0, 10))):
        msg, number = draw(st.sampled_from(MSGS)), draw(st.sampled_from(NUMBERS))
        status = draw(st.sampled_from(("success", "deferral", "failure")))
        message = delivery_lines(t0 + n, number, msg, draw(st.sampled_from(RECIPIENTS)),
                                 status, draw(st.sampled_from(TEXTS)))
        message[1] = message[1].replace("<a@b.org>", f"<{draw(st.sampled_from(SENDERS))}>")
        if status == "failure" and rnd.random() < 0.5:  # qmail-send: before "end msg"
            message.insert(-1, f"{stamp(t0 + n)} bounce msg {msg} qp 9")
        elif status == "failure" and rnd.random() < 0.5:  # a double bounce dropped
            message.insert(-1, f"{stamp(t0 + n)} triple bounce: discarding bounce/{msg}")
        lines += message[:3]
        held.append(message[3:])
        while held and rnd.random() < 0.5:
            lines += held.pop(rnd.randrange(len(held)))
    for tail in held:
        lines += tail
    for _ in range(draw(st.integers(0, 25))):
        line = draw(st.sampled_from(TEMPLATES)).format(
            s=stamp(t0 + 100), S=_stamp_upper(t0 + 100), n=draw(st.sampled_from(NUMBERS)),
            n2=draw(st.sampled_from(NUMBERS)), m=draw(st.sampled_from(MSGS)),
            m2=draw(st.sampled_from(MSGS)), r=draw(st.sampled_from(RECIPIENTS)),
            f=draw(st.sampled_from(SENDERS)),
            st=draw(st.sampled_from(("success", "deferral", "failure"))),
            t=logsafe(draw(st.sampled_from(TEXTS))))
        lines.insert(draw(st.integers(0, len(lines))), line)
    form, mixed = draw(st.sampled_from(tuple(FORMS))), draw(st.sampled_from((0, 0, 0.1, 0.5)))
    out = []
    width = len(FORMS[form](t0))
    planted = rnd.choice(("status: ", "delivery 12: failure: ", "new msg 3 ", "bounce msg 2 "))
    for line in lines:
        if line.startswith("@PLANTED "):
            line = (planted + "0" * width)[:width] + line[9:]
        m = _STAMPED.match(line)
        if m is None:
            out.append(line)
            continue
        other = rnd.random() < mixed
        prefix = FORMS[rnd.choice(tuple(FORMS)) if other else form]
        out.append(prefix(tai64n(m[1].encode())) + line[m.end():])
    return out


def row_by_row(path: Path, text: str) -> list[tuple[int, int, int, int]]:
    """The filter applied to each row of the log, one at a time: every line read as
    qmail-send's event (or shown raw), joined by the rules of logjoin."""
    from qconsole.logformat import E_STATUS, event, foreign
    from qconsole.logjoin import BOUNCE, CODES, RAW, Joiner, bounced
    from qconsole.logquery import Lines
    from qconsole.logsearch import STATUS_NAMES

    q = parse_query(text)
    source = LogSource(path)
    joiner = Joiner(source)
    data = path.read_bytes()
    expected = []
    offset = 0
    for line in data.split(b"\n")[:-1]:
        m = event(line)
        status = None
        if m is None and line.strip() and not foreign(line):
            status = RAW
        elif m is not None and m[E_STATUS] is not None:
            status = CODES[m[E_STATUS]]
        elif m is not None and bounced(line) is not None:
            status = BOUNCE
        if status is not None and (status != RAW or q.driver is not None):
            start, info = joiner.join(offset, status)
            read = source.read_line
            lines = Lines(line, read(start) if start >= 0 else None,
                          read(info) if info >= 0 else None, STATUS_NAMES[status])
            if q.matches(lines):
                expected.append((offset, status, start, info))
        offset += len(line) + 1
    source.close()
    return sorted(expected, reverse=True)


def compiled_path(fast: bool) -> None:
    """For a test of the search's compiled dense path (qconsole.logfast, set with
    ``logfast.ENABLED``): the library must load wherever there is a C compiler."""
    from qconsole import logfast
    from qremote.client.build import find_compiler

    if fast and find_compiler() is None:
        pytest.skip("no C compiler")
    if fast:
        assert logfast.load() is not None, "a C compiler is here, and logfast was not built"


@pytest.mark.parametrize("fast", [True, False], ids=["compiled", "python"])
@settings(max_examples=2000, deadline=None)
@given(any_log(), st.sampled_from(QUERIES), st.sampled_from((300, 700, 2000, 1 << 20)),
       st.sampled_from((0.2, 0.5, 1, 2, 5)), st.sampled_from((0, 2, 4096)), st.booleans(),
       st.sampled_from((0, 1, 64)))
def test_the_bulk_search_finds_what_a_row_by_row_filter_finds(
        tmp_path_factory, fast, lines, query, block, reach, dense, helpers, dense_infos,
        ) -> None:
    """The oracle: the bulk search (blocks of any size, joins reaching across blocks or
    not, words in few or many lines, blocks analyzed here or by helper processes, the
    dense path compiled or in Python) finds exactly the rows that match when each row
    is read and joined alone."""
    from qconsole import logfast, logjoin, logscan, logsearch, logworkers

    log = tmp_path_factory.mktemp("search") / "current"
    with open(log, "wb") as fh:
        fh.write("".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape"))
    saved = (logsearch.BLOCK, logsearch.JOIN_LIMIT, logjoin.JOIN_LIMIT, logscan.DENSE,
             logsearch.PARALLEL_BLOCKS, logscan.DENSE_INFOS)
    logsearch.BLOCK, logscan.DENSE, logscan.DENSE_INFOS = block, dense, dense_infos
    logsearch.JOIN_LIMIT = logjoin.JOIN_LIMIT = int(block * reach)
    logsearch.PARALLEL_BLOCKS = 0 if helpers else 1 << 40
    answered = logworkers.POOL.answered
    compiled_path(fast)
    was, logfast.ENABLED = logfast.ENABLED, fast
    try:
        expected = row_by_row(log, query)
        index = LogIndex(LogSource(log))
        search = _search(index, query)
    finally:
        (logsearch.BLOCK, logsearch.JOIN_LIMIT, logjoin.JOIN_LIMIT, logscan.DENSE,
         logsearch.PARALLEL_BLOCKS, logscan.DENSE_INFOS) = saved
        logfast.ENABLED = was
    if helpers and logworkers.helpers_wanted() and index.history_end:
        assert logworkers.POOL.answered > answered  # the helpers did analyze blocks
    found = []
    for i in range(len(search)):  # with the joins the search made (-2: not made)
        rows, j = search.locate(i)
        start, info = rows.start[j], rows.info[j]
        found.append((rows.result[j], rows.status[j], start, info))
    assert [f[:2] for f in found] == [e[:2] for e in sorted(expected)]
    for f, e in zip(found, sorted(expected), strict=True):
        assert f[2] in (e[2], -2) and f[3] in (e[3], -2), (f, e)
    index.source.close()


def _many_deliveries(log: Path, count: int) -> None:
    lines: list[str] = []
    for i in range(count):
        status = "deferral" if i % 3 == 0 else "success"
        lines += delivery_lines(T0 + i, i % 7 + 1, 1000 + i, f"u{i}@d{i % 5}.org", status,
                                OK_TEXT if status == "success" else "later")
    write(log, lines)


@pytest.mark.skipif(not logworkers.helpers_wanted(),
                    reason="one CPU: searches use no helper process")
def test_helpers_that_die_or_are_left_change_nothing(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Helper processes analyze blocks of a long history: killed in the middle of a
    search, the blocks they had are analyzed here (same rows); a search stopped early
    ends the helpers still busy for it, and the next search starts new ones."""
    import signal

    from qconsole import logsearch

    log = tmp_path / "current"
    _many_deliveries(log, 400)
    monkeypatch.setattr(logsearch, "BLOCK", 2000)
    monkeypatch.setattr(logsearch, "PARALLEL_BLOCKS", 0)
    expected = [e[:2] for e in row_by_row(log, "d3.org")]
    assert len(expected) == 80

    def rows_of(search: Search) -> list[tuple[int, int]]:
        return [(search.older.result[j], search.older.status[j])
                for j in range(len(search.older))]

    search = Search(LogIndex(LogSource(log)), parse_query("d3.org"))
    steps = search.run(lambda: False)
    search.merge(next(steps))
    pids = logworkers.POOL.pids()
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    for rows in steps:
        search.merge(rows)
    assert sorted(rows_of(search), reverse=True) == sorted(expected, reverse=True)

    stopped = Search(LogIndex(LogSource(log)), parse_query("d3.org"))
    steps = stopped.run(lambda: False)
    stopped.merge(next(steps))
    busy = logworkers.POOL.pids()
    steps.close()  # the view moved on to another filter
    assert logworkers.POOL.pids() == []
    for pid in busy:
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] in "ZX"
    answered = logworkers.POOL.answered
    again = _search(LogIndex(LogSource(log)), "d3.org")
    assert logworkers.POOL.answered > answered
    assert sorted(rows_of(again), reverse=True) == sorted(expected, reverse=True)


@pytest.mark.parametrize("fast", [True, False], ids=["compiled", "python"])
def test_a_needle_inside_another_line_is_followed(tmp_path: Path, fast: bool) -> None:
    """A report (with real spaces) that holds ``starting delivery 7: msg 9`` is the start
    line of the next delivery 7 as the join rules read it: a word of it finds that
    delivery too, on the path for rare words and on the one for frequent words."""
    from qconsole import logfast, logscan

    log = tmp_path / "current"
    write(log, delivery_lines(T0, 3, 8, "a@x.org", "success", OK_TEXT)[:3])
    write(log, [f"{stamp(T0 + 1)} delivery 3: failure: whispered starting delivery 7: msg 9 "
                "to remote spy@x.org",
                f"{stamp(T0 + 2)} delivery 7: success: {logsafe(OK_TEXT)}"])
    expected = [e[:2] for e in row_by_row(log, "whispered")]
    assert [e[0] for e in expected] == [log.read_bytes().rfind(b"@"), expected[1][0]]
    for dense in (0, 4096):
        saved = logscan.DENSE
        logscan.DENSE = dense
        compiled_path(fast)
        was, logfast.ENABLED = logfast.ENABLED, fast
        try:
            search = _search(LogIndex(LogSource(log)), "whispered")
        finally:
            logscan.DENSE = saved
            logfast.ENABLED = was
        found = [(search.older.result[j], search.older.status[j])
                 for j in range(len(search.older))]
        assert found == expected, dense


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


_WORDS = ("status", "delivery", "starting", "info", "msg", "bounce", "triple", "new",
          "end", "discarding", "x", ":", ": ", " ", "  ", "1", "23", "0.5", "Nov", "Dec",
          "Nov 18 11:06:40 ", "Dec  4 11:06:40 ", "qmail", "[12]", "bounce/", "@",
          "starting ", "triple bounce: ", "status: ", "info msg ", "new msg", "bounce msg ",
          "delivery 12: ")
_EVENTS = ("delivery 3: success: x", "starting delivery 3: msg 5 to remote a@b.org",
           "info msg 5: bytes 3 from <a@b.org> qp 1", "bounce msg 5", "status: local 0/1",
           "triple bounce: discarding bounce/5", "new msg 5", "end msg 5", "x", "3: success: x",
           "discarding bounce/5", "msg 5 to remote x", "msg 5: bytes 3 from <> qp")


@settings(max_examples=1000)
@given(st.lists(st.sampled_from(_WORDS), max_size=6), st.sampled_from(_EVENTS), st.randoms())
def test_a_prefix_of_a_shape_never_holds_an_event(words, text, rnd) -> None:
    """A block's canonical lines are those whose prefix has the block's shape (what its
    qmail-send lines have before their events; logbulk.head_of): the bulk search reads
    their event right after it. So must event(): no prefix of the shape (any digits, a
    syslog stamp's month and day) may hold the beginning of an event."""
    from qconsole.logbulk import MULTILOG, head_of
    from qconsole.logformat import EVENT, event, foreign

    prefix = "".join(words).encode()
    head = head_of(prefix)
    if head is None or head == MULTILOG:
        return
    other = bytearray(ord(rnd.choice("0123456789")) if c in b"0123456789" else c
                      for c in prefix)
    if head.startswith(b"[A-Z]"):  # a syslog stamp: any month, a day padded or not
        other[:5] = rnd.choice((b"Jan  ", b"Feb 2", b"Dec 1", b"Sep  "))
    assert re.fullmatch(head, bytes(other)), (head, other)
    lines = (prefix + text.encode(), bytes(other) + text.encode())
    # (another program's line has no event, and the bulk search blanks it: every line
    # of the shape is another program's, or none is)
    assert foreign(lines[0]) == foreign(lines[1]), lines
    for line in lines:
        if EVENT.match(line, len(prefix)) is not None:
            m = event(line)
            assert m is None if foreign(line) else m.start() == len(prefix), line


@settings(max_examples=500, deadline=None)
@given(any_log(), st.sampled_from(("?", "(local)", "(LOCAL)")))
def test_route_question_mark_and_local_find_the_rows_the_column_shows_so(
        tmp_path_factory, lines, shown) -> None:
    """``route:?`` and ``route:(local)`` stand for terms (logquery.NO_ROUTE): the rows
    they find are those whose Route column reads so, the row joined as the view joins
    it (the row-by-row filter's joins)."""
    from qconsole.logformat import delivery

    log = tmp_path_factory.mktemp("route") / "current"
    log.write_bytes("".join(line + "\n" for line in lines).encode("utf-8",
                                                                  "surrogateescape"))
    source = LogSource(log)
    read = source.read_line
    every = row_by_row(log, "-/x{10000}/")  # (every row that has an event)
    want = sorted(r for r in every if delivery(
        read(r[0]), read(r[2]) if r[2] >= 0 else None, read(r[3]) if r[3] >= 0 else None,
    ).route == shown.lower())
    assert sorted(row_by_row(log, f"route:{shown}")) == want
    source.close()


def test_route_question_mark_cannot_be_excluded() -> None:
    for text in ("-route:?", "x -route:(local)"):
        with pytest.raises(QueryError, match="cannot be excluded"):
            parse_query(text)
