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
is not one of qmail-send's canonical lines (with the prefix most of the block's
qmail-send lines have: multilog's, splogger's, syslog's, an ISO stamp...), and a join
that leaves the block, is checked the exact way, one row at a time. A row whose start
or info line lies in an older block is found when that block is searched, checked the
exact way and added in its place: an info line whose message goes on past its block (a
message retried for days) finds its rows there from the newer blocks' *heads* (each
block's start and bounce lines of every message before that message's first info or
end line in it, kept for JOIN_LIMIT), not by reading the file forwards; rows found
with their joins are not joined again. When an excluded term reads start or info
lines, a block's rows are shown once every block that could still exclude them (twice
JOIN_LIMIT back) is searched.

Rows appended to the log after it was opened are the index's (``newer``) and are tested
one by one: those there when the search starts by its worker, later ones as they come.
"""

from __future__ import annotations

import bisect
import queue
import threading
from array import array
from collections.abc import Callable, Iterator
from itertools import compress

from qconsole import logfast, logjoin, logscan, logworkers
from qconsole.logbulk import Block
from qconsole.logformat import E_STATUS, Delivery, event
from qconsole.logindex import LogIndex, Rows, RowView
from qconsole.logjoin import (
    BOUNCE,
    CODES,
    JOIN_LIMIT,
    RAW,
    Joiner,
    bounced,
)
from qconsole.logquery import Lines, Query
from qconsole.logscan import (
    UNKNOWN,
    BlockResult,
    Columns,
    Heads,
    Plan,
    heads_of,
    raw_row_matches,
)
from qconsole.logsource import LONG_LINE, MAX_LINE, LogSource

BLOCK = LONG_LINE  # 16 MiB: a line is whole in a block up to this length (logsource)
PARALLEL_BLOCKS = 3  # a history longer than this many blocks is searched by helpers
HELPER_BLOCK = 4 << 20  # their blocks: each helper's memory is a few times one (80 MB at 8)
STATUS_NAMES = ("success", "deferral", "failure", "raw", "bounce")

Batch = tuple[list[Columns], list[tuple[int, int, int, int]]]  # newest first; and others


class Search(RowView):
    """The rows of a log that match a :class:`Query`, in the shape of a
    :class:`LogIndex` (``older`` newest first, then ``newer`` oldest first)."""

    def __init__(self, index: LogIndex, query: Query) -> None:
        self.index = index
        self.source: LogSource = index.source
        self.joiner = Joiner(self.source)
        self.query = query
        self.plan = Plan(str(query.text))
        self.older = Rows()  # own rows, result offsets descending
        self.newer = array("q")  # indices into index.newer
        self.done_newer = 0
        self.low = index.history_end  # the history from here to its end is searched
        self.history_done = False
        self.truth: dict[int, set[int]] = {i: set() for i in self.plan.line_terms}
        self.pending: list[_Pending] = []
        self._checked: set[int] = set()  # rows checked the exact way in this step
        # The newer blocks' heads (newest first), for the info lines of older blocks
        # whose message goes on into them: (base, end, heads or None).
        self._heads: list[tuple[int, int, Heads | None]] = []
        self._joins: dict[int, tuple[int, int]] = {}  # row -> (start, info) known

    def release(self) -> None:
        """Let go of the rows found (a newer filter replaces this one): its worker may
        still be stopping, and the memory must not wait for it (the next filter's rows
        fill meanwhile). What it still does after this is thrown away."""
        self.older = Rows()  # (its worker reads these only by reference: no race)
        self.newer = array("q")

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
        results, reader = self._analyses(stop)
        try:
            for res in results:
                if stop():
                    return
                found = self._apply(res, stop)
                if stop():  # within the block: what it found is moot
                    return
                self.low = res.base
                yield found
            if stop():
                return
            found = self._finish()
            self.low = 0
            yield found
            self.history_done = True
        finally:
            results.close()
            if reader is not None:
                reader.close()

    def _analyses(self, stop: Callable[[], bool],
                  ) -> tuple[Iterator[BlockResult], _Prefetch | None]:
        """The analysis of each block of the history, newest first: by helper
        processes when the history is long and there are CPUs for them
        (:mod:`qconsole.logworkers`), else here, the next block read by a thread."""
        end = self.index.history_end
        if end > PARALLEL_BLOCKS * BLOCK and logworkers.helpers_wanted():
            spans = self.source.spans(end, min(BLOCK, HELPER_BLOCK))
            dense = (logscan.DENSE, logscan.DENSE_INFOS, logfast.ENABLED)
            return logworkers.POOL.analyze(self.plan, spans, dense, logjoin.JOIN_LIMIT,
                                           stop), None
        reader = _Prefetch(self.source.blocks(end, BLOCK))
        plan = self.plan
        return (plan.analyze(Block(base, data)) for base, data in reader), reader

    def _apply(self, res: BlockResult, stop: Callable[[], bool] = lambda: False) -> Batch:
        """The rows found by a block's analysis, once its work left for the exact way is
        done (and those of earlier blocks now complete); ``stop`` cuts it short (seconds
        of joins in a block: quitting, or the next key typed, does not wait)."""
        self._checked = set()
        extra: list[tuple[int, int, int, int]] = []  # rows checked the exact way
        exact = set(res.exact)
        joiner = self.joiner
        for i, what, offset, key in res.follow:
            if stop():
                break
            if what == "start":
                number, info = key  # type: ignore[misc]
                row = joiner.row_after_start(offset, number)
                found = [] if row is None else [row[0]]
                if row is not None and info != UNKNOWN:  # (its joins known)
                    self._joins[row[0]] = (offset, info)
            elif what == "info":
                found = []
                for row, _, start in joiner.rows_after_info(offset, key):  # type: ignore[arg-type]
                    found.append(row)
                    self._joins[row] = (start, offset)
            elif what == "tail":
                self._tail(i, offset, key, res, extra)  # type: ignore[arg-type]
                continue
            else:
                line, as_start, as_info = key  # type: ignore[misc]
                found = [r[0] for r in joiner.rows_of_line(offset, line, as_start, as_info)]
            for row in found:
                self._reached(i, row, res, exact, extra)
        self._heads.append((res.base, res.base + res.size, res.heads))
        while self._heads[0][0] > res.base + res.size + logjoin.JOIN_LIMIT:
            self._heads.pop(0)
        columns = res.columns
        if exact and columns[0]:
            keep = [r not in exact for r in columns[0]]
            columns = tuple(list(compress(c, keep)) for c in columns)  # type: ignore[assignment]
        out: list[Columns] = []
        if self.plan.wait:
            self.pending.append(_Pending(res, columns))
            while self.pending and self.pending[0].base - 2 * JOIN_LIMIT >= res.base:
                out.append(self._settle(self.pending.pop(0), extra))
        else:
            out.append(columns)
        for r in exact:
            if stop():
                break
            self._check(r, extra)
        return out, extra

    def _finish(self) -> Batch:
        extra: list[tuple[int, int, int, int]] = []
        self._checked = set()
        columns = [self._settle(self.pending.pop(0), extra) for _ in range(len(self.pending))]
        return columns, extra

    def _settle(self, p: _Pending, extra: list) -> Columns:
        """The rows of a waiting block, now that no older block can change them."""
        result, start, info, status = p.columns
        cand = set(result)
        for i in self.plan.line_terms:
            truth = self.truth[i]
            mine = {r for r in truth if p.base <= r < p.end}
            truth.difference_update(mine)
            if i == self.plan.driver:  # rows the driver reached from older blocks
                for r in mine - cand:
                    self._check(r, extra)
            holds = mine.union(p.parts[i])
            cand = cand - holds if self.plan.terms[i].negate else cand & holds
        keep = list(map(cand.__contains__, result))
        return (list(compress(result, keep)), list(compress(start, keep)),
                list(compress(info, keep)), list(compress(status, keep)))

    def _tail(self, i: int, info: int, msg: bytes, res: BlockResult, out: list) -> None:
        """The rows past the block of the info line at ``info`` (of message ``msg``; its
        rows in the block are found): from the newer blocks' heads, else the exact way
        from the first block that has none."""
        at = res.base + res.size  # the message goes on from here
        rows: list[tuple[int, int, int]] = []  # (row, status, start)
        limit, joiner = logjoin.JOIN_LIMIT, self.joiner
        for k in range(len(self._heads) - 1, -1, -1):
            base, end, heads = self._heads[k]
            if base > at or at - info > limit:
                break
            if base < at:
                continue
            if heads is None:  # (its analysis did not pair its lines)
                heads = self._block_heads(base, end)
                self._heads[k] = (base, end, heads)
            if msg in heads.odd:
                break
            for ls, row, status, number in heads.heads.get(msg, ()):
                if ls - info > limit:
                    break
                if row == UNKNOWN:
                    found = joiner.row_after_start(ls, number)  # type: ignore[arg-type]
                    if found is not None:
                        rows.append((found[0], found[1], ls))
                elif status == BOUNCE:
                    rows.append((row, BOUNCE, -1))
                elif row - ls <= limit:
                    rows.append((row, status, ls))
            if msg in heads.ended:
                at = -1
                break
            at = end
        if 0 <= at < self.index.history_end and at - info <= limit:
            rows.extend(joiner.rows_after_info(info, msg, at))
        alone = len(self.plan.terms) == 1 and not self.plan.wait
        for row, status, start in rows:
            self._joins[row] = (start, info)
            if alone:  # the term holds by the info line: the row matches
                if row not in self._checked and not self._shown(row):
                    self._checked.add(row)
                    out.append((row, start, info, status))
            else:
                self._reached(i, row, res, set(), out)
        if len(self._joins) > 1 << 16:
            self._joins.clear()

    def _block_heads(self, base: int, end: int) -> Heads:
        """The heads of the block from ``base`` to ``end`` (in one segment)."""
        seg = self.source.segment_at(base)
        return heads_of(Block(base, seg.pread(base - seg.base, end - base)))

    def _reached(self, i: int, row: int, res: BlockResult, exact: set[int],
                 out: list) -> None:
        """Term ``i`` holds for ``row`` by a line of the block (found the exact way);
        a row beyond the block is recorded for later, or checked."""
        if res.base <= row < res.base + res.size:
            exact.add(row)
        elif self.plan.wait:
            self.truth[i].add(row)
        else:
            self._check(row, out)

    # The exact way -------------------------------------------------------------

    def _check(self, offset: int, out: list) -> None:
        """Check the row at ``offset`` the exact way (once a step; not if shown)."""
        if offset in self._checked or self._shown(offset):
            return
        self._checked.add(offset)
        # As long as the bulk search sees it (a line is whole in its block), so that a
        # line's prefix (another one in a mixed log) never changes what it matches.
        line = self.source.read_line(offset, max(BLOCK, MAX_LINE))
        m = event(line)
        if m is None:
            if raw_row_matches(self.plan, line):
                out.append((offset, -1, -1, RAW))
            return
        if m[E_STATUS] is not None:
            status = CODES[m[E_STATUS]]
        elif bounced(line) is not None:
            status = BOUNCE
        else:
            return
        joins = self._joins.pop(offset, None)
        start, info = self.joiner.join(offset, status) if joins is None else joins
        read = self.source.read_line
        lines = Lines(line, read(start) if start >= 0 else None,
                      read(info) if info >= 0 else None, STATUS_NAMES[status])
        if self.query.matches(lines):
            out.append((offset, start, info, status))

    def _shown(self, offset: int) -> bool:
        result = self.older.result
        k = bisect.bisect_left(result, -offset, key=int.__neg__)
        return k < len(result) and result[k] == offset

    def merge(self, rows: Batch) -> array:
        """Add a step's rows (on the thread that draws them); returns the result
        offsets added (a row already there is not added twice), as an array (a
        history's millions of rows would be as many int objects in a list)."""
        columns, extra = rows
        added = array("q")
        for result, start, info, status in columns:  # each newest first
            self._merge(result, start, info, status, added)
        for r in sorted(extra, reverse=True):
            self._merge([r[0]], [r[1]], [r[2]], [r[3]], added)
        return added

    def _merge(self, result: list[int], start: list[int], info: list[int],
               status: list[int], added: array) -> None:
        older = self.older
        low = older.result[-1] if len(older) else None
        cut = 0 if low is None else bisect.bisect_right(result, -low, key=int.__neg__)
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

    def scan_newer(self, budget: int = 2000) -> int:
        """Test rows appended to the log since it was opened; returns how many match."""
        end = min(len(self.index.newer), self.done_newer + budget)
        found = self.newer_matches(self.done_newer, end)
        self.newer.extend(found)
        self.done_newer = max(self.done_newer, end)
        return len(found)

    def newer_matches(self, first: int, end: int) -> list[int]:
        """Which of the index's appended rows ``first`` to ``end`` match (changes
        nothing: a worker thread may call it)."""
        rows = self.index.newer
        with self.index.lock:  # a copy: a truncation may drop rows meanwhile
            end = min(end, len(rows))
            columns = (rows.result[first:end], rows.start[first:end],
                       rows.info[first:end], rows.status[first:end])
        read = self.source.read_line
        found = []
        for k, (result, start, info, status) in enumerate(zip(*columns, strict=True)):
            # (its line as long as the history's search reads it: _check)
            line = read(result, max(BLOCK, MAX_LINE))
            if status == RAW:  # (the history's rule: a filter of exclusions shows none)
                if raw_row_matches(self.plan, line):
                    found.append(first + k)
                continue
            lines = Lines(line, read(start) if start >= 0 else None,
                          read(info) if info >= 0 else None, STATUS_NAMES[status])
            if self.query.matches(lines):
                found.append(first + k)
        return found


class _Pending:
    """A searched block whose rows wait for older blocks (an excluded term reads start
    or info lines, which may lie there)."""

    def __init__(self, res: BlockResult, columns: Columns) -> None:
        self.base = res.base
        self.end = res.base + res.size
        self.columns = columns
        self.parts = res.parts


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

