"""One block of the history searched for a filter, as a pure function of its bytes:
the rows shown, and what is left to do the exact way.

:meth:`Plan.analyze` does, for one block, all that the search does in bulk (see
:mod:`qconsole.logsearch` for the steps): which terms hold for which rows of the block
by lines of the block, the candidates, the terms on the result line. It reads nothing
but the block, so it may run in another process (:func:`analyze_span`). What needs the
file beyond the block comes back as work: rows to check the exact way, and start, info
or other lines to follow forwards (:class:`~qconsole.logjoin.Joiner`), or info lines
whose rows past the block the newer blocks' :class:`Heads` give.
"""

from __future__ import annotations

import os
import re
from itertools import compress, repeat
from operator import add, and_, eq, ge, itemgetter, le, mul, ne, not_, sub
from typing import TYPE_CHECKING, NamedTuple

from qconsole import logfast, logjoin
from qconsole.logbulk import (
    G_BOUNCE,
    G_INFO,
    G_MSG,
    G_NUMBER,
    G_SENDER,
    G_STATUS,
    K_BOUNCE,
    K_INFO,
    K_RESULT,
    K_SLOW,
    K_START,
    STATUS_CODES,
    Block,
    Ended,
    follow_infos,
    follow_starts,
    hidden_needles,
    hits_of_regex,
    hits_of_text,
    kind,
    loud,
    split,
    union,
)
from qconsole.logformat import (
    _EXPIRED_LOGGED,
    E_BOUNCE,
    E_MSG,
    E_STATUS,
    E_TRIPLE,
    event,
    foreign,
    message_events,
    triple_bounces,
)
from qconsole.logfound import UNKNOWN, Columns, Found
from qconsole.logjoin import BOUNCE, DEFERRAL, FAILURE, RAW, SUCCESS, bounced
from qconsole.logquery import DETAIL_FIELDS, Lines, Term, parse_query
from qremote.delivery.report import parse_detail

if TYPE_CHECKING:
    from ctypes import CDLL

INFO_MSG = re.compile(rb"info msg (\d+): ")
RESULT_CODES = {"success": SUCCESS, "deferral": DEFERRAL, "failure": FAILURE,
                "bounce": BOUNCE, "raw": RAW}
LINE_TERMS = ("text", "regex", "to", "from", "msg")  # terms reading start or info lines
DENSE = 4096  # more hits in a block than this: read every row of the block instead
# More info lines than this hit in a block: pair the whole block's lines at once rather
# than follow each (a message open for days is followed to the block's end).
DENSE_INFOS = 64
MAX_TAILS = 100_000

# Work to do the exact way: (term, "start", offset, (delivery number, its info line or
# UNKNOWN)),
# (term, "info", offset, message), (term, "line", offset, (line, as start, as info));
# (term, "tail", offset, message): an info line whose rows in the block are found, its
# message going on past the block (newer blocks' Heads say where).
Follow = tuple[int, str, int, object]
# Per message, its start, bounce and triple bounce lines in a block before the first line
# that ends its chain there (see Messages.heads), global: (line, row or UNKNOWN,
# status, delivery number or None); a message with a start whose row is not known here
# has UNKNOWN (its row is looked up the exact way, when asked).
Head = tuple[int, int, int, bytes | None]


class Heads(NamedTuple):
    """What an older block's info line needs of this block to find its rows here: see
    :attr:`qconsole.logbulk.Messages.heads`."""

    heads: dict[bytes, list[Head]]
    ended: Ended | set[bytes]  # messages whose chain ends in the block
    odd: set[bytes]  # messages with a line to read the exact way before that


class BlockResult(NamedTuple):
    """What a block's analysis found (offsets global)."""

    base: int
    size: int
    columns: Columns  # the rows to show, newest first (when waiting: the candidates)
    parts: dict[int, list[int]]  # when waiting: rows each line term holds for here
    exact: list[int]  # rows of the block to check the exact way
    follow: list[Follow]  # lines to follow the exact way
    heads: Heads | None = None  # when the block's lines were paired


class Plan:
    """A filter's plan for searching blocks (its terms, driver, and caches)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.query = query = parse_query(text)
        self.terms = query.terms
        driver = query.driver
        self.driver = None if driver is None else self.terms.index(driver)
        self.line_terms = [i for i, t in enumerate(self.terms) if t.field in LINE_TERMS]
        # An excluded term that reads start or info lines: a block waits for older ones.
        self.wait = any(self.terms[i].negate for i in self.line_terms)
        self.detail_bit = {i: 1 << k for k, i in enumerate(
            i for i, t in enumerate(self.terms) if t.field in DETAIL_FIELDS)}
        # The detail terms that hold for a report without a detail line (route:?).
        self.bare_bits = sum(bit for i, bit in self.detail_bit.items() if self.terms[i].bare)
        self._tails: dict[bytes, int] = {}
        self._detail_block = -1  # the block the detail bits below are of
        self._detail_of: dict[int, int] = {}

    def analyze(self, block: Block) -> BlockResult:
        """Search one block in bulk."""
        base = block.base
        f = Found()
        exact: set[int] = set()
        follow: list[Follow] = []
        parts = {i: self._line_term(block, i, f, exact, follow) for i in self.line_terms}
        cand = self._candidates(block, f, exact, parts)
        for i, t in enumerate(self.terms):
            if i not in parts and cand:
                holds = self._result_term(block, i, t, cand, f)
                cand = cand - holds if t.negate else holds
        cand.difference_update([r - base for r in exact if base <= r < base + block.size])
        # Rows of a line alone, decided here (matching the whole filter): shown.
        raw = self._raw_rows(block, exact) if exact else []
        if raw:
            n = len(raw)
            f.extend(raw, repeat(RAW, n), repeat(0, n), repeat(-1, n), repeat(-1, n))
        if self.wait:
            for i in self.line_terms:  # (what the block's rows wait for: they hold)
                if not self.terms[i].negate:
                    parts[i].update(raw)
            glob = {i: list(map(base.__add__, p)) for i, p in parts.items()}
        else:
            glob = {}
            for i in self.line_terms:
                if i != self.driver:  # (the candidates are the driver's rows already)
                    cand &= parts[i]
        cand.update(raw)
        heads = None if block._messages is None else heads_of(block)
        return BlockResult(base, block.size, f.columns(base, cand, block.fast()), glob,
                           sorted(exact), follow, heads)

    def _raw_rows(self, block: Block, exact: set[int]) -> list[int]:
        """The rows to check the exact way that are lines with no event (another
        program's, garbage: millions in some logs), decided here as that way decides
        them (:func:`raw_row_matches`) and taken out of ``exact``: those that match."""
        base, data = block.base, block.data
        inside = sorted(r - base for r in exact if base <= r < base + block.size)
        held = []
        for ls, end in zip(inside, block.ends(inside), strict=True):
            line = data[ls:end]
            if event(line) is None:
                exact.discard(base + ls)
                if raw_row_matches(self, line):
                    held.append(ls)
        return held

    def _lines_of(self, block: Block, t: Term) -> list[int]:
        """Lines of the block that may make ``t`` hold (exactly those for a word or
        regex)."""
        if t.regex is not None:  # a regex, or a word with letters beyond ASCII
            return hits_of_regex(block, t.regex, t.lowered,
                                 None if t.chars is None else t.search_line)
        patterns = t.patterns or {"to": (b"starting delivery ",), "from": (b"info msg ",)
                                  }.get(t.field, ())
        if t.field == "msg":  # its start, info and bounce lines, and triple bounces
            msg = t.value.encode()
            found = [*message_events(msg).finditer(block.data),
                     *triple_bounces(msg).finditer(block.data)]
            return block.line_starts(sorted(map(re.Match.start, found)))
        if len(patterns) == 1:
            return hits_of_text(block, patterns[0])
        lines = set()
        for p in patterns:
            lines.update(hits_of_text(block, p))
        return sorted(lines)

    def _line_term(self, block: Block, i: int, f: Found, exact: set[int],
                   out: list[Follow]) -> set[int]:
        """The rows of the block for which term ``i`` holds by one of the block's lines
        (its own line, or a start or info line in the block); rows to check the exact
        way go to ``exact``, lines to follow the exact way to ``out``."""
        t = self.terms[i]
        field = t.field
        part: set[int] = set()
        dense = False
        if field == "text" and t.regex is None and block.count_to(t.patterns[0],
                                                                  DENSE + 1) > DENSE:
            part, lines = self._dense_text(block, t.patterns[0], f)
            dense = True
        elif field in ("to", "from") and (not t.patterns or _more_than(
                block, t.patterns, DENSE if field == "to" else DENSE_INFOS)):
            lines = self._dense_lines(block, i, t, part, f, out)
        else:
            lines = self._lines_of(block, t)
            # Many info lines, or one whose message goes on past the block (its rows
            # there come from the newer blocks' heads): the block's lines paired.
            dense = field != "msg" and (len(lines) > DENSE or (field != "to" and (
                _info_lines(block, lines) > DENSE_INFOS or _open_info(block, lines))))
            if dense and field == "from":
                lines = self._dense_lines(block, i, t, part, f, out)
                dense = False
            elif dense and field in ("text", "regex") and lines:
                part, lines = self._dense_hits(block, lines, f)  # (a regex)
        if dense and lines:
            lines = self._dense_lines(block, i, t, part, f, out, lines)
        lines = loud(block, lines)
        if not lines:
            return part
        data, base = block.data, block.base
        ms = block.classify(lines)
        kinds = list(map(kind, ms))
        ends = block.ends(lines)
        # A line holding a start or info needle past its own event is the start or info
        # line of other rows too: the exact way.
        for j in compress(range(len(lines)), hidden_needles(block, lines, ends)):
            kinds[j] = K_SLOW
        s_j: list[int] = []  # start lines for which the term holds
        i_j: list[int] = []  # info lines for which the term holds
        slow: list[int] = []
        if field in ("text", "regex"):
            for j, k in enumerate(kinds):
                if k in (K_RESULT, K_BOUNCE):
                    m = ms[j]
                    part.add(lines[j])
                    f.add(lines[j], STATUS_CODES[m[G_STATUS]] if k == K_RESULT else BOUNCE,
                          m.end())
                elif k == K_START:
                    s_j.append(j)
                elif k == K_INFO:
                    i_j.append(j)
                elif k == K_SLOW:
                    slow.append(j)
        elif field == "msg":  # (a start of the message covers its info line)
            v = t.value.encode()
            for j, k in enumerate(kinds):
                if k == K_START and ms[j][G_MSG] == v:
                    s_j.append(j)
                elif k == K_BOUNCE and ms[j][G_BOUNCE] == v:
                    part.add(lines[j])
                    f.add(lines[j], BOUNCE, ms[j].end(), -1)
                elif k == K_SLOW:
                    slow.append(j)
        else:  # to: (start lines) and from: (info lines)
            want = K_START if field == "to" else K_INFO
            test = t.address_test()
            picked, values = [], []
            for j, k in enumerate(kinds):
                if k == want:
                    m = ms[j]
                    value = (data[m.end():ends[j]] if field == "to"
                             else m[G_SENDER] or b"<>")
                    if value.isascii():
                        picked.append(j)
                        values.append(value.lower())
                    else:
                        slow.append(j)
                elif k == K_SLOW:
                    slow.append(j)
            held = compress(picked, map(test, values))
            (s_j if field == "to" else i_j).extend(held)
        # Start lines: their rows.
        done_starts = {lines[j] for j in s_j}
        self._follow_starts(block, i, [ends[j] for j in s_j], [ms[j][G_NUMBER] for j in s_j],
                            [lines[j] for j in s_j], [UNKNOWN] * len(s_j), part, f, exact,
                            out)
        # Info lines: their start and bounce lines, then the rows of those starts.
        if i_j:
            info_at = [lines[j] for j in i_j]
            si, sls, snum, bi, bls, islow = follow_infos(block, [ends[j] for j in i_j],
                                                         [ms[j][G_INFO] for j in i_j])
            for k, ls in zip(bi, bls, strict=True):
                if ls - info_at[k] > logjoin.JOIN_LIMIT:
                    continue
                part.add(ls)
                f.add(ls, BOUNCE, ls, -1, base + info_at[k])
            keep = [ls not in done_starts and ls - info_at[k] <= logjoin.JOIN_LIMIT
                    for k, ls in zip(si, sls, strict=True)]
            sls_k = list(compress(sls, keep))
            self._follow_starts(block, i, block.ends(sls_k), list(compress(snum, keep)), sls_k,
                                [base + info_at[k] for k in compress(si, keep)], part, f,
                                exact, out)
            for k in islow:
                out.append((i, "info", base + info_at[k], ms[i_j[k]][G_INFO]))
        # Lines that are not canonical: the exact way.
        for j in slow:
            at = base + lines[j]
            line = data[lines[j]:ends[j]]
            if _is_row(line):
                exact.add(at)
            if b"starting delivery " not in line and b"info msg " not in line:
                continue  # (the start or info line of no row: Joiner.rows_of_line)
            as_start = t.holds(Lines(None, line, None, ""))  # type: ignore[arg-type]
            as_info = t.holds(Lines(None, None, line, ""))  # type: ignore[arg-type]
            if as_start or as_info:
                out.append((i, "line", at, (line, as_start, as_info)))
        return part

    def _dense_lines(self, block: Block, i: int, t: Term, part: set[int], f: Found,
                     out: list[Follow], lines: list[int] | None = None) -> list[int]:
        """Term ``i`` holds by many start or info lines of the block: follow them all at
        once (:meth:`Block.pairs`, :meth:`Block.messages`); returns the other lines
        that hold it (``lines`` for a word or regex; for ``to:`` and ``from:``, the
        lines that are not canonical) for the line-by-line way."""
        data = block.data
        pairs = block.pairs()
        field = t.field
        if lines is not None:  # a word or a regex: the hit lines that are start lines
            s_hit, rest = split(block, lines, pairs.start_lines)
            i_hit: list[int] = []
            # (only a line with "info msg " at its event can be a canonical info line)
            if any(map(data.startswith, repeat(b"info msg "),
                       map(add, rest, repeat(block.width)))):
                i_hit, rest = split(block, rest, block.messages().info_lines)
        elif field == "to":
            starts = list(pairs.starts)
            rcpt = list(map(data.__getitem__, map(slice, map(itemgetter(2), map(
                pairs.starts.__getitem__, starts)), block.ends(starts))))
            plain = list(map(bytes.isascii, rcpt))
            s_hit = list(compress(compress(starts, plain), map(
                t.address_test(), map(bytes.lower, compress(rcpt, plain)))))
            i_hit = []
            rest = sorted(set(compress(starts, map(not_, plain))).union(
                block.line_starts(pairs.odd)))
        else:  # from:
            msgs = block.messages()
            infos = list(msgs.infos)
            senders = [msgs.infos[ls][1] or b"<>" for ls in infos]
            plain = list(map(bytes.isascii, senders))
            i_hit = list(compress(compress(infos, plain), map(
                t.address_test(), map(bytes.lower, compress(senders, plain)))))
            s_hit = []
            rest = sorted(set(compress(infos, map(not_, plain))).union(msgs.odd))
        # A start or info line with another needle past its own event: the slow way.
        # (s_hit, i_hit and rest are sorted lists of line starts)
        hidden: list[int] = []
        for group in (s_hit, i_hit):
            flags = hidden_needles(block, group) if group else []
            if any(flags):
                hidden += compress(group, flags)
                group[:] = compress(group, map(not_, flags))
        if hidden:
            rest = union(block, rest, sorted(hidden))  # (the starts, then the infos)
        if i_hit:
            msgs = block.messages()
            i_set = set(i_hit)
            # Its message goes on past the block, or holds a line that is not canonical.
            for k in sorted((msgs.open | msgs.tainted).intersection(i_set)):
                out.append((i, "info" if k in msgs.tainted else "tail", block.base + k,
                            msgs.message_of(k)))
            limit = logjoin.JOIN_LIMIT
            for ls in (*msgs.bounces, *msgs.triples):
                at = msgs.info_of(ls)
                if at in i_set and ls - at <= limit:
                    part.add(ls)
                    f.add(ls, BOUNCE, ls, -1, block.base + at)
            starts = pairs.start_lines
            infos = msgs.start_infos(pairs)
            more = compress(starts, map(and_, map(i_set.__contains__, infos),
                                        map(le, map(sub, starts, infos), repeat(limit))))
            s_hit = union(block, s_hit, list(more)) if s_hit else list(more)
        self._pair_rows(block, i, s_hit, part, f, out)
        return rest

    def _pair_rows(self, block: Block, i: int, starts: list[int], part: set[int],
                   f: Found, out: list[Follow]) -> None:
        """The rows of canonical start lines, from the block's pairing."""
        pairs = block.pairs()
        base, limit, data = block.base, logjoin.JOIN_LIMIT, block.data
        msgs = block._messages
        fast = block.fast()
        if fast is not None:
            self._pair_rows_fast(fast, block, i, starts, part, f, out)
            return
        got = list(map(pairs.rows.get, starts))
        for s in compress(starts, map(not_, got)):
            if s in pairs.slow or s in pairs.open:
                self._follow_start(block, i, s, out)
        starts = list(compress(starts, got))
        got = list(compress(got, got))
        rows = list(map(itemgetter(0), got))
        # Within the limit, and not in part already (a row in part already is shown).
        keep = list(map(and_, map(le, map(sub, rows, starts), repeat(limit)),
                        map(not_, map(part.__contains__, rows))))
        if not all(keep):
            starts, got, rows = (list(compress(x, keep)) for x in (starts, got, rows))
        part.update(rows)
        ends = list(map(itemgetter(2), got))
        f.code.update(zip(rows, map(itemgetter(1), got), strict=True))
        f.text.update(zip(rows, map(add, ends, map(data.startswith, repeat(b" "), ends)),
                          strict=True))
        f.start.update(zip(rows, map(base.__add__, starts), strict=True))
        if msgs is not None:
            infos = list(map(msgs.info.get, starts, repeat(-1)))
            known = list(map(and_, map(ge, infos, repeat(0)),
                             map(le, map(sub, starts, infos), repeat(limit))))
            f.info.update(zip(compress(rows, known), map(base.__add__, compress(infos, known)),
                              strict=True))

    def _pair_rows_fast(self, fast: CDLL, block: Block, i: int, starts: list[int],
                        part: set[int], f: Found, out: list[Follow]) -> None:
        """:meth:`_pair_rows` with the join in compiled code."""
        pairs = block.pairs()
        for s in sorted((pairs.slow | pairs.open).intersection(starts)):
            self._follow_start(block, i, s, out)
        at, rows, codes, texts, infos = logfast.pair_rows(fast, block, starts,
                                                          logjoin.JOIN_LIMIT, UNKNOWN)
        if part:
            keep = list(map(not_, map(part.__contains__, rows)))
            if not all(keep):
                at, rows, codes, texts, infos = (list(compress(x, keep))
                                                 for x in (at, rows, codes, texts, infos))
        part.update(rows)
        f.extend(rows, codes, texts, at, None if block._messages is None else infos)

    def _follow_start(self, block: Block, i: int, s: int, out: list[Follow]) -> None:
        """A start line whose row lies past the block or behind a line that is not
        canonical: the exact way (with its info line when known here)."""
        msgs = block._messages
        info = -1 if msgs is None else msgs.info_of(s)
        info = block.base + info if info >= 0 and s - info <= logjoin.JOIN_LIMIT else UNKNOWN
        start = block.pairs().start_of(s)
        assert start is not None
        out.append((i, "start", block.base + s, (start[0], info)))

    def _dense_text(self, block: Block, needle: bytes, f: Found,
                    ) -> tuple[set[int], list[int]]:
        """A word in many lines of the block: see :meth:`_dense_hits`."""
        return self._dense_hits(block, hits_of_text(block, needle), f)

    def _dense_hits(self, block: Block, hits: list[int], f: Found,
                    ) -> tuple[set[int], list[int]]:
        """A word or regex in many lines of the block (``hits``, sorted): the rows whose
        own line holds it (the canonical result lines among them), and the other lines
        that hold it (to follow)."""
        held, codes, texts = block.result_lines(hits)
        f.extend(held, codes, texts)
        # A result line with the needle of a start or info line in its report is that
        # start or info line too: the exact way. Both needles hold " msg " (a start
        # line's as the Joiner reads it: "starting delivery N: msg "), which Python
        # looks for first; compiled code looks for both needles at once, then for " msg "
        # in the few lines that hold one (a report may hold "starting delivery N: ").
        fast = block.fast() is not None
        maybe = held if fast else _holding_msg(block, held)
        hidden = list(compress(maybe, hidden_needles(block, maybe)))
        if fast and hidden:
            hidden = _holding_msg(block, hidden)
        others = split(block, hits, held)[1]  # bounces...
        return set(held), union(block, others, hidden) if hidden else others

    def _follow_starts(self, block: Block, i: int, ends: list[int], numbers: list[bytes],
                       starts: list[int], infos: list[int], part: set[int], f: Found,
                       exact: set[int], out: list[Follow]) -> None:
        if not ends:
            return
        base = block.base
        idx, rows, codes, texts, slow = follow_starts(block, ends, numbers)
        for k, ls, code, ts in zip(idx, rows, codes, texts, strict=True):
            if ls - starts[k] > logjoin.JOIN_LIMIT:
                continue
            part.add(ls)
            f.add(ls, code, ts, base + starts[k], infos[k])
        out.extend((i, "start", base + starts[k], (numbers[k], infos[k])) for k in slow)

    # Candidates and terms on the result line -----------------------------------

    def _candidates(self, block: Block, f: Found, exact: set[int],
                    parts: dict[int, set[int]]) -> set[int]:
        base = block.base
        d = self.driver
        if d is not None and d in parts:
            return set(parts[d])
        if d is None:
            lines = None
        else:  # a term on the result line: the lines holding its literal
            lines = self._lines_of(block, self.terms[d])
            if len(lines) <= DENSE:
                ms = block.classify(lines)
                cand = set()
                for ls, m, k in zip(lines, ms, map(kind, ms), strict=True):
                    if k == K_RESULT:
                        cand.add(ls)
                        f.add(ls, STATUS_CODES[m[G_STATUS]], m.end())
                    elif k == K_BOUNCE:
                        cand.add(ls)
                        f.add(ls, BOUNCE, m.end(), -1)
                    elif k == K_SLOW:
                        exact.add(base + ls)
                return cand
        cand = set(f.take_rows(block, tails=bool(self.detail_bit)))
        slow = block.rows().slow
        if lines is not None:
            cand.intersection_update(lines)
            slow = set(slow).intersection(lines)
        exact.update(map(base.__add__, slow))
        return cand

    def _result_term(self, block: Block, i: int, t: Term, cand: set[int], f: Found,
                     ) -> set[int]:
        """The candidates for which a term on the result line holds."""
        rows = sorted(cand)  # in file order: the block's bytes are read in order
        codes = list(map(f.code.__getitem__, rows))
        if t.field == "result":
            return set(compress(rows, map(eq, codes, repeat(RESULT_CODES[t.value]))))
        rows = list(compress(rows, map(ne, codes, repeat(BOUNCE))))
        bit = self.detail_bit[i]
        return set(compress(rows, map(bit.__and__, self._details(block, rows, f))))

    def _details(self, block: Block, rows: list[int], f: Found) -> list[int]:
        """For each row: the bits of the detail terms its detail line makes hold."""
        if self._detail_block != block.base:
            self._detail_block, self._detail_of = block.base, {}
        known = self._detail_of
        if not known and f.all_rows and block.rows().tails is not None:
            known.update(self._block_details(block, f))
        missing = [r for r in rows if r not in known]
        if missing:
            known.update(zip(missing, self._row_details(block, missing, f), strict=True))
        return list(map(known.__getitem__, rows))

    def _block_details(self, block: Block, f: Found) -> dict[int, int]:
        """The detail bits of every row of the block, from the tails read with them."""
        rows = block.rows()
        tails = rows.tails
        assert tails is not None
        cache = self._tails
        if len(cache) > MAX_TAILS:
            cache.clear()
        for tail in set(tails).difference(cache):
            cache[tail] = 0 if tail is None else self._tail_bits(tail)
        out = dict(zip(rows.ls, map(cache.__getitem__, tails), strict=True))
        # No tail: no detail line, or one before qmail-send's "too long" sentence.
        bare = [ls for ls, t, c in zip(rows.ls, tails, rows.code, strict=True)
                if t is None and c != BOUNCE]
        if bare:
            out.update(zip(bare, self._row_details(block, bare, f), strict=True))
        return out

    def _row_details(self, block: Block, rows: list[int], f: Found) -> list[int]:
        """The detail bits of some rows, each read from its report's last ``route=``."""
        data = block.data
        texts = f.texts(block, rows)
        ends = block.ends(texts)
        qs = list(map(data.rfind, repeat(b"route="), texts, ends))
        # The detail line counts when it is the text's start or follows a "/".
        valid = list(map(bool.__or__, map(eq, qs, texts),
                         map(eq, map(data.__getitem__, map(add, qs, repeat(-1))), repeat(47))))
        valid = list(map(and_, valid, map(ge, qs, repeat(0))))
        tails = list(map(data.__getitem__, map(slice, qs, ends)))
        cache = self._tails
        for tail in set(compress(tails, valid)).difference(cache):
            cache[tail] = self._tail_bits(tail)
        bits = list(map(mul, map(cache.get, tails, repeat(0)), valid))
        if self.bare_bits:  # (no valid detail line: route:? holds)
            bits = [b if ok else self.bare_bits for b, ok in zip(bits, valid, strict=True)]
        return bits

    def _tail_bits(self, tail: bytes) -> int:
        """The detail terms that hold for a report ending in ``tail`` (from its last
        ``route=``), as :func:`~qconsole.logformat.detail_of` reads it (none: the
        terms that hold without a detail line)."""
        if tail.find(b"route=", 1) >= 0:  # the last route= is the one that counts
            return self.bare_bits  # (and it follows no "/": no detail line)
        text = tail.decode("utf-8", "replace").rstrip("\r")  # a CRLF line's, as shown
        if text.endswith(_EXPIRED_LOGGED):
            text = text[:-len(_EXPIRED_LOGGED)]
        if "/" in text:
            return self.bare_bits
        detail = parse_detail(text)
        if detail is None:
            return self.bare_bits
        return sum(bit for i, bit in self.detail_bit.items()
                   if self.terms[i].detail_value_holds(detail))



def _more_than(block: Block, patterns: tuple[bytes, ...], limit: int) -> bool:
    """The normalised patterns occur more than ``limit`` times in the block (counted
    in its bytes first: as many there are as many in the normalised ones, or fewer;
    normalising the block costs as much as counting)."""
    for raw in (True, False):
        total = 0
        for p in patterns:
            total += block.count_to(p, limit + 1 - total, raw)
            if total > limit:
                return True
    return False


def _holding_msg(block: Block, lines: list[int]) -> list[int]:
    """The lines that hold " msg " past their event's first byte."""
    return list(compress(lines, map(ge, map(block.data.find, repeat(b" msg "), map(
        add, lines, repeat(block.width + 1)), block.ends(lines)), repeat(0))))


def _open_info(block: Block, lines: list[int]) -> bool:
    """One of the lines is an info line whose message goes on past the block (or may:
    a needle of its message's info or end line is all that is looked for)."""
    data = block.data
    infos = list(compress(lines, map(data.startswith, repeat(b"info msg "),
                                     map(add, lines, repeat(block.width)))))
    for ls in infos:
        m = INFO_MSG.match(data, ls + block.width)
        if m is not None and data.find(b"end msg %b\n" % m[1], ls) < 0 and data.find(
                b"info msg %b: " % m[1], m.end()) < 0:
            return True
    return False


def _info_lines(block: Block, lines: list[int]) -> int:
    """How many of the lines may be canonical info lines."""
    return sum(map(block.data.startswith, repeat(b"info msg "),
                   map(add, lines, repeat(block.width))))


def heads_of(block: Block) -> Heads:
    """The block's :class:`Heads` (its lines paired, if not yet)."""
    msgs, pairs, base, data = block.messages(), block.pairs(), block.base, block.data
    odd = set(msgs.head_odd)
    heads: dict[bytes, list[Head]] = {}
    starts = [p for ps in msgs.heads.values() for p in ps if pairs.start_of(p) is not None]
    hidden = set(compress(starts, hidden_needles(block, starts)))
    bounces = set(msgs.bounces).union(msgs.triples)
    for msg, ps in msgs.heads.items():
        out = heads[msg] = []
        for p in ps:
            start = pairs.start_of(p)
            if start is None and p not in bounces:  # a line that is not canonical: its
                line = data[p:block.ends([p])[0]]  # rows as Joiner.rows_after_info
                e = event(line)  # finds them
                if e is not None and e[E_MSG] == msg:
                    out.extend((base + p, UNKNOWN, UNKNOWN, n[1])
                               for n in logjoin.START_NEEDLES.finditer(line))
                elif e is not None and (e[E_BOUNCE] or e[E_TRIPLE]) == msg:
                    out.append((base + p, base + p, BOUNCE, None))
            elif start is None:  # a bounce or triple bounce line
                out.append((base + p, base + p, BOUNCE, None))
            elif p in hidden:  # more than one start needle: the exact way
                odd.add(msg)
            elif (row := pairs.row_of(p)) is not None:
                out.append((base + p, base + row[0], row[1], start[0]))
            elif p in pairs.slow or p in pairs.open:
                out.append((base + p, UNKNOWN, UNKNOWN, start[0]))
            # else another start of its number comes first: no row
    return Heads(heads, msgs.ended_keys(), odd)


def raw_row_matches(plan: Plan, line: bytes) -> bool:
    """A line with no event (see :func:`~qconsole.logformat.raw_row`) is a row of its
    own and matches the filter: not an empty line nor another program's syslog line,
    and the filter has a term that finds rows (a filter of exclusions only shows no
    such line). The exact way's rule, also applied in bulk."""
    if plan.driver is None or not line.strip() or foreign(line):
        return False
    return plan.query.matches(Lines(line, None, None, "raw"))


def _is_row(line: bytes) -> bool:
    """The line is a row by itself: a result, a bounce, or no event at all."""
    m = event(line)
    return m is None or m[E_STATUS] is not None or bounced(line) is not None




def analyze_span(search: int, text: str, path: str, inode: int, offset: int, size: int,
                 base: int, dense: tuple[int, int, bool], join_limit: int,
                 plans: dict[tuple[int, str], Plan] | None = None) -> BlockResult | None:
    """Read a block from ``path`` (``size`` bytes at ``offset``; global offset ``base``)
    and analyze it for filter ``text``, with the search's (DENSE, DENSE_INFOS,
    logfast.ENABLED) and JOIN_LIMIT: the work of a helper process
    (:mod:`qconsole.logworkers`). None when ``path`` is not the file with ``inode``
    (any more). ``plans`` keeps the plan of search number
    ``search`` for its next blocks (its caches hold for one search of one log only)."""
    global DENSE, DENSE_INFOS
    DENSE, DENSE_INFOS, logfast.ENABLED = dense
    logjoin.JOIN_LIMIT = join_limit
    plans = {} if plans is None else plans
    plan = plans.get((search, text))
    if plan is None:
        plans.clear()
        plan = plans[search, text] = Plan(text)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_ino != inode:
            return None
        data = os.pread(fd, size, offset)
    finally:
        os.close(fd)
    return plan.analyze(Block(base, data))


def serve() -> None:
    """A helper process: analyze the spans asked for on standard input (pickles of
    :func:`analyze_span`'s arguments), answering each in turn on standard output."""
    import gc
    import pickle
    import sys

    src, out = sys.stdin.buffer, sys.stdout.buffer
    plans: dict[tuple[int, str], Plan] = {}
    # An analysis makes no reference cycles, only some hundred thousand objects that
    # would set the collector going (a tenth of its time): it runs between blocks, on
    # what was made since start-up (the modules' objects frozen: 3 ms a block else).
    gc.disable()
    gc.freeze()
    while True:
        try:
            args = pickle.load(src)
        except EOFError:
            return
        try:
            res = analyze_span(*args, plans=plans)
        except Exception:  # the asker analyzes it itself
            res = None
        pickle.dump(res, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()
        del res
        gc.collect()
