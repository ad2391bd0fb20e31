"""The logs view's filter over the whole history, in bulk.

The raw bytes of the log are read in 16 MiB blocks, newest first (a thread reads the
next block while one is searched). In each block (:mod:`qconsole.logbulk`):

- a term that reads a row's start or info line too (a word, ``/regex/``, ``to:``,
  ``from:``, ``msg:``) is looked for in the bytes: a hit on a row's own line counts for
  that row; a hit on a start or info line is followed forwards to the rows it belongs
  to (:mod:`qconsole.logjoin` says how lines join);
- the candidates are the rows the driver term (the positive term with the longest
  literal) leads to, or, with no driver, every row of the block;
- the terms on the result line (``route:``, ``ip:``, ``remote:``, ``tls:``, ``auth:``,
  ``result:``) are checked on the candidates' bytes: the detail line at the end of a
  report is parsed once per distinct text;
- the terms' sets of rows are intersected, or subtracted for an excluded term.

No row object is built: offsets go from ``bytes`` methods to sets to arrays. A line that
is not one of qmail-send's canonical multilog lines, and a join that leaves the block,
is checked the exact way, one row at a time. A row whose start or info line lies in an
older block is found when that block is searched, checked the exact way and added in
its place. When an excluded term reads start or info lines, a block's rows are shown
once every block that could still exclude them (twice JOIN_LIMIT back) is searched.

Rows appended to the log after it was opened are the index's (``newer``) and are tested
one by one as they come.
"""

from __future__ import annotations

import bisect
import queue
import threading
from array import array
from collections.abc import Callable, Iterator
from itertools import compress, repeat

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
    follow_infos,
    follow_starts,
    hidden_needles,
    hits_of_regex,
    hits_of_text,
    kind,
)
from qconsole.logformat import _EXPIRED_LOGGED, E_STATUS, Delivery, event
from qconsole.logindex import LogIndex, Rows, RowView, _foreign
from qconsole.logjoin import (
    BOUNCE,
    CODES,
    DEFERRAL,
    FAILURE,
    JOIN_LIMIT,
    RAW,
    SUCCESS,
    Joiner,
    bounced,
)
from qconsole.logquery import DETAIL_FIELDS, Lines, Query, Term
from qconsole.logsource import LogSource
from qremote.report import parse_detail

BLOCK = 16 << 20
UNKNOWN = -2  # a join not looked up yet (-1: looked up, not found)
STATUS_NAMES = ("success", "deferral", "failure", "raw", "bounce")
RESULT_CODES = {"success": SUCCESS, "deferral": DEFERRAL, "failure": FAILURE,
                "bounce": BOUNCE, "raw": RAW}
LINE_TERMS = ("text", "regex", "to", "from", "msg")  # terms reading start or info lines
DENSE = 4096  # a result-line driver with more hits in a block: every row is a candidate
MAX_TAILS = 100_000

Batch = tuple[list[int], list[int], list[int], list[int]]  # result, start, info, status


class Search(RowView):
    """The rows of a log that match a :class:`Query`, in the shape of a
    :class:`LogIndex` (``older`` newest first, then ``newer`` oldest first)."""

    def __init__(self, index: LogIndex, query: Query) -> None:
        self.index = index
        self.source: LogSource = index.source
        self.joiner = Joiner(self.source)
        self.query = query
        self.terms = query.terms
        driver = query.driver
        self.driver = None if driver is None else self.terms.index(driver)
        self.older = Rows()  # own rows, result offsets descending
        self.newer = array("q")  # indices into index.newer
        self.done_newer = 0
        self.low = index.history_end  # the history from here to its end is searched
        self.history_done = False
        self.line_terms = [i for i, t in enumerate(self.terms) if t.field in LINE_TERMS]
        # An excluded term that reads start or info lines: a block waits for older ones.
        self.wait = any(self.terms[i].negate for i in self.line_terms)
        self.truth: dict[int, set[int]] = {i: set() for i in self.line_terms}
        self.pending: list[_Pending] = []
        self.detail_bit = {i: 1 << k for k, i in enumerate(
            i for i, t in enumerate(self.terms) if t.field in DETAIL_FIELDS)}
        self._tails: dict[bytes, int] = {}
        self._checked: set[int] = set()  # rows checked the exact way in this step

    # The model the table shows ---------------------------------------------

    def __len__(self) -> int:
        return len(self.older) + len(self.newer)

    def locate(self, i: int) -> tuple[Rows, int]:
        """The rows and row number of display row ``i``."""
        n = len(self.older)
        if i < n:
            return self.older, n - 1 - i
        return self.index.newer, self.newer[i - n]

    def reader(self) -> LogIndex:
        return self.index

    def row(self, i: int) -> Delivery:
        """Display row ``i``, its starting and info lines joined first if need be."""
        rows, j = self.locate(i)
        if rows is self.older and (rows.start[j] == UNKNOWN or rows.info[j] == UNKNOWN):
            rows.start[j], rows.info[j] = self.joiner.join(rows.result[j], rows.status[j])
        return self.index.read(rows, j)

    @property
    def complete(self) -> bool:
        """True when the history is searched and every followed row tested."""
        return self.history_done and self.done_newer >= len(self.index.newer)

    @property
    def progress(self) -> float:
        """How much of the history is searched, 0 to 1."""
        end = self.index.history_end
        return 1.0 if self.history_done or not end else (end - self.low) / end

    # The search --------------------------------------------------------------

    def run(self, stop: Callable[[], bool]) -> Iterator[Batch]:
        """Search the history, newest block first; yields the rows found at each
        step (newest first) for :meth:`merge`."""
        reader = _Prefetch(self.source.blocks(self.index.history_end, BLOCK))
        try:
            for base, data in reader:
                if stop():
                    return
                found = self._scan(Block(base, data))
                self.low = base
                yield found
            if stop():
                return
            found = self._finish()
            self.low = 0
            yield found
            self.history_done = True
        finally:
            reader.close()

    def _scan(self, block: Block) -> Batch:
        """The rows found by searching one block (and earlier ones now complete)."""
        self._checked = set()
        base = block.base
        found: dict[int, list[int]] = {}  # fast rows seen: line -> code, text, start, info
        exact: set[int] = set()  # global offsets of rows to check the exact way
        out: list[tuple[int, int, int, int]] = []
        parts = {i: self._line_term(block, i, found, exact, out) for i in self.line_terms}
        cand = self._candidates(block, found, exact, parts)
        for i, t in enumerate(self.terms):
            if i not in parts and cand:
                holds = self._result_term(block, i, t, cand, found)
                cand = cand - holds if t.negate else holds
        cand -= {r - base for r in exact if base <= r < base + block.size}
        if self.wait:
            self.pending.append(_Pending(block, {ls: found[ls] for ls in cand}, parts))
            while self.pending and self.pending[0].base - 2 * JOIN_LIMIT >= base:
                out += self._settle(self.pending.pop(0))
        else:
            for i in self.line_terms:
                cand &= parts[i]
            out += [(base + ls, *found[ls][2:], found[ls][0]) for ls in cand]
        for r in exact:
            self._check(r, out)
        return _batch(out)

    def _finish(self) -> Batch:
        out: list[tuple[int, int, int, int]] = []
        self._checked = set()
        while self.pending:
            out += self._settle(self.pending.pop(0))
        return _batch(out)

    def _settle(self, p: _Pending) -> list[tuple[int, int, int, int]]:
        """The rows of a waiting block, now that no older block can change them."""
        cand = set(p.fast)
        out = []
        for i in self.line_terms:
            truth = self.truth[i]
            mine = {r - p.base for r in truth if p.base <= r < p.end}
            truth.difference_update(p.base + ls for ls in mine)
            holds = p.parts[i] | mine
            if i == self.driver:  # rows the driver reached from older blocks
                for ls in mine - cand:
                    self._check(p.base + ls, out)
            cand = cand - holds if self.terms[i].negate else cand & holds
        return out + [(p.base + ls, *p.fast[ls][2:], p.fast[ls][0]) for ls in cand]

    # Terms reading start and info lines -------------------------------------

    def _lines_of(self, block: Block, t: Term) -> list[int]:
        """Lines of the block that may make ``t`` hold (exactly those for a word or
        regex)."""
        if t.field == "regex":
            assert t.regex is not None
            return hits_of_regex(block, t.regex, t.lowered)
        patterns = t.patterns or {"to": (b"starting delivery ",), "from": (b"info msg ",)
                                  }.get(t.field, ())
        if len(patterns) == 1:
            return hits_of_text(block, patterns[0])
        lines: set[int] = set()
        for p in patterns:
            lines.update(hits_of_text(block, p))
        return sorted(lines)

    def _line_term(self, block: Block, i: int, found: dict[int, list[int]],
                   exact: set[int], out: list) -> set[int]:
        """The rows of the block for which term ``i`` holds by one of the block's lines
        (its own line, or a start or info line in the block); rows found beyond the
        block are recorded (or checked); lines that are not canonical go to ``exact``."""
        t = self.terms[i]
        f = t.field
        lines = self._lines_of(block, t)
        if not lines:
            return set()
        data, base = block.data, block.base
        ms = block.classify(lines)
        kinds = list(map(kind, ms))
        ends = block.ends(lines)
        # A line holding a start or info needle past its own event is the start or info
        # line of other rows too: the exact way.
        for j in compress(range(len(lines)), hidden_needles(block, lines, ends)):
            kinds[j] = K_SLOW
        part: set[int] = set()
        s_j: list[int] = []  # start lines for which the term holds
        i_j: list[int] = []  # info lines for which the term holds
        slow: list[int] = []
        if f in ("text", "regex"):
            for j, k in enumerate(kinds):
                if k in (K_RESULT, K_BOUNCE):
                    m = ms[j]
                    code = STATUS_CODES[m[G_STATUS]] if k == K_RESULT else BOUNCE
                    part.add(lines[j])
                    found.setdefault(lines[j], [code, m.end(), UNKNOWN, UNKNOWN])
                elif k == K_START:
                    s_j.append(j)
                elif k == K_INFO:
                    i_j.append(j)
                elif k == K_SLOW:
                    slow.append(j)
        elif f == "msg":  # (a start of the message covers its info line)
            v = t.value.encode()
            for j, k in enumerate(kinds):
                if k == K_START and ms[j][G_MSG] == v:
                    s_j.append(j)
                elif k == K_BOUNCE and ms[j][G_BOUNCE] == v:
                    part.add(lines[j])
                    found.setdefault(lines[j], [BOUNCE, ms[j].end(), -1, UNKNOWN])
                elif k == K_SLOW:
                    slow.append(j)
        else:  # to: (start lines) and from: (info lines)
            want = K_START if f == "to" else K_INFO
            test = t.address_test()
            picked, values = [], []
            for j, k in enumerate(kinds):
                if k == want:
                    m = ms[j]
                    value = data[m.end():ends[j]] if f == "to" else (m[G_SENDER] or b"<>")
                    if value.isascii():
                        picked.append(j)
                        values.append(value.lower())
                    else:
                        slow.append(j)
                elif k == K_SLOW:
                    slow.append(j)
            held = compress(picked, map(test, values))
            (s_j if f == "to" else i_j).extend(held)
        # Start lines: their rows.
        done_starts = {lines[j] for j in s_j}
        self._follow_starts(block, i, [ends[j] for j in s_j], [ms[j][G_NUMBER] for j in s_j],
                            [lines[j] for j in s_j], [UNKNOWN] * len(s_j), part, found,
                            exact, out)
        # Info lines: their start and bounce lines, then the rows of those starts.
        if i_j:
            info_at = [lines[j] for j in i_j]
            si, sls, snum, bi, bls, islow = follow_infos(block, [ends[j] for j in i_j],
                                                         [ms[j][G_INFO] for j in i_j])
            for k, ls in zip(bi, bls, strict=True):
                if ls - info_at[k] > JOIN_LIMIT:
                    continue
                part.add(ls)
                found.setdefault(ls, [BOUNCE, ls, -1, base + info_at[k]])
            keep = [ls not in done_starts and ls - info_at[k] <= JOIN_LIMIT
                    for k, ls in zip(si, sls, strict=True)]
            sls_k = list(compress(sls, keep))
            self._follow_starts(block, i, block.ends(sls_k), list(compress(snum, keep)), sls_k,
                                [base + info_at[k] for k in compress(si, keep)], part, found,
                                exact, out)
            for k in islow:
                at = base + info_at[k]
                for row, _status, _start in self.joiner.rows_after_info(at, ms[i_j[k]][G_INFO]):
                    self._reached(i, row, block, exact, out)
        # Lines that are not canonical: the exact way.
        for j in slow:
            at = base + lines[j]
            line = data[lines[j]:ends[j]]
            if _is_row(line):
                exact.add(at)
            as_start = t.holds(Lines(None, line, None, ""))  # type: ignore[arg-type]
            as_info = t.holds(Lines(None, None, line, ""))  # type: ignore[arg-type]
            for row, _status, _start, _info in self.joiner.rows_of_line(at, line, as_start,
                                                                        as_info):
                self._reached(i, row, block, exact, out)
        return part

    def _follow_starts(self, block: Block, i: int, ends: list[int], numbers: list[bytes],
                       starts: list[int], infos: list[int], part: set[int],
                       found: dict[int, list[int]], exact: set[int], out: list) -> None:
        if not ends:
            return
        base = block.base
        idx, rows, codes, texts, slow = follow_starts(block, ends, numbers)
        for k, ls, code, ts in zip(idx, rows, codes, texts, strict=True):
            if ls - starts[k] > JOIN_LIMIT:
                continue
            part.add(ls)
            entry = found.setdefault(ls, [code, ts, UNKNOWN, UNKNOWN])
            entry[2] = base + starts[k]
            if infos[k] != UNKNOWN:
                entry[3] = infos[k]
        for k in slow:
            row = self.joiner.row_after_start(base + starts[k], numbers[k])
            if row is not None:
                self._reached(i, row[0], block, exact, out)

    def _reached(self, i: int, row: int, block: Block, exact: set[int], out: list) -> None:
        """Term ``i`` holds for ``row`` by a line of this block (found the exact way, or
        beyond the block)."""
        if block.base <= row < block.base + block.size:
            exact.add(row)
        elif self.wait:
            self.truth[i].add(row)
        else:
            self._check(row, out)

    # Candidates and terms on the result line ---------------------------------

    def _candidates(self, block: Block, found: dict[int, list[int]], exact: set[int],
                    parts: dict[int, set[int]]) -> set[int]:
        base = block.base
        d = self.driver
        if d is not None and d in parts:
            return set(parts[d])
        if d is None:
            rows = block.rows()
            lines = None
        else:  # a term on the result line: the lines holding its literal
            t = self.terms[d]
            lines = self._lines_of(block, t)
            if len(lines) <= DENSE:
                ms = block.classify(lines)
                cand = set()
                for ls, m, k in zip(lines, ms, map(kind, ms), strict=True):
                    if k == K_RESULT:
                        cand.add(ls)
                        found.setdefault(ls, [STATUS_CODES[m[G_STATUS]], m.end(), UNKNOWN,
                                              UNKNOWN])
                    elif k == K_BOUNCE:
                        cand.add(ls)
                        found.setdefault(ls, [BOUNCE, m.end(), -1, UNKNOWN])
                    elif k == K_SLOW:
                        exact.add(base + ls)
                return cand
            rows = block.rows()
        new = dict(zip(rows.ls, map(list, zip(rows.code, rows.ts, repeat(UNKNOWN),
                                              repeat(UNKNOWN))), strict=True))
        new.update(found)
        found.update(new)
        cand = set(rows.ls)
        slow = rows.slow
        if lines is not None:
            hit = set(lines)
            cand &= hit
            slow = [ls for ls in slow if ls in hit]
        exact.update(base + ls for ls in slow)
        return cand

    def _result_term(self, block: Block, i: int, t: Term, cand: set[int],
                     found: dict[int, list[int]]) -> set[int]:
        """The candidates for which a term on the result line holds."""
        if t.field == "result":
            code = RESULT_CODES[t.value]
            return {ls for ls in cand if found[ls][0] == code}
        rows = [ls for ls in cand if found[ls][0] != BOUNCE]
        bit = self.detail_bit[i]
        return set(compress(rows, map(bit.__and__, self._details(block, rows, found))))

    def _details(self, block: Block, rows: list[int], found: dict[int, list[int]],
                 ) -> list[int]:
        """For each row: the bits of the detail terms its detail line makes hold."""
        data = block.data
        texts = [found[ls][1] for ls in rows]
        ends = block.ends(texts)
        qs = list(map(data.rfind, repeat(b"route="), texts, ends))
        tails = self._tails
        if len(tails) > MAX_TAILS:
            tails.clear()
        out = []
        for q, ts, e in zip(qs, texts, ends, strict=True):
            if q < 0 or (q != ts and data[q - 1] != 47):  # "/" before it, or the start
                out.append(0)
                continue
            tail = data[q:e]
            bits = tails.get(tail)
            if bits is None:
                bits = tails[tail] = self._tail_bits(tail)
            out.append(bits)
        return out

    def _tail_bits(self, tail: bytes) -> int:
        """The detail terms that hold for a report ending in ``tail`` (from its last
        ``route=``), as :func:`~qconsole.logformat.detail_of` reads it."""
        text = tail.decode("utf-8", "replace")
        if text.endswith(_EXPIRED_LOGGED):
            text = text[:-len(_EXPIRED_LOGGED)]
        if "/" in text:
            return 0
        detail = parse_detail(text)
        if detail is None:
            return 0
        return sum(bit for i, bit in self.detail_bit.items()
                   if self.terms[i].detail_value_holds(detail))

    # The exact way -------------------------------------------------------------

    def _check(self, offset: int, out: list) -> None:
        """Check the row at ``offset`` the exact way (once a step; not if shown)."""
        if offset in self._checked or self._shown(offset):
            return
        self._checked.add(offset)
        line = self.source.read_line(offset)
        m = event(line)
        if m is None:
            if self.driver is None or not line.strip() or _foreign(line):
                return
            status = RAW
        elif m[E_STATUS] is not None:
            status = CODES[m[E_STATUS]]
        elif bounced(line) is not None:
            status = BOUNCE
        else:
            return
        start, info = self.joiner.join(offset, status)
        read = self.source.read_line
        lines = Lines(line, read(start) if start >= 0 else None,
                      read(info) if info >= 0 else None, STATUS_NAMES[status])
        if self.query.matches(lines):
            out.append((offset, start, info, status))

    def _shown(self, offset: int) -> bool:
        result = self.older.result
        k = bisect.bisect_left(result, -offset, key=int.__neg__)
        return k < len(result) and result[k] == offset

    def merge(self, rows: Batch) -> list[int]:
        """Add a step's rows, newest first (on the thread that draws them); returns
        the result offsets added (a row already there is not added twice)."""
        result, start, info, status = rows
        older = self.older
        low = older.result[-1] if len(older) else None
        cut = 0 if low is None else bisect.bisect_left(result, -low, key=int.__neg__)
        if cut < len(result) and low is not None and result[cut] == low:
            cut += 1
        added = []
        for k in range(cut):  # rows among those already there: insert in order
            r = result[k]
            j = bisect.bisect_left(older.result, -r, key=int.__neg__)
            if j < len(older) and older.result[j] == r:
                continue
            older.result.insert(j, r)
            older.start.insert(j, start[k])
            older.info.insert(j, info[k])
            older.status.insert(j, status[k])
            added.append(r)
        if cut < len(result):  # all older than what is there: append in bulk
            older.result.extend(result[cut:])
            older.start.extend(start[cut:])
            older.info.extend(info[cut:])
            older.status.extend(status[cut:])
            added.extend(result[cut:])
        return added

    def scan_newer(self, budget: int = 2000) -> int:
        """Test rows appended to the log since it was opened; returns how many match."""
        index = self.index
        added = 0
        read = self.source.read_line
        while self.done_newer < len(index.newer.status) and budget > 0:
            j = self.done_newer
            rows = index.newer
            lines = Lines(read(rows.result[j]),
                          read(rows.start[j]) if rows.start[j] >= 0 else None,
                          read(rows.info[j]) if rows.info[j] >= 0 else None,
                          STATUS_NAMES[rows.status[j]])
            if self.query.matches(lines):
                self.newer.append(j)
                added += 1
            self.done_newer += 1
            budget -= 1
        return added


class _Pending:
    """A searched block whose rows wait for older blocks (an excluded term reads start
    or info lines, which may lie there)."""

    def __init__(self, block: Block, fast: dict[int, list[int]],
                 parts: dict[int, set[int]]) -> None:
        self.base = block.base
        self.end = block.base + block.size
        self.fast = fast
        self.parts = parts


def _is_row(line: bytes) -> bool:
    """The line is a row by itself: a result, a bounce, or no event at all."""
    m = event(line)
    return m is None or m[E_STATUS] is not None or bounced(line) is not None


def _batch(out: list[tuple[int, int, int, int]]) -> Batch:
    """Rows newest first, each once, as four lists."""
    rows = sorted({r[0]: r for r in out}.values(), reverse=True)
    return ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
            [r[3] for r in rows])


class _Prefetch:
    """Blocks read one ahead by a thread (reading lets go of the interpreter)."""

    _END = object()

    def __init__(self, blocks: Iterator[tuple[int, bytes]]) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(blocks,), daemon=True)
        self._thread.start()

    def _read(self, blocks: Iterator[tuple[int, bytes]]) -> None:
        try:
            for item in blocks:
                if not self._put(item):
                    return
        except OSError as exc:
            self._put(exc)
            return
        self._put(self._END)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, OSError):
                raise item
            yield item

    def close(self) -> None:
        """Stop reading ahead."""
        self._stop.set()
        self._thread.join()

