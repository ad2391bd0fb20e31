"""The dense path of the log search in compiled code, when a C compiler is at hand.

``logfast.c`` (beside this module) holds the scans that find the matches of the
block's ``events`` and ``infos`` patterns (every ``delivery N:`` and ``info msg N:``,
each with whether its line is canonical: the line prefix read with the table its own
pattern gives, :attr:`~qconsole.logbulk.Shape.table`), the loops of the block pairing
of :mod:`qconsole.logbulk` (start lines to their rows, info lines to their start and
bounce lines, the rows of a set of start lines), and the literal searches around them
(a word's lines, end lines, needles inside other lines, merges of sorted lines), run
over arrays of positions. The patterns stay the definition of a canonical line: the
tests hold the scans to their matches. The functions here turn arrays into
the lists, sets and dicts of :class:`~qconsole.logbulk.Pairs` and
:class:`~qconsole.logbulk.Messages` (each in one C call; the dicts only when asked
for). The library is built and loaded by :mod:`qconsole.logfastlib`; without it (no
compiler, not built yet, a cache directory others may write, or ``QCONSOLE_PURE`` in
the environment, or ``ENABLED`` false) the Python loops run, with the same answers.
"""

from __future__ import annotations

import os
import re
from array import array
from bisect import bisect_left
from itertools import accumulate, compress, repeat
from operator import ge, not_
from typing import TYPE_CHECKING

from qconsole import logfastlib
from qconsole.logbulk import _CODE_OF, Ended, Messages, Pairs

if TYPE_CHECKING:
    from ctypes import CDLL

    from qconsole.logbulk import Block

ENABLED = not os.environ.get("QCONSOLE_PURE")  # False: the Python loops only
_ZERO = array("q", [0])


def lib() -> CDLL | None:
    """The loaded library, or None (switched off, not yet, or not at all)."""
    return logfastlib.lib() if ENABLED else None


def load(wait: float = 120.0) -> CDLL | None:
    """The library, built now if needed (for tests and benchmarks), or None."""
    return logfastlib.load(wait) if ENABLED else None


def _zeros(n: int) -> array:
    return _ZERO * n


def _at(a: array) -> int:
    return a.buffer_info()[0]


def _starts(ms: list[re.Match[bytes]], group: int = 0) -> array:
    return array("q", list(map(re.Match.start, ms, repeat(group))))


def count(cdll: CDLL, text: bytes, needle: bytes, most: int = 1 << 62) -> int:
    """``text.count(needle)`` of a non-empty needle, up to ``most``."""
    return cdll.qc_count(text, len(text), needle, len(needle), most)


def hits(cdll: CDLL, data: bytes, text: bytes, needle: bytes) -> list[int]:
    """:func:`~qconsole.logbulk.hits_of_text` (a non-empty needle in ``text``)."""
    cap = len(data) // 64 + 64  # (about a line in 100 bytes: rarely asked twice)
    while True:
        out = _zeros(cap)
        n = cdll.qc_hits(data, text, len(data), needle, len(needle), _at(out), cap)
        if n <= cap:
            return out[:n].tolist()
        cap = n


def needles(cdll: CDLL, data: bytes, starts: list[int], ends: list[int] | None,
            skip: int) -> list[int]:
    """:func:`~qconsole.logbulk.hidden_needles` (1 or 0 for each line; ``ends`` None:
    the lines' own)."""
    n = len(starts)
    a, out = array("q", starts), _zeros(n)
    b = None if ends is None else array("q", ends)
    cdll.qc_needles(data, len(data), n, _at(a), None if b is None else _at(b), skip,
                    _at(out))
    return out.tolist()


def member(cdll: CDLL, lines: list[int], among: list[int]) -> list[int]:
    """:func:`~qconsole.logbulk.member` (1 or 0 for each line)."""
    n = len(lines)
    a, b, out = array("q", lines), array("q", among), _zeros(n)
    cdll.qc_member(n, _at(a), len(b), _at(b), _at(out))
    return out.tolist()


def split(cdll: CDLL, lines: list[int], among: list[int] | array,
          ) -> tuple[list[int], list[int]]:
    """:func:`~qconsole.logbulk.split`."""
    n = len(lines)
    a, b = array("q", lines), among if isinstance(among, array) else array("q", among)
    inside, outside = _zeros(n), _zeros(n)
    k = cdll.qc_split(n, _at(a), len(b), _at(b), _at(inside), _at(outside))
    return inside[:k].tolist(), outside[:n - k].tolist()


def union(cdll: CDLL, a: list[int], b: list[int]) -> list[int]:
    """:func:`~qconsole.logbulk.union`."""
    x, y = array("q", a), array("q", b)
    out = _zeros(len(x) + len(y))
    k = cdll.qc_union(len(x), _at(x), len(y), _at(y), _at(out))
    return out[:k].tolist()


def quiet(cdll: CDLL, data: bytes, lines: list[int], table: bytes, width: int,
          words: tuple[bytes, ...]) -> list[int]:
    """For each line start: the line's prefix is of the shape (``table``, ``width``
    bytes) and one of ``words`` follows it (see :func:`~qconsole.logbulk.loud`)."""
    n = len(lines)
    a, out = array("q", lines), _zeros(n)
    ends = array("q", accumulate(map(len, words)))
    cdll.qc_quiet(data, len(data), n, _at(a), table, width, b"".join(words), len(words),
                  _at(ends), _at(out))
    return out.tolist()


def loud_lines(cdll: CDLL, data: bytes, table: bytes, width: int,
               words: tuple[bytes, ...]) -> tuple[list[int], list[int]]:
    """The starts and ends of the lines of ``data`` but those :func:`quiet` tells that
    hold no needle :func:`needles` finds (see :func:`~qconsole.logbulk.loud`)."""
    cap = len(data) // 64 + 64
    ends = array("q", accumulate(map(len, words)))
    while True:
        starts, stops = _zeros(cap), _zeros(cap)
        n = cdll.qc_loud(data, len(data), table, width, b"".join(words), len(words),
                         _at(ends), _at(starts), _at(stops), cap)
        if n <= cap:
            return starts[:n].tolist(), stops[:n].tolist()
        cap = n


def foreign_lines(cdll: CDLL, data: bytes) -> tuple[array, array]:
    """:func:`~qconsole.logbulk.foreign_lines` in compiled code (as arrays)."""
    cap = len(data) // 512 + 64
    while True:
        starts, stops = _zeros(cap), _zeros(cap)
        n = cdll.qc_foreign(data, len(data), _at(starts), _at(stops), cap)
        if n <= cap:
            return starts[:n], stops[:n]
        cap = n


def without_foreign(cdll: CDLL, data: bytes) -> bytes:
    """:func:`~qconsole.logbulk.without_foreign` in compiled code."""
    starts, stops = foreign_lines(cdll, data)
    if not starts:
        return data
    import ctypes

    out = bytearray(data)
    cdll.qc_blank(ctypes.addressof((ctypes.c_char * len(out)).from_buffer(out)),
                  len(starts), _at(starts), _at(stops))
    return bytes(out)


def line_ends(cdll: CDLL, data: bytes, starts: list[int]) -> list[int] | None:
    """:meth:`~qconsole.logbulk.Block.ends` (None: a negative position, not done)."""
    n = len(starts)
    a, out = array("q", starts), _zeros(n)
    if cdll.qc_line_ends(data, len(data), n, _at(a), _at(out)) < 0:
        return None
    return out.tolist()


def _scan(cdll: CDLL, block: Block, infos: bool) -> list[array] | None:
    """The matches of the block's ``events`` (or ``infos``) pattern found in compiled
    code (see ``qc_events`` and ``qc_infos``): six arrays, or None when the shape's
    table is not known (then the pattern scans)."""
    table = block.shape.table
    if table is None:
        return None
    data, w = block.data, block.width
    scan = cdll.qc_infos if infos else cdll.qc_events
    cap = len(data) // (256 if infos else 128) + 64
    while True:
        out = [_zeros(cap) for _ in range(6)]
        n = scan(data, len(data), table, w, cap, *map(_at, out))
        if n <= cap:
            return [a[:n] for a in out]
        cap = n


def events(cdll: CDLL, block: Block) -> tuple[array, ...]:
    """The block's ``events`` matches: the starts of the match and of groups 1, 2, 4
    and 5 (-1: not there), and the match's end (found once a block)."""
    if block._events is None:
        block._events = _events(cdll, block)
    return block._events


def _events(cdll: CDLL, block: Block) -> tuple[array, ...]:
    got = _scan(cdll, block, False)
    if got is not None:
        p, e, g1, g2, g4, g5 = got
        return p, g1, g2, g4, g5, e
    ms = list(block.shape.events.finditer(block.data))
    return (*(_starts(ms, g) for g in (0, 1, 2, 4, 5)),
            array("q", list(map(re.Match.end, ms))))


def infos(cdll: CDLL, block: Block) -> tuple[array, ...]:
    """The block's ``infos`` matches: the starts of the match and of group 1, the start
    and end of groups 2 and 3 (-1: not there)."""
    got = _scan(cdll, block, True)
    if got is not None:
        return tuple(got)
    ms = list(block.shape.infos.finditer(block.data))
    return (_starts(ms), _starts(ms, 1), _starts(ms, 2),
            array("q", list(map(re.Match.end, ms, repeat(2)))), _starts(ms, 3),
            array("q", list(map(re.Match.end, ms, repeat(3)))))


def rows(cdll: CDLL, block: Block) -> tuple[list[int], list[int], list[int], list[int],
                                           list[int]]:
    """The block's result lines read from its ``events`` matches (which are the
    ``result`` pattern's where a status follows: see ``qc_rows``): the canonical ones'
    line starts, status codes and ends of ``status:``; the other ones' starts and ends."""
    data = block.data
    p, _, g2, _, g5, e = events(cdll, block)
    n = len(p)
    ls, code, after, odd, counts = _zeros(n), _zeros(n), _zeros(n), _zeros(n), _zeros(2)
    cdll.qc_rows(data, n, *map(_at, (p, e, g2, g5)), block.width, _CODE_OF,
                 *map(_at, (ls, code, after, odd, counts)))
    k, no = counts
    odd_i = odd[:no].tolist()
    return (ls[:k].tolist(), code[:k].tolist(), after[:k].tolist(),
            list(map(p.__getitem__, odd_i)), list(map(e.__getitem__, odd_i)))


def pairs(cdll: CDLL, block: Block) -> Pairs:
    """:meth:`~qconsole.logbulk.Block.pairs`, the loop in compiled code."""
    data = block.data
    p, g1, g2, g4, g5, e = events(cdll, block)
    n = len(p)
    s_ls, s_match, s_msg, row_ls, row_code, row_end, slow, open_, odd = (
        _zeros(n) for _ in range(9))
    counts = _zeros(4)
    if cdll.qc_pairs(data, len(data), n, *map(_at, (p, e, g1, g2, g4, g5)), block.width,
                     _CODE_OF, *map(_at, (s_ls, s_match, s_msg, row_ls, row_code, row_end,
                                          slow, open_, odd, counts))) < 0:
        raise MemoryError
    k, ns, no, nodd = counts
    out = FastPairs(data, (p, g4, e), s_ls[:k], s_match[:k], s_msg[:k], row_ls[:k],
                    row_code[:k], row_end[:k], set(slow[:ns].tolist()),
                    set(open_[:no].tolist()), odd[:nodd].tolist())
    out.events = (p, e, g2, g5)
    return out


def result_lines(cdll: CDLL, block: Block, lines: list[int],
                 ) -> tuple[list[int], list[int], list[int]]:
    """:meth:`~qconsole.logbulk.Block.result_lines` of ``lines`` (sorted, the block's
    first line not among them), read from the matches of the block's pairing."""
    pairs = block.pairs()
    assert isinstance(pairs, FastPairs)
    p, e, g2, g5 = pairs.events
    data, n, qs = block.data, len(lines), array("q", lines)
    ls, codes, texts = _zeros(n), _zeros(n), _zeros(n)
    got = cdll.qc_results(data, len(data), len(p), *map(_at, (p, e, g2, g5)), block.width,
                          _CODE_OF, n, _at(qs), *map(_at, (ls, codes, texts)))
    return ls[:got].tolist(), codes[:got].tolist(), texts[:got].tolist()


def messages(cdll: CDLL, block: Block, bounced: list[re.Match[bytes]],
             odd: list[tuple[int, bytes | None, bool]]) -> Messages:
    """:meth:`~qconsole.logbulk.Block.messages`, the loop in compiled code: ``bounced``
    the canonical bounce lines' matches, ``odd`` the lines that may be starts or
    bounces but are not canonical ones, in order, each with its message (as event()
    reads it) and whether a canonical start or bounce line is that line too."""
    data, w = block.data, block.width
    pairs = block.pairs()
    assert isinstance(pairs, FastPairs)
    ip, i1, i2, i2e, i3, i3e = infos(cdll, block)
    ni = len(ip)
    ne = ni + 64  # (a message's info line and end line go together, mostly)
    while True:
        ep, ekey, eend = _zeros(ne), _zeros(ne), _zeros(ne)
        cap, ne = ne, cdll.qc_ends(data, len(data), _at(ep), _at(ekey), _at(eend), ne)
        if ne <= cap:
            break
    sls = array("q", pairs.lines)
    bounces = [m.start() - w for m in bounced]
    bls, bmp = array("q", bounces), _starts(bounced, 2)
    triples = block.triples()
    keys = [msg or b"" for _, msg, _ in odd] + [msg for _, msg in triples]
    offsets = array("q", [0, *accumulate(map(len, keys))])
    extra = b"".join(keys)
    no, nt = len(odd), len(triples)
    ols = array("q", [ls for ls, _, _ in odd])
    olen = array("q", [-1 if msg is None else len(msg) for _, msg, _ in odd])
    oshared = array("q", [int(shared) for _, _, shared in odd])
    tls, tlen = array("q", [ls for ls, _ in triples]), array("q", map(len, keys[no:]))
    events = ni + ne + len(sls) + len(bls) + no + nt
    info_at, canon, s_info, pos, held, tainted, hpos, hkey, hlen, hext, okey, olen2, open_ = (
        _zeros(n) for n in (ni, ni, len(sls), events, events, no, events, events, events,
                            events, no, no, events))
    counts = _zeros(5)
    if cdll.qc_messages(
            data, len(data), w, extra, ni, *map(_at, (ip, i1, i2, i3)), ne, _at(ep),
            len(sls), _at(sls), _at(pairs.msg_at), len(bls), _at(bls), _at(bmp),
            no, _at(ols), _at(offsets), _at(olen), _at(oshared),
            nt, _at(tls), _at(offsets) + 8 * no, _at(tlen),
            *map(_at, (info_at, canon, s_info, pos, held, tainted, hpos, hkey, hlen, hext,
                       okey, olen2, open_, counts))) < 0:
        raise MemoryError
    np_, ntt, nh, nho, nop = counts
    flags = canon.tolist()
    ats = info_at.tolist()
    out = FastMessages(pairs, (data, i2, i2e, i3, i3e, flags), list(compress(ats, flags)),
                       pos[:np_], held[:np_], s_info)
    out.bounces = bounces
    out.triples = [ls for ls, _ in triples]
    out.odd = list(compress(ats, map(not_, flags)))
    out.tainted = set(tainted[:ntt].tolist())
    source = (data, extra)
    for p, k, n, x in zip(hpos[:nh], hkey[:nh], hlen[:nh], hext[:nh], strict=True):
        out.heads.setdefault(source[x][k:k + n], []).append(p)
    out.head_odd = {extra[k:k + n] for k, n in zip(okey[:nho], olen2[:nho], strict=True)}
    out.open = set(open_[:nop].tolist())
    out.ended_at = (i2 + ekey[:ne], i2e + eend[:ne])
    return out


def gather(cdll: CDLL, data: bytes, starts: array, ends: array) -> bytes:
    """The slices of ``data`` from ``starts`` to ``ends``, each followed by a line
    break, as one bytes object."""
    n = len(starts)
    out = array("b", bytes(sum(ends) - sum(starts) + n))
    return out[:cdll.qc_gather(data, n, _at(starts), _at(ends), _at(out))].tobytes()


def pair_rows(cdll: CDLL, block: Block, starts: list[int], limit: int, unknown: int,
              ) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    """The rows of canonical start lines ``starts`` (sorted) within ``limit`` bytes:
    (start line, global; row; status code; text start; info line, global, or
    ``unknown`` when not known here or farther than ``limit``) of each (see
    ``Plan._pair_rows``)."""
    pairs = block.pairs()
    assert isinstance(pairs, FastPairs)
    msgs = block._messages
    info = None if msgs is None else _at(msgs.s_info)  # type: ignore[attr-defined]
    n = len(starts)
    qs = array("q", starts)
    at, rows, codes, texts, infos = (_zeros(n) for _ in range(5))
    got = cdll.qc_pair_rows(block.data, len(block.data), len(pairs.lines),
                            _at(pairs.s_ls), _at(pairs.row_ls), _at(pairs.row_code),
                            _at(pairs.row_end), info, n, _at(qs), limit, block.base,
                            unknown, *map(_at, (at, rows, codes, texts, infos)))
    return (at[:got].tolist(), rows[:got].tolist(), codes[:got].tolist(),
            texts[:got].tolist(), infos[:got].tolist())


def _lookup(lines: list[int], ls: int) -> int:
    """The index of ``ls`` in the sorted ``lines``, or -1."""
    k = bisect_left(lines, ls)
    return k if k < len(lines) and lines[k] == ls else -1


class FastPairs(Pairs):
    """Pairs read from the compiled loop's arrays: its dicts are built when first asked
    for (the dense path asks for a few entries, or for the arrays)."""

    def __init__(self, data: bytes, matches: tuple[array, array, array], s_ls: array,
                 match: array, msg_at: array, row_ls: array, row_code: array,
                 row_end: array, slow: set[int], open_: set[int], odd: list[int]) -> None:
        self.data = data
        self.ms = matches  # the events matches' starts, message starts and ends
        self.s_ls, self.match, self.msg_at = s_ls, match, msg_at
        self.lines = s_ls.tolist()
        self.row_ls, self.row_code, self.row_end = row_ls, row_code, row_end
        self.slow, self.open, self.odd = slow, open_, odd
        # The matches' starts, ends, and group 2 and 5 starts (see qc_pairs).
        self.events: tuple[array, array, array, array] = (_ZERO, _ZERO, _ZERO, _ZERO)
        self._starts: dict[int, tuple[bytes, bytes, int]] | None = None
        self._rows: dict[int, tuple[int, int, int]] | None = None

    @property
    def starts(self) -> dict[int, tuple[bytes, bytes, int]]:  # type: ignore[override]
        if self._starts is None:
            p, g4, e = self.ms
            data, match = self.data, self.match.tolist()
            at = list(map((9).__add__, map(p.__getitem__, match)))
            msg = list(map(g4.__getitem__, match))
            self._starts = dict(zip(self.lines, zip(
                map(data.__getitem__, map(slice, at, map(data.index, repeat(b":"), at))),
                map(data.__getitem__, map(slice, msg, map(data.index, repeat(b" "), msg))),
                map(e.__getitem__, match), strict=True), strict=True))
        return self._starts

    @property
    def rows(self) -> dict[int, tuple[int, int, int]]:  # type: ignore[override]
        if self._rows is None:
            has = list(map(ge, self.row_ls, repeat(0)))
            self._rows = dict(zip(compress(self.lines, has), zip(
                compress(self.row_ls, has), compress(self.row_code, has),
                compress(self.row_end, has), strict=True), strict=True))
        return self._rows

    @property
    def start_lines(self) -> list[int]:
        return self.lines

    def start_of(self, ls: int) -> tuple[bytes, bytes, int] | None:
        k = _lookup(self.lines, ls)
        if k < 0:
            return None
        p, g4, e = self.ms
        data, i = self.data, self.match[k]
        return (data[p[i] + 9:data.index(b":", p[i] + 9)],
                data[g4[i]:data.index(b" ", g4[i])], e[i])

    def row_of(self, ls: int) -> tuple[int, int, int] | None:
        k = _lookup(self.lines, ls)
        if k < 0 or self.row_ls[k] < 0:
            return None
        return self.row_ls[k], self.row_code[k], self.row_end[k]

class FastMessages(Messages):
    """Messages read from the compiled loop's arrays (dicts built when first asked
    for)."""

    def __init__(self, pairs: FastPairs, matches: tuple[bytes, array, array, array, array,
                                                        list[int]],
                 lines: list[int], pos: array, held: array, s_info: array) -> None:
        self.bounces: list[int] = []
        self.open: set[int] = set()
        self.odd: list[int] = []
        self.triples: list[int] = []
        self.tainted: set[int] = set()
        self.heads: dict[bytes, list[int]] = {}
        self.head_odd: set[bytes] = set()
        # The infos matches (the block, starts and ends of groups 2 and 3, canonical
        # or not), read into bytes when first asked for; what ended is read from.
        self._matches = matches
        self._msgs: list[bytes] | None = None
        self._senders: list[bytes] | None = None
        self.ended_at: tuple[array, array] = (array("q"), array("q"))
        self._ended: set[bytes] | None = None
        self.pairs, self.lines = pairs, lines
        self.pos, self.held = pos, held
        self.s_info = s_info
        self._start_infos = s_info.tolist()
        self._info: dict[int, int] | None = None
        self._infos: dict[int, tuple[bytes, bytes]] | None = None

    @property
    def msgs(self) -> list[bytes]:
        """The canonical info lines' messages, in order."""
        if self._msgs is None:
            data, i2, i2e, _, _, flags = self._matches
            self._msgs = list(compress(map(data.__getitem__, map(slice, i2, i2e)), flags))
        return self._msgs

    @property
    def senders(self) -> list[bytes]:
        """The canonical info lines' senders, in order."""
        if self._senders is None:
            data, _, _, i3, i3e, flags = self._matches
            self._senders = list(map(data.__getitem__, map(slice, compress(i3, flags),
                                                           compress(i3e, flags))))
        return self._senders

    @property
    def ended(self) -> set[bytes]:  # type: ignore[override]
        if self._ended is None:
            data = self._matches[0]
            self._ended = set(map(data.__getitem__, map(slice, *self.ended_at)))
        return self._ended

    def ended_keys(self) -> Ended:
        cdll = logfastlib.lib()
        if cdll is None:
            return super().ended_keys()
        return Ended(gather(cdll, self._matches[0], *self.ended_at))

    @property
    def info(self) -> dict[int, int]:  # type: ignore[override]
        if self._info is None:
            self._info = dict(zip(self.pos.tolist(), self.held.tolist(), strict=True))
        return self._info

    @property
    def infos(self) -> dict[int, tuple[bytes, bytes]]:  # type: ignore[override]
        if self._infos is None:
            self._infos = dict(zip(self.lines, zip(self.msgs, self.senders, strict=True),
                                   strict=True))
        return self._infos

    @property
    def info_lines(self) -> list[int]:
        return self.lines

    def info_of(self, ls: int) -> int:
        k = _lookup(self.pairs.lines, ls)
        return self._start_infos[k] if k >= 0 else self.info.get(ls, -1)

    def message_of(self, ls: int) -> bytes:
        k = _lookup(self.lines, ls)
        if k < 0:
            raise KeyError(ls)
        return self.msgs[k]

    def start_infos(self, pairs: Pairs) -> list[int]:
        assert pairs is self.pairs
        return self._start_infos


def columns(cdll: CDLL, rows: list[int], codes: list[int], starts: list[int],
            infos: list[int], keep: bytes, base: int, unknown: int,
            ) -> tuple[array, array, array, array]:
    """:meth:`~qconsole.logfound.Found.columns` of rows added in bulk (in order, each
    entry kept when its byte in ``keep`` is set; ``unknown``: a start or info that
    entry does not know): result (``base`` added), start and info offsets, status."""
    n = len(rows)
    ins = [array("q", x) for x in (rows, codes, starts, infos)]
    o_row, o_start, o_info = _zeros(n), _zeros(n), _zeros(n)
    o_code = array("b", bytes(n))
    got = cdll.qc_columns(n, *map(_at, ins), keep, base, unknown,
                          *map(_at, (o_row, o_start, o_info, o_code)))
    if got < 0:
        raise MemoryError
    return o_row[:got], o_start[:got], o_info[:got], o_code[:got]
