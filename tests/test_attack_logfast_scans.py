"""Attacks on the compiled scans of the log search's dense path (qc_events, qc_infos:
a line prefix's table asked of its own pattern, logbulk.Shape.table) and the set logic
around them (logscan.Plan._dense_text, _dense_lines): log text is the attacker's (a
remote's reply ends up in it). The compiled path must find exactly what the patterns
find, read nothing outside a block, answer as the Python loops do, and take linear time
on lines of megabytes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qconsole import logbulk, logjoin, logscan
from qconsole.logbulk import Block
from qconsole.logscan import Plan
from tests.test_logfast import _both, _same_scans, compiled

ROOT = Path(__file__).resolve().parent.parent
S = "@400000006ab1430e08ea3962 "


def test_a_report_holding_starting_delivery_without_msg_is_a_row_both_ways() -> None:
    """A result line whose report holds "starting delivery 2: " but no " msg " (a
    remote's reply) is no start line (the Joiner's start needle is "starting delivery
    N: msg "): the Python loops show it at once; the compiled path sent it the exact
    way (another analysis, and a remote could send every row of a block there)."""
    compiled()
    lines = [S + "info msg 5: bytes 3 from <a@b.org> qp 1",
             S + "starting delivery 1: msg 5 to remote x@y.org",
             S + "delivery 1: success: Remote host said: starting delivery 2: zap",
             S + "delivery 3: success: zap",
             S + "delivery 4: success: said starting delivery 9: msg 3 to remote zap",
             S + "end msg 5"]
    data = ("\n".join(lines) + "\n").encode()
    saved = logscan.DENSE
    logscan.DENSE = 0  # (the word is in many lines: the dense way)
    try:
        for query in ("zap", "success", "starting", "-zap", "zap -to:x@y.org"):
            fast, slow = _both(lambda q=query: Plan(q).analyze(Block(0, data)))
            assert fast == slow, query
            if "-" not in query and query != "starting":
                assert 137 in fast.columns[0] and 137 not in fast.exact, query
    finally:
        logscan.DENSE = saved


def test_a_multilog_line_without_its_space_does_not_turn_the_compiled_scans_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The shape of a head is made once a process, with the prefix it was first seen
    in: "@", 24 bytes and an "X" is multilog's head too (event() reads byte 26), but
    its pattern wants a space there, so that shape had no table, and every multilog
    block of the process (a helper's, the console's) was scanned by the patterns."""
    compiled()
    monkeypatch.setattr(logbulk, "_SHAPES", {})
    first = Block(0, b"@400000006ab1430e08ea3962Xend msg 5\n")
    assert first.shape.head == logbulk.MULTILOG
    block = Block(0, (S + "delivery 1: success: x\n").encode())
    assert block.shape is first.shape
    assert block.shape.table is not None
    assert block.shape.at.fullmatch(block.shape.witness)


# Lines of megabytes holding a needle every few bytes (a remote's reply repeated): the
# line start or end of each was looked for from the needle, back to the line's start or
# on to its end: hours for a line of 16 MB. (block lines, query)
_LONG = {
    "results in a reply, a negated term": (
        [S + "info msg 1: bytes 1 from <a@b> qp 1",
         S + "delivery 1: deferral: " + "delivery 1: success:" * 200_000], "-from:a@b"),
    "info needles, one message": (
        [S + "delivery 1: deferral: " + "info msg 1: bytes 1 from <" * 150_000], "msg:1"),
    "bounce needles, one message": (
        [S + "delivery 1: deferral: " + "bounce msg 1 " * 300_000], "msg:1"),
    "a regex in every few bytes": (
        [S + "delivery 1: deferral: " + "delivery 1: msg 2 to remot" * 150_000], "/msg/"),
}


@pytest.mark.parametrize("case", sorted(_LONG))
def test_a_line_of_megabytes_full_of_needles_is_searched_in_linear_time(case: str) -> None:
    compiled()
    lines, query = _LONG[case]
    data = "".join(line + "\n" for line in lines).encode()
    assert len(data) > 3_500_000

    def timed() -> tuple[float, object]:
        block = Block(0, data)
        block.fast()
        t = time.process_time()
        got = Plan(query).analyze(block)
        return time.process_time() - t, got

    (fast, a), (slow, b) = _both(timed)
    assert a == b
    assert fast < 1.5 and slow < 1.5, (fast, slow)  # (a few ms; seconds each before)


# Prefixes of every shape a log may have, with what a host or program name may hold.
_HOSTS = ("mail", "a.b", "h[1]", "x*y", "q\\m", "(x)", "$^", "a|b", "{2}", "?+", "#", "\t",
          "\x00", "[", "\\", ".", "*", "\x80", "\xff\xfe", "\xc3\xa9", "]", "\\d", "[a-z]")
_PROGRAMS = ("qmail", "qmail-send[812]", "qmail[", "q.*", "q\\", "p]", "send\xe9")


@st.composite
def _prefixes(draw) -> str:
    host, program = draw(st.sampled_from(_HOSTS)), draw(st.sampled_from(_PROGRAMS))
    day = draw(st.integers(1, 31))
    return draw(st.sampled_from((
        f"Nov {day:2d} 05:38:52 {host} {program}: ",
        f"Nov {day:2d} 05:38:52 {host} {program}: 1795000000.500000 ",
        f"2026-11-26T05:38:52.123456+01:00 {host} {program}: ",
        "2026-11-26T05:38:52Z ", "1795000000.500000 ", "", S, f"{host} {program}: ")))


_EVENTS = ("starting delivery 12: msg 3 to remote a@b", "delivery 1: msg 2 to remote ",
           "delivery 12: success: x", "delivery 2: failure:", "delivery 7: failure",
           "info msg 3: bytes 20 from <a@b> qp 1", "info msg 3: bytes 20 from <a> b> ",
           "info msg 1: bytes 1 from <", "delivery 1: msg 2 to remot", "delivery ",
           "delivery 1: ", "info msg ", "starting delivery", "bounce msg 3", "end msg 3")


@settings(max_examples=400, deadline=None)
@given(_prefixes(), st.lists(st.tuples(st.integers(0, 4), st.sampled_from(_EVENTS),
                                       st.integers(0, 60), st.sampled_from("x1 :\n@\x00\xff")),
                             max_size=10),
       st.sampled_from(("\n", "\r\n")), st.integers(0, 400), st.booleans())
def test_the_scans_find_what_the_patterns_find_after_any_prefix(
        prefix, lines, newline, cut, start_inside) -> None:
    """Prefixes with regex metacharacters, NUL and bytes beyond ASCII in the host or
    program, of width 0, lines with CRLF, a prefix with a byte changed, events cut
    anywhere, a block that begins inside a line or ends inside an event: the compiled
    scans find exactly what the shape's patterns find."""
    compiled()
    head = prefix.encode("latin-1")
    if logbulk.head_of(head) is None:
        return
    out = []
    for kind, event, at, byte in lines:
        p = prefix if kind else ""
        if kind == 1:  # one byte of the prefix changed
            p = p[:at % (len(p) + 1)] + byte + p[at % (len(p) + 1) + 1:]
        out.append(p + event)
    data = newline.join(out).encode("latin-1")
    data = data[cut % (len(data) + 1):] if start_inside else data[:len(data) - cut]
    _same_scans(data, head)


_GUARDED = r'''
import ctypes, mmap, sys
from qconsole import logbulk, logfast, logfastlib
lib = logfast.load()
assert lib is not None
libc = ctypes.CDLL(None)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
page = mmap.PAGESIZE
keep = []

def guarded(data, at_end):
    """``data`` with a page no one may read right after it or right before it."""
    pages = (len(data) + page - 1) // page + 2
    m = mmap.mmap(-1, pages * page)
    keep.append(m)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    at = base + (pages - 1) * page - len(data) if at_end else base + page
    ctypes.memmove(at, data, len(data))
    assert libc.mprotect(base, page, 0) == 0
    assert libc.mprotect(base + (pages - 1) * page, page, 0) == 0
    return at

raw = ctypes.CDLL(lib._name)
p, n = ctypes.c_void_p, ctypes.c_int64
for scan in (raw.qc_events, raw.qc_infos):
    scan.restype = n
    scan.argtypes = [p, n, p, n, n, *[p] * 6]
count = 0
for head in (b"@400000006ab1430e08ea3962 ", b"Nov 26 05:38:52 h[1] q.*: ", b""):
    shape = logbulk.shape_of(head + b"delivery 1: msg 1 to local \n")
    table = shape.table
    assert table is not None
    for line in (b"starting delivery 1: msg 2 to remote a", b"delivery 1: success: x",
                 b"info msg 1: bytes 1 from <a@b> qp"):
        text = b"x\n" + head + line + b"\n" + head + line
        for k in range(len(text) + 1):
            for data in (text[:k], text[k:]):
                for at_end in (True, False):
                    out = [(ctypes.c_int64 * (len(data) + 8))() for _ in range(6)]
                    for scan in (raw.qc_events, raw.qc_infos):
                        scan(guarded(data, at_end), len(data),
                             guarded(table or b"-", True), shape.width, len(data) + 8, *out)
                        count += 1
            keep.clear()
print(count)
'''


def test_the_scans_read_nothing_outside_the_block() -> None:
    """A block cut at every byte of canonical start, result and info lines (a block
    shorter than its prefix, one ending in the middle of "delivery 1: msg 2 to remot",
    one beginning inside a line), laid against pages no one may read: the look back
    before the block's start and the literals at its end read only the block (a read
    outside it kills the process)."""
    compiled()
    done = subprocess.run([sys.executable, "-c", _GUARDED], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert int(done.stdout) > 1000


def test_a_block_of_hostile_lines_is_analyzed_alike_in_every_dense_way() -> None:
    """Reports holding every needle (start, info, bounce, end, a status), senders
    holding "> " and needles, in a log of syslog lines whose host holds regex
    metacharacters: every query the same both ways, read the dense way or not."""
    compiled()
    prefix = "Nov  6 05:38:52 h[1].* q\\m[2]: "
    texts = ("Remote host said: starting delivery 2: zap", "info msg 3: x",
             "said info msg 2: bytes 4 from <k@l> ", "bounce msg 3", "end msg 3",
             "delivery 1: success: zap", "x/route=r local=- remote=- tls=none auth=none")
    lines = []
    for i in range(60):
        m, n = 3 + i % 4, 1 + i % 5
        lines += [f"info msg {m}: bytes {i} from <{('a@b', 'a> b@c', '', 'info msg 3: ')[i % 4]}> "
                  "qp 1",
                  f"starting delivery {n}: msg {m} to remote {('zap@q', 'x@Y')[i % 2]}",
                  f"delivery {n}: {('success', 'deferral', 'failure')[i % 3]}: "
                  f"{texts[i % len(texts)]}"]
        if i % 3 == 0:
            lines += [f"bounce msg {m} qp 3", f"end msg {m}"]
    data = "".join(prefix + line + "\n" for line in lines).encode()
    saved = logscan.DENSE, logscan.DENSE_INFOS, logjoin.JOIN_LIMIT
    try:
        for dense, limit in ((saved[0], saved[2]), (0, saved[2]), (0, 300)):
            logscan.DENSE = logscan.DENSE_INFOS = dense
            logjoin.JOIN_LIMIT = limit
            for query in ("zap", "success", "starting", "info", "msg 3", "-zap", "to:zap@q",
                          "from:a@b", "from:*", "-from:a@b", "msg:3", "zap -to:x@y",
                          "result:success -from:<>", "route:r", "/delivery \\d+: s/"):
                fast, slow = _both(lambda q=query: Plan(q).analyze(Block(5, data)))
                assert fast == slow, (query, dense, limit)
    finally:
        logscan.DENSE, logscan.DENSE_INFOS, logjoin.JOIN_LIMIT = saved


def test_a_reply_repeating_an_info_needle_is_followed_once(tmp_path: Path) -> None:
    """A deferral whose reply repeats "info msg 1: " five hundred times (a line that
    is no canonical one, followed the exact way as the info line of every message it
    names): message 1's rows were looked for forwards once a needle, each time through
    the megabytes after it (a search of the bench log with such lines took minutes);
    each message and delivery number is followed once, its rows found once."""
    from tests.test_logjoin_bulk import followed

    rows, want, elapsed = followed(tmp_path, "info msg 1: bytes 1 from <" * 250
                                   + "starting delivery 3: msg " * 250, 400_000)
    # (as a start line: another start of delivery 3 comes before a result of it)
    assert rows == want
    assert elapsed < 2, elapsed
