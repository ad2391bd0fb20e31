"""The compiled dense path of the log search (qconsole.logfast, built and loaded by
qconsole.logfastlib): the same answers as the Python loops on blocks of every shape,
built once in a cache directory that is the user's alone, and never loaded from
anywhere else."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qconsole import logbulk, logfast, logfastlib, logjoin, logscan
from qconsole.logbulk import Block, hidden_needles, hits_of_text
from qconsole.logfound import Found
from qconsole.logscan import Plan
from qremote.client.build import find_compiler
from tests.test_logs import QUERIES, any_log

NEEDLES = (b"x.org", b"msg", b"bob", b"delivery", b"1", b"info msg ", b"starting delivery ",
           b" ", b"route=", b"spy", b"end msg", b"\xc3", b"11", b"00", b"")


def compiled() -> object:
    """The loaded library; the tests that need it fail when a compiler is here and the
    build did not work (they skip only where there is no compiler at all)."""
    if find_compiler() is None:
        pytest.skip("no C compiler")
    cdll = logfast.load()
    assert cdll is not None, "a C compiler is here, and the library was not built"
    return cdll


def _blocks(data: bytes, cuts: list[int]) -> list[tuple[int, bytes]]:
    """The log cut into blocks of whole lines near the given offsets."""
    ends = sorted({data.find(b"\n", c) + 1 for c in cuts if data.find(b"\n", c) >= 0})
    out, start = [], 0
    for end in [*ends, len(data)]:
        if end > start:
            out.append((start, data[start:end]))
            start = end
    return out


MESSAGES = ("info", "infos", "bounces", "open", "odd", "triples", "tainted", "heads",
            "ended", "head_odd", "info_lines")


def _same_pairing(data: bytes) -> Block:
    """The block's pairs and messages, read both ways, are the same (every field, and
    every start line's lookups); returns the block read the compiled way."""
    fast, slow = _both(lambda: _decided(Block(0, data)))
    assert fast.fast() is not None and slow.fast() is None
    for name in ("starts", "rows", "slow", "open", "odd", "start_lines"):
        assert getattr(fast.pairs(), name) == getattr(slow.pairs(), name), name
    for name in MESSAGES:
        assert getattr(fast.messages(), name) == getattr(slow.messages(), name), name
    lines = sorted({*slow.pairs().starts, *slow.messages().infos, *slow.messages().info,
                    0, 1, len(data)})
    for block in (fast, slow):
        assert block.messages().start_infos(block.pairs()) == \
            slow.messages().start_infos(slow.pairs())
        for ls in lines:
            assert block.pairs().start_of(ls) == slow.pairs().starts.get(ls)
            assert block.pairs().row_of(ls) == slow.pairs().rows.get(ls)
            assert block.messages().info_of(ls) == slow.messages().info.get(ls, -1)
            if ls in slow.messages().infos:
                assert block.messages().message_of(ls) == slow.messages().infos[ls][0]
    return fast


def _decided(block: Block) -> Block:
    block.fast()  # (the way a block is read is decided at its first use)
    return block


def _paired(block: Block) -> Block:
    block.pairs()
    return block


def _both(fn):
    """``fn`` on a block read the compiled way, then on one read the Python way."""
    saved = logfast.ENABLED
    try:
        logfast.ENABLED = True
        fast = fn()
        logfast.ENABLED = False
        slow = fn()
    finally:
        logfast.ENABLED = saved
    return fast, slow


# Lines around the literals the compiled code looks for (an end line without digits or
# inside another line, needles in other lines' text).
ODD = ("@400000006ab1430e08ea3962 starting delivery 2: success: route=r local=- remote=-",
       "@400000006ab1430e08ea3962 starting delivery 1: deferral: again",
       "end msg ", "xend msg 2", "end msg 12end msg 1", "end msg 1 ", "end msg 1",
       "info msg 1: bytes 5 from <a@b.org> qp delivery 1: msg 1 to remote x",
       "starting delivery 1: msg 2 to remote a@b.orgstarting delivery 2: msg 1 to local y",
       "bounce msg 1 end msg 2", "delivery 12: success: info msg 2: starting delivery 1: ")


@settings(max_examples=600, deadline=None)
@given(any_log(), st.lists(st.integers(0, 4000), max_size=4), st.sampled_from(QUERIES),
       st.lists(st.tuples(st.integers(0, 200), st.sampled_from(ODD)), max_size=4),
       st.sampled_from((None, 0)), st.sampled_from((None, 40, 300)))
def test_the_compiled_loops_give_what_the_python_loops_give(lines, cuts, query, odd, dense,
                                                            limit) -> None:
    """On blocks of every shape (lines that are not canonical, restarted delivery
    numbers, messages open past the block, bounces and triple bounces, prefixes other
    than multilog's), the compiled pairings (start to row, info to start and bounce),
    line finding and needle checks give exactly what the Python loops give, and so
    does a block's whole analysis."""
    compiled()
    for at, line in odd:
        lines.insert(min(at, len(lines)), line)
    data = "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")
    for base, block in _blocks(data, cuts):
        _same_pairing(block)
        for needle in NEEDLES:
            fast, slow = _both(lambda b=block, n=needle: hits_of_text(Block(0, b), n))
            assert fast == slow, needle
            if needle and b" " not in needle:  # (in the block itself, without letters)
                low = Block(0, block)
                assert fast == low.line_starts(
                    m.start() for m in re.finditer(re.escape(needle), low.lower)), needle
            fast, slow = _both(lambda b=block, n=needle: Block(0, b).count(n))
            assert fast == slow, needle
        fast, slow = _both(lambda b=block: Block(0, b).triples())
        assert fast == slow
        starts = Block(0, block).starts_of(list(range(len(block))))
        starts = sorted(set(starts))
        fast, slow = _both(lambda b=block, s=starts: hidden_needles(
            Block(0, b), s, Block(0, b).ends(s)))
        assert list(map(bool, fast)) == slow
        fast, slow = _both(lambda b=block, s=starts: hidden_needles(Block(0, b), s))
        assert list(map(bool, fast)) == slow  # (each line's own end read in C)
        for some in (block, block[:-1]):  # (a last line without its line break)
            fast, slow = _both(lambda b=some: logbulk._loud_lines(_decided(Block(0, b))))
            every = Block(0, some).line_starts(range(len(some)))
            saved = logbulk._MANY_QUIET
            try:
                logbulk._MANY_QUIET = -1  # (the quiet lines told however few they are)
                kept = logbulk.loud(_decided(Block(0, some)), every)
            finally:
                logbulk._MANY_QUIET = saved
            assert slow is None and (fast is None
                                     or fast == (kept, Block(0, some).ends(kept)))
        every = list(range(len(block) + 2)) * (1 + 300 // (len(block) + 2))  # (many)
        fast, slow = _both(lambda b=block, e=every: _decided(Block(0, b)).ends(e))
        assert fast == slow
        for some in (starts, starts[1:]):  # result lines read from the block's pairing
            fast, slow = _both(lambda b=block, s=some: _paired(Block(0, b)).result_lines(s))
            assert fast == slow
        saved = logscan.DENSE, logscan.DENSE_INFOS, logjoin.JOIN_LIMIT
        if dense is not None:  # every block read the dense way
            logscan.DENSE = logscan.DENSE_INFOS = dense
        if limit is not None:
            logjoin.JOIN_LIMIT = limit
        try:
            fast, slow = _both(lambda b=block, at=base: Plan(query).analyze(Block(at, b)))
        finally:
            logscan.DENSE, logscan.DENSE_INFOS, logjoin.JOIN_LIMIT = saved
        assert fast == slow, query


# The pieces of the lines the compiled scans read (qc_events, qc_infos), to put
# together at random: the scans must find exactly what the patterns find.
_PIECES = ("delivery", "starting ", " ", "1", "23", "0", ": ", ":", "msg ", " to local ",
           " to remote ", " to ", "local", "success", "deferral", "failure", "succes",
           "info", " msg ", "bytes ", " from <", "> ", ">", "<", "\n", "x", "é", "\t",
           "info msg 1: bytes 2 from <a@b> ", "delivery 3: msg 4 to remote ",
           "@400000006ab1430e08ea3962 ", "@40000000 ", "Nov 26 05:38:52 host qmail: ",
           "Nov  6 05:38:52 host qmail: ", "2026-11-26T05:38:52 ", "qmail: ")
_HEADS = ("@400000006ab1430e08ea3962 ", "Nov 26 05:38:52 host qmail: ",
          "2026-11-26T05:38:52 ")


_EVENTS = ("starting delivery 12: msg 3 to remote a@b", "starting delivery 1: msg 3 to local ",
           "delivery 12: success: x", "delivery 1: deferral: y", "delivery 2: failure:",
           "delivery 7: failure", "info msg 3: bytes 20 from <a@b> qp 1",
           "info msg 3: bytes 20 from <> qp", "info msg 3: bytes  from <a> ",
           "bounce msg 3 qp 1", "end msg 3", "status: local 0/10 remote 1/20")


@st.composite
def _scanned_lines(draw, head: str) -> str:
    """Lines of a prefix (the shape's, another, a cut one, none) then an event or its
    broken forms, then pieces."""
    out = []
    for _ in range(draw(st.integers(0, 8))):
        prefix = draw(st.sampled_from((head, head, head[:-1], head[1:], "", *_HEADS)))
        if draw(st.booleans()):  # one byte of the prefix changed
            k = draw(st.integers(0, len(prefix)))
            prefix = prefix[:k] + draw(st.sampled_from("x1 :\n@")) + prefix[k + 1:]
        event = draw(st.sampled_from(_EVENTS))
        if draw(st.booleans()):  # cut it, or put a piece inside it
            k = draw(st.integers(0, len(event)))
            event = event[:k] + draw(st.sampled_from(("", *_PIECES))) + event[k + 1:]
        out.append(prefix + event + "".join(draw(st.lists(st.sampled_from(_PIECES),
                                                          max_size=3))))
    return "\n".join(out) + draw(st.sampled_from(("", "\n")))


@settings(max_examples=800, deadline=None)
@given(st.data(), st.sampled_from(_HEADS))
def test_the_compiled_scans_find_what_the_patterns_find(draw, head) -> None:
    """``qc_events`` and ``qc_infos`` find the same matches as the block's ``events``
    and ``infos`` patterns (each match's start, end and groups), on any mix of the
    pieces they read, for each line prefix's shape: the patterns stay the one
    definition of a canonical line."""
    compiled()
    data = draw.draw(st.one_of(_scanned_lines(head), st.lists(
        st.sampled_from(_PIECES), max_size=60).map("".join))).encode()
    _same_scans(data, head)


def test_the_compiled_scans_read_every_broken_event_as_the_patterns() -> None:
    """Each event with any one byte changed or dropped, after each prefix with any one
    byte changed: the compiled scans find what the patterns find."""
    compiled()
    for head in _HEADS:
        lines = []
        for prefix in (head, *(head[:k] + c + head[k + 1:] for k in range(len(head))
                               for c in "x1 :")):
            for event in _EVENTS:
                lines.append(prefix + event)
                if prefix == head:
                    lines += [prefix + event[:k] + c + event[k + 1:]
                              for k in range(len(event)) for c in ("", "x", "1", " ", ":",
                                                                    ">", "<", "\n")]
        _same_scans("\n".join(lines).encode(), head)


def _same_scans(data: bytes, head: str | bytes) -> None:
    """The compiled scans of ``data`` for the shape of prefix ``head`` give each match
    of the shape's patterns, with the same groups."""
    raw = head if isinstance(head, bytes) else head.encode()
    shape = logbulk.shape_of(raw + b"delivery 1: msg 1 to local \n")
    assert shape.at.fullmatch(raw) and shape.table is not None
    block = Block(0, data)
    block.shape, block.width = shape, shape.width
    data = block.data  # (another program's lines blanked: what is scanned)
    cdll = logfast.load()
    got = [a.tolist() for a in logfast.events(cdll, block)]
    ms = list(shape.events.finditer(data))
    assert got == [*([m.start(g) for m in ms] for g in (0, 1, 2, 4, 5)),
                   [m.end() for m in ms]]
    got = [a.tolist() for a in logfast.infos(cdll, block)]
    ms = list(shape.infos.finditer(data))
    assert got == [[m.start() for m in ms], [m.start(1) for m in ms],
                   [m.start(2) for m in ms], [m.end(2) for m in ms],
                   [m.start(3) for m in ms], [m.end(3) for m in ms]]


@settings(max_examples=400, deadline=None)
@given(st.data(), st.sampled_from(_HEADS))
def test_only_quiet_canonical_lines_are_left_unread(draw, head) -> None:
    """``loud`` leaves out exactly the lines the ``line`` pattern reads as a quiet
    event (status, new msg, end msg: no row) with no hidden needle: a line it left out
    that the pattern reads otherwise would lose rows."""
    cdll = compiled()
    text = draw.draw(_scanned_lines(head)) + "\n" + "\n".join(
        draw.draw(st.lists(st.sampled_from(
            [head + q.decode() + "x" for q in logbulk.QUIET]
            + [head[:-1] + "X" + q.decode() for q in logbulk.QUIET]
            + [head + "status: starting delivery 1: msg 2 to local x",
               head + "end msg 3 info msg 3: bytes 1 from <a> ", "new msg 4",
               "@40000000zzzzzzzz00000000 new msg 5", head + "status:x"]), max_size=8)))
    data = text.encode()
    shape = logbulk.shape_of((head + "delivery 1: msg 1 to local \n").encode())
    block = Block(0, data)
    block.shape, block.width = shape, shape.width
    assert block.fast() is cdll
    lines = sorted(set(block.starts_of(list(range(len(data))))))
    saved = logbulk._MANY_QUIET
    try:
        logbulk._MANY_QUIET = 0
        kept = logbulk.loud(block, lines)
    finally:
        logbulk._MANY_QUIET = saved
    hidden = hidden_needles(block, lines, block.ends(lines))
    quiet = [ls for ls, m, h in zip(lines, block.classify(lines), hidden, strict=True)
             if m is not None and logbulk.kind(m) == logbulk.K_OTHER and not h
             and data.startswith(logbulk.QUIET, ls + shape.width)]
    assert kept == [ls for ls in lines if ls not in quiet]


def test_a_shape_table_holds_the_bytes_its_pattern_takes() -> None:
    """The table the compiled scans read a line prefix by is the prefix pattern's own
    answer, byte by byte; a shape whose sample does not match has none (the patterns
    scan then)."""
    for head in _HEADS:
        shape = logbulk.shape_of((head + "delivery 1: msg 1 to local \n").encode())
        table = shape.table
        assert table is not None and len(table) == 256 * shape.width
        wit = shape.witness
        for k in range(shape.width):
            for c in range(256):
                line = wit[:k] + bytes((c,)) + wit[k + 1:]
                assert table[256 * k + c] == (shape.at.fullmatch(line) is not None)
    odd = logbulk.Shape(rb"\d\d", 2, b"ab")
    assert odd.table is None
    block = Block(0, b"\n12delivery 3: success: x\n12info msg 4: bytes 5 from <a> \n")
    block.shape, block.width = odd, 2
    cdll = compiled()
    assert [a.tolist() for a in logfast.events(cdll, block)] == [[3], [-1], [11], [-1],
                                                                   [15], [23]]
    assert [a.tolist() for a in logfast.infos(cdll, block)] == [[28], [32], [37], [38],
                                                                  [54], [55]]


def test_a_block_at_scale_is_paired_alike() -> None:
    """Thousands of deliveries in one block, some messages open at its end, numbers
    coming back: the same messages both ways."""
    compiled()
    from tests.test_logs import T0, delivery_lines, stamp

    lines = []
    for i in range(3000):
        d = delivery_lines(T0 + i, i % 40, 10_000 + i % 700, f"u{i}@x.org",
                           ("success", "deferral", "failure")[i % 3],
                           "route=r local=- remote=- tls=none auth=none" if i % 2 else "ok")
        if i % 7 == 0:  # a result logged as "starting delivery N: status:"
            d[3] = d[3].replace(" delivery ", " starting delivery ")
        for _ in range(i % 6):  # info and start lines some way apart
            d.insert(2, f"{stamp(T0 + i)} status: local 0/10 remote 1/20")
        lines += d if i % 11 else d[:4]  # (every eleventh message still open)
    data = "".join(line + "\n" for line in lines).encode()
    fast = _same_pairing(data)
    assert len(fast.messages().infos) > 500 and fast.messages().open
    # A limit some rows and info lines are exactly that far from their start lines.
    pairs = Block(0, data).pairs()
    start, (row, _, _) = next(iter(pairs.rows.items()))
    saved = logscan.DENSE, logscan.DENSE_INFOS, logjoin.JOIN_LIMIT
    try:
        for dense, limit in ((saved[0], saved[2]), (0, 250), (0, row - start)):
            logscan.DENSE = logscan.DENSE_INFOS = dense
            logjoin.JOIN_LIMIT = limit
            for text in ("x.org", "msg", "-x.org", "from:a@b.org", '"to remote u" route:r',
                         "/./", "/[0-9]/", "/s/", "/^/", "/x*/", "/g$/", r"/\bu/", r"/e\B/",
                         "/(?<=m)s/"):  # (regexes matching often: read line by line)
                fast, slow = _both(lambda t=text: Plan(t).analyze(Block(0, data)))
                assert fast == slow, (text, dense, limit)
            # What the start lines' rows record (texts are read by detail terms).
            def paired(block: Block) -> tuple:
                f, part, out = Found(), {min(block.pairs().rows)}, []
                block.messages()
                Plan("x")._pair_rows(block, 0, block.pairs().start_lines, part, f, out)
                return (f.code, f.text, f.start, f.info), part, out

            fast, slow = _both(lambda: paired(_decided(Block(7, data))))
            assert fast == slow
    finally:
        logscan.DENSE, logscan.DENSE_INFOS, logjoin.JOIN_LIMIT = saved


def test_the_library_is_built_once_in_a_directory_of_the_users_alone(
        logfast_cache: Path) -> None:
    """Built in $XDG_CACHE_HOME/qconsole (created 0700), named by its source, compiler
    command and machine, not writable by others; a second load uses that file."""
    if find_compiler() is None:
        pytest.skip("no C compiler")
    assert logfast.load() is not None
    folder = logfast_cache / "qconsole"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    built = list(folder.iterdir())
    assert len(built) == 1 and built[0].name.startswith("logfast-")
    assert not built[0].stat().st_mode & 0o022
    first = built[0].stat().st_mtime_ns
    logfastlib.reset()
    assert logfast.load() is not None
    assert [p.stat().st_mtime_ns for p in folder.iterdir()] == [first]


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_a_cache_directory_others_may_write_is_refused(
        logfast_cache: Path, mode: int) -> None:
    """A cache directory that a group or others may write (another user could put a
    library there): nothing is built or loaded, the Python loops answer."""
    folder = logfast_cache / "qconsole"
    folder.mkdir(parents=True)
    folder.chmod(mode)
    assert logfastlib.cache_dir() is None
    assert logfast.load() is None
    assert list(folder.iterdir()) == []
    block = Block(0, b"x\n@400000006ab1430e08ea3962 info msg 1: bytes 1 from <a@b.org> qp\n")
    assert block.fast() is None
    assert block.messages().infos == {2: (b"1", b"a@b.org")}


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the directory away")
def test_a_cache_directory_of_another_user_is_refused(
        logfast_cache: Path) -> None:
    folder = logfast_cache / "qconsole"
    folder.mkdir(parents=True, mode=0o700)
    os.chown(folder, 65534, 65534)
    assert logfastlib.cache_dir() is None
    assert logfast.load() is None


def test_a_library_writable_by_others_is_not_loaded(
        logfast_cache: Path) -> None:
    """The cached file itself made writable by others: it is built again (a new file,
    the user's alone), never loaded as it is."""
    if find_compiler() is None:
        pytest.skip("no C compiler")
    path = logfastlib.build()
    assert path is not None
    path.write_bytes(b"not a library")
    path.chmod(0o666)
    logfastlib.reset()
    assert logfast.load() is not None
    assert not path.stat().st_mode & 0o022


def test_no_compiler_or_the_switch_means_the_python_loops(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No compiler ($CC names none): no library, and the search answers the same.
    QCONSOLE_PURE in the environment turns the compiled path off as well."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    logfastlib.reset()
    try:
        assert logfastlib.build() is None
        assert logfast.load() is None
        assert logbulk.Block(0, b"x\n").fast() is None
    finally:
        logfastlib.reset()
    import subprocess
    import sys

    code = "from qconsole import logfast; print(logfast.ENABLED, logfast.lib())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "QCONSOLE_PURE": "1"}, check=True)
    assert out.stdout.split() == ["False", "None"]


# A row added again (a term's own line, then the pairing of its start line, a bounce),
# with what each addition knows of it: UNKNOWN leaves what an earlier one knew.
_ADDITION = st.tuples(st.integers(0, 30), st.integers(0, 4), st.integers(0, 99),
                      st.sampled_from((logscan.UNKNOWN, -1, 7, 1000)),
                      st.sampled_from((logscan.UNKNOWN, -1, 5, 2000)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_ADDITION, max_size=12), max_size=4), st.sets(st.integers(0, 30)),
       st.integers(0, 1 << 40))
def test_the_rows_found_give_the_same_columns_both_ways(chunks, shown, base) -> None:
    """A block's rows added one by one or in bulk, some more than once, become the same
    columns through the compiled sort as through the dicts (newest first, each row once,
    its last code and its last start and info known), and the dicts say the same."""
    cdll = compiled()
    found = [Found(), Found()]
    for chunk in chunks:
        for f in found:
            if len(chunk) % 2:
                for row in chunk:
                    f.add(*row)
            else:
                f.extend(*map(list, zip(*chunk, strict=True)) if chunk else ([],) * 5)
    rows = {r for chunk in chunks for r, *_ in chunk}
    shown &= rows
    fast, slow = found[0].columns(base, shown, cdll), found[1].columns(base, shown)
    assert fast == slow
    assert list(fast[0]) == sorted((base + r for r in shown), reverse=True)
    assert (found[0].code, found[0].start, found[0].info) == (
        found[1].code, found[1].start, found[1].info)
    assert found[0].columns(base, shown, cdll) == slow  # (from the dicts now)


_SORTED = st.lists(st.integers(-3, 60), max_size=40).map(sorted)


@settings(max_examples=300, deadline=None)
@given(_SORTED, _SORTED)
def test_sorted_lists_are_split_and_merged_alike(a, b) -> None:
    """Membership both ways and the union of two sorted lists (duplicates in either),
    in compiled code, are what the Python sets give."""
    compiled()
    block = Block(0, b"x\n")
    fast, slow = _both(lambda: (logbulk.split(_decided(Block(0, b"x\n")), a, b),
                                logbulk.union(_decided(Block(0, b"x\n")), a, b)))
    assert fast == slow
    inside, outside = fast[0]
    assert inside == [x for x in a if x in b] and outside == [x for x in a if x not in b]
    assert fast[1] == sorted(set(a) | set(b))
    assert block.fast() is not None  # (the compiled way was the one asked)


def test_the_messages_that_end_in_a_block_cross_to_the_search_as_one_blob() -> None:
    """A block's Heads carry its ended messages as one bytes object (a pickle of one
    object), read as a set only when a message is looked up: the same messages both
    ways, and after a pickle."""
    import pickle

    compiled()
    from tests.test_logs import T0, delivery_lines

    lines = []
    for i in range(200):
        lines += delivery_lines(T0 + i, i % 9, 500 + i, f"u{i}@x.org", "success", "ok")
    lines.append("@400000006ab1430e08ea3962 end msg 77777")
    data = "".join(line + "\n" for line in lines).encode()
    fast, slow = _both(lambda: logscan.heads_of(Block(0, data)).ended)
    assert fast == slow
    copy = pickle.loads(pickle.dumps(fast))
    assert isinstance(copy, logbulk.Ended) and copy == fast
    assert b"77777" in copy and b"500" in copy and b"699" in copy and b"700" not in copy
    assert b"" not in copy and len(copy.keys()) == 201
    # The first lookups read the bytes, the later ones a set: the same answers.
    every = copy.keys()
    asked = [b"500", b"5", b"50", b"0", b"77777", b"7777", b"699\n500", b"\n", b"x", 5,
             *(str(n).encode() for n in range(490, 710))]
    reused = pickle.loads(pickle.dumps(fast))
    for msg in asked:
        assert (msg in logbulk.Ended(copy.blob)) == (msg in every) == (msg in reused), msg


@pytest.mark.parametrize("text", ["/g$/", r"/\bu/", "/^@/", "/^[0-9]/", r"/\d$/", "/^$/",
                                  "/local 1/", "/spy/",
                                  r"/e\B/", "/(?<=m)s/", r"/\Aend/", "/[0-9]+ to/"])
def test_a_regex_read_line_by_line_reads_each_line_alone(monkeypatch: pytest.MonkeyPatch,
                                                          text: str) -> None:
    """A regex matching often is searched line by line, in compiled code only in the
    lines that can lead to a row, between each line's start and end in the block: its
    anchors and word boundaries read each line as the Python way reads it, alone."""
    compiled()
    from tests.test_logs import T0, delivery_lines

    monkeypatch.setattr(logbulk, "_PROBE", 1)  # (every regex read line by line)
    monkeypatch.setattr(logbulk, "_MANY_MATCHES", 1)
    lines = ["", "end msg 1", "u"]
    for i in range(300):
        lines += delivery_lines(T0 + i, i % 9, 500 + i, f"u{i}@x.org",
                                ("success", "deferral")[i % 2], "ok" if i % 3 else "route=g")
        lines += ["", f"@400000006ab1430e08ea3962 status: local 0/10 remote {i}/20"]
        if i % 50 == 7:  # a quiet line holding a start needle: the start of a row
            lines.insert(-4, "@400000006ab1430e08ea3962 status: local 1/10 starting "
                         f"delivery {i % 9}: msg {500 + i} to remote spy@x.org")
    data = "".join(line + "\n" for line in lines).encode()
    fast, slow = _both(lambda: Plan(text).analyze(Block(0, data)))
    assert fast == slow
    assert len(fast.columns[0]) or fast.follow or text in ("/^[0-9]/", "/^$/", r"/\Aend/")


def test_hidden_needles_of_start_and_info_lines_are_merged_in_order() -> None:
    """A dense word in an info line holding a second info needle, then in a start line
    holding a second start needle: the two lines to follow were merged as if in order
    (the start line's first), and the compiled way followed them in another order than
    the Python way (found by the property test above)."""
    compiled()
    from tests.test_logs import T0, delivery_lines

    lines = ["new msg 9", "info msg 1: bytes 1 from <spy@x.org> qp info msg 1: ",
             "starting delivery 1: msg 2 to remote a@b.orgstarting delivery 2: msg 1 to y"]
    for i in range(5):  # (lines without a stamp: the block's canonical shape)
        lines += [line.split(" ", 1)[1] for line in delivery_lines(
            T0 + i, 1, 1, "ann@x.org", "success", "ok")]
    data = "".join(line + "\n" for line in lines).encode()
    saved = logscan.DENSE, logscan.DENSE_INFOS
    try:
        logscan.DENSE = logscan.DENSE_INFOS = 0
        fast, slow = _both(lambda: Plan("msg").analyze(Block(0, data)))
    finally:
        logscan.DENSE, logscan.DENSE_INFOS = saved
    assert [f[2] for f in fast.follow] == [f[2] for f in slow.follow] == sorted(
        f[2] for f in slow.follow)
    assert fast == slow


_STAMPS = ("Nov 24 10:00:02 ", "Dec  4 10:00:02 ", "Nov 24 10:00:02.123456 ", "Nov 24 10:00:02. ",
           # socklog's, in a multilog directory (no host: the next piece is the program)
           "@400000006adf9bf8280ae852 auth.info: Nov 24 10:00:02 ",
           "@400000006adf9bf8280ae852 local0.err: Dec  4 10:00:02.5 ",
           "@400000006adf9bf8280ae852 auth: Nov 24 10:00:02 ", "@4000 auth.info: Nov 24 10:00:02 ",
           "@400000006adf9bf8280ae852 Auth.info: Nov 24 10:00:02 ",
           " ", "\t", "  Nov 24 10:00:02 ", "1795000000.123456 ", "1795000000. ",
           "179500000000.5 ", "17950000.5 ", "1795000000 ", "Dec 4 10:00:02 ", "Jan 124 10:00:02 ",
           "nov 24 10:00:02 ", "Nov 24 10:0:02 ", "Nov 24 10:00:02", "2026-11-24T10:00:02 ",
           "2026-11-24 10:00:02.123456789 ", "2026-11-24T10:00:02.5+01:00 ",
           "2026-11-24T10:00:02+0100 ", "2026-11-24T10:00:02Z ", "2026-11-24T10:00:02+01:0 ",
           "2026-11-24T10:00:02. ", "2026-11-24T10:00:02-01 ", "@400000006adf9bf8280ae852 ", "")
_HOSTS = ("mail", "mx2", "delivery", "triple", "new", "status:", "info", "x:y", "")
_PROGRAMS = ("sshd[77]", "qmail", "qmail-send[8]", "splogger[3]", "xqmailx", "7", "bounce",
             "qmail-smtpd[9]", "qmail-pop3d", "qmail-popup", "qmail-qmtpd", "qmail-qmqpd",
             "qmail-scanner", "splogger-smtpd", "smtpd",
             "msg", "kernel", "postfix/smtp[9]", "")
_RESTS = ("Invalid user starting delivery 7: msg 9 to remote spy@x.org", "delivery 7: success:",
          "1795000000.500000 info msg 9: bytes 1 from <a@b> qp 1", "", "x")


@st.composite
def _syslog_lines(draw) -> str:
    """A stamp, a host, a program and text (each of them as syslog has it, broken, or
    an event's words), one byte of it changed now and then."""
    line = (draw(st.sampled_from(_STAMPS)) + draw(st.sampled_from(_HOSTS))
            + draw(st.sampled_from((" ", "  ", "\t", ""))) + draw(st.sampled_from(_PROGRAMS))
            + draw(st.sampled_from((": ", ":", ":\t", " "))) + draw(st.sampled_from(_RESTS)))
    if draw(st.booleans()):
        k = draw(st.integers(0, len(line)))
        line = line[:k] + draw(st.sampled_from(("", " ", "\t", "\r", "\x0b", ":", "1", "x",
                                                "A", "-", "\n"))) + line[k + 1:]
    return line


@settings(max_examples=1500, deadline=None)
@given(st.lists(_syslog_lines(), max_size=8), st.booleans())
def test_another_programs_lines_are_found_alike_by_each_loop(lines, last_break) -> None:
    """The lines of another program's syslog (logformat.foreign, line by line) are
    those the compiled loop finds (qc_foreign) and those the Python loop finds (it reads
    only the lines that begin as a stamp does)."""
    from qconsole.logformat import foreign

    cdll = compiled()
    data = ("\n".join(lines) + "\n" * last_break).encode()
    starts, ends, at = [], [], 0
    for line in data.split(b"\n"):
        if foreign(line):
            starts.append(at)
            ends.append(at + len(line))
        at += len(line) + 1
    assert logbulk.foreign_lines(data) == (starts, ends)
    assert logbulk.foreign_lines(data, cdll) == (starts, ends)


def test_a_block_reads_another_programs_lines_as_blank_lines() -> None:
    """The bulk search never sees another program's line: each of its bytes a space, the
    offsets of the other lines kept, both ways."""
    data = (b"@400000006adf9bf8280ae852 new msg 9\n"
            b"Nov 24 10:00:02 mail sshd[77]: starting delivery 7: msg 9 to remote s@x\n"
            b"Nov 24 10:00:02 mail qmail: 1795000000.500000 end msg 9\n"
            b"2026-11-24T10:00:02Z mail cron[1]: end msg 9")
    lines = data.split(b"\n")
    want = b"\n".join((lines[0], b" " * len(lines[1]), lines[2], b" " * len(lines[3])))
    compiled()
    fast, slow = _both(lambda: Block(5, data))
    assert fast.data == slow.data == want
