"""The logs view's filter over the whole history, in bulk.

The history is not read row by row: the raw bytes of the log are read in large
blocks, newest first, and searched at C speed for the bytes any matching row must
hold (the driver term's patterns, see :mod:`qconsole.logquery`). Only the lines that
hold them are looked at: a ``delivery N:`` line is a row; a ``starting delivery``
line leads forward to its row; an ``info msg`` line to every delivery of the
message. A row whose match is not decided by the hit alone is checked exactly
against every term (its ``starting`` and ``info`` lines joined first).

The search does not wait for the index of the history (it may still be building):
its rows are its own, joined lazily when shown. Rows appended to the log after it
was opened are the index's (``newer``) and are tested one by one as they come.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable, Iterator

from qconsole.logformat import (
    E_BOUNCE,
    E_INFO,
    E_MSG,
    E_NUMBER,
    E_STATUS,
    E_TRIPLE,
    EVENT,
    Delivery,
)
from qconsole.logindex import BOUNCE, CODES, RAW, LogIndex, Rows, RowView, _foreign
from qconsole.logquery import LOWER, NORMAL, Lines, Query, Term
from qconsole.logsource import LogSource

BLOCK = 16 << 20
JOIN_LIMIT = 64 << 20  # how far back a starting or info line is looked for
FORWARD_LIMIT = 64 << 20  # how far forward a delivery of a started message is looked for
UNKNOWN = -2  # a join not looked up yet (-1: looked up, not found)
STATUS_NAMES = ("success", "deferral", "failure", "raw", "bounce")
# With no positive term to look for, every delivery and bounce line is a candidate.
_EVERY_ROW = (b": success:", b": deferral:", b": failure:", b"bounce")

Found = tuple[int, int, int, int]  # result, start, info offsets, status code


def hit_lines(data: bytes, term: Term | None) -> tuple[list[int], list[int]]:
    """The lines of ``data`` the term's patterns (or its regex) occur in, each once,
    in order: (offsets of their starts, offsets of their ends)."""
    starts: list[int] = []
    ends: list[int] = []
    size = len(data)
    if term is not None and term.regex is not None:
        text = data.translate(LOWER) if term.lowered else data
        rx = term.regex
        m = rx.search(text)
        while m is not None:
            pos = m.start()
            end = text.find(b"\n", max(pos, m.end() - 1))
            starts.append(text.rfind(b"\n", 0, pos) + 1)
            ends.append(end if end >= 0 else size)
            if end < 0:
                break
            m = rx.search(text, end + 1)
        return starts, ends
    patterns = term.patterns if term is not None else _EVERY_ROW
    norm = data.translate(NORMAL)
    find, rfind = norm.find, norm.rfind
    for pattern in patterns:
        pos = find(pattern)
        while pos >= 0:
            end = find(b"\n", pos)
            starts.append(rfind(b"\n", 0, pos) + 1)
            ends.append(end if end >= 0 else size)
            if end < 0:
                break
            pos = find(pattern, end + 1)
    if len(patterns) > 1:
        pairs = sorted(set(zip(starts, ends, strict=True)))
        starts, ends = [p[0] for p in pairs], [p[1] for p in pairs]
    return starts, ends


class Search(RowView):
    """The rows of a log that match a :class:`Query`, in the shape of a
    :class:`LogIndex` (``older`` newest first, then ``newer`` oldest first)."""

    def __init__(self, index: LogIndex, query: Query) -> None:
        self.index = index
        self.source: LogSource = index.source
        self.query = query
        self.driver = query.driver
        self.older = Rows()  # own rows, result offsets descending
        self.newer = array("q")  # indices into index.newer
        self.done_newer = 0
        self.low = index.history_end  # the history from here to its end is searched
        self.history_done = False
        needs = set()
        for t in query.terms:
            needs.update(t.needs)
        self.needs = needs

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
            start, info = self._join(rows.result[j], rows.status[j], rows.start[j],
                                     rows.info[j])
            rows.start[j], rows.info[j] = start, info
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

    # Joins -------------------------------------------------------------------

    def _join(self, result: int, status: int, start: int, info: int,
              want_info: bool = True) -> tuple[int, int]:
        """The starting and info lines of a row (those still UNKNOWN), looked back for
        in the file; the info line only if ``want_info``."""
        if status == RAW:
            return -1, -1
        line = self.source.read_line(result)
        m = EVENT.search(line)
        msg = None
        if status == BOUNCE:
            start = -1
            if m is not None:
                msg = m[E_BOUNCE] or m[E_TRIPLE]
        if start == UNKNOWN:
            start = -1
            if m is not None and m[E_NUMBER] is not None:
                start = self.source.find_back(b"starting delivery " + m[E_NUMBER] + b": msg ",
                                              result, JOIN_LIMIT)
        if info == UNKNOWN and want_info:
            info = -1
            if msg is None and start >= 0:
                s = EVENT.search(self.source.read_line(start))
                msg = s[E_MSG] if s is not None else None
            if msg is not None:
                info = self.source.find_back(b"info msg " + msg + b": ",
                                             start if start >= 0 else result, JOIN_LIMIT)
        return start, info

    def _lines(self, found: Found, data: bytes, base: int) -> Lines:
        """The row's lines for an exact check (joined as far as the query needs); a
        line inside the block is taken from it."""
        result, start, info, status = found
        needs = self.needs
        if (("start" in needs and start == UNKNOWN)
                or ("info" in needs and info == UNKNOWN)):
            start, info = self._join(result, status, start, info, "info" in needs)
        end = base + len(data)

        def read(offset: int) -> bytes:
            if base <= offset < end:
                cut = data.find(b"\n", offset - base)
                return data[offset - base:cut if cut >= 0 else len(data)]
            return self.source.read_line(offset)

        return Lines(read(result),
                     read(start) if "start" in needs and start >= 0 else None,
                     read(info) if "info" in needs and info >= 0 else None,
                     STATUS_NAMES[status])

    # The search --------------------------------------------------------------

    def run(self, stop: Callable[[], bool]) -> Iterator[list[Found]]:
        """Search the history, newest block first; yields each block's matching rows
        (newest first) for :meth:`merge`."""
        for base, data in self.source.blocks(self.index.history_end, BLOCK):
            if stop():
                return
            yield self.search_block(base, data)
            self.low = base
        self.low = 0
        self.history_done = True

    def search_block(self, base: int, data: bytes) -> list[Found]:
        """The rows of one block of whole lines (at global ``base``) that match."""
        found: dict[int, Found] = {}
        match, search = EVENT.match, EVENT.search
        for ls, le in zip(*hit_lines(data, self.driver), strict=True):
            m = match(data, ls + 26, le) if data[ls:ls + 1] == b"@" else None
            if m is None:
                m = search(data, ls, le)
            if m is None:
                line = data[ls:le]
                if line.strip() and not _foreign(line) and self.driver is not None:
                    found[base + ls] = (base + ls, -1, -1, RAW)
                continue
            if m[E_STATUS] is not None:
                found[base + ls] = (base + ls, UNKNOWN, UNKNOWN, CODES[m[E_STATUS]])
            elif m[E_MSG] is not None:  # starting delivery N: its result follows
                r = self._result_after(data, base, ls, m[E_NUMBER])
                if r is not None:
                    found.setdefault(r[0], (r[0], base + ls, UNKNOWN, r[1]))
            elif m[E_INFO] is not None:  # info msg M: every delivery of M follows
                for f in self._deliveries_after(data, base, ls, m[E_INFO]):
                    found.setdefault(f[0], f)
            elif m[E_BOUNCE] is not None or m[E_TRIPLE] is not None:
                found[base + ls] = (base + ls, -1, UNKNOWN, BOUNCE)
        rows = sorted((f for f in found.values() if f[0] < self.index.history_end),
                      reverse=True)
        if not self.query.decided_by_hit:
            rows = [f for f in rows if self.query.matches(self._lines(f, data, base))]
        return rows

    def _windows(self, data: bytes, base: int, frm: int) -> Iterator[tuple[int, bytes, int]]:
        """Where to look forward from ``frm`` (in ``data``): the block itself, then
        the file after it, up to the end of the history: (global base, bytes, start)."""
        yield base, data, frm
        after = base + len(data)
        limit = min(self.index.history_end, after + FORWARD_LIMIT)
        if after < limit:
            for gbase, chunk in self.source.forward(after, limit):
                yield gbase, chunk, 0

    def _result_after(self, data: bytes, base: int, ls: int, number: bytes,
                      ) -> tuple[int, int] | None:
        """(offset, status) of the ``delivery N:`` result after a starting line."""
        needle = b"delivery " + number + b": "
        for gbase, chunk, frm in self._windows(data, base, ls + 1):
            pos = chunk.find(needle, frm)
            while pos >= 0:
                line_start = chunk.rfind(b"\n", 0, pos) + 1
                line_end = chunk.find(b"\n", pos)
                m = EVENT.search(chunk, line_start, line_end if line_end >= 0 else len(chunk))
                if m is not None and m[E_STATUS] is not None and m[E_NUMBER] == number:
                    return gbase + line_start, CODES[m[E_STATUS]]
                pos = chunk.find(needle, pos + 1)
        return None

    def _deliveries_after(self, data: bytes, base: int, ls: int, msg: bytes,
                          ) -> Iterator[Found]:
        """Every delivery (and bounce) of message ``msg`` after its info line at
        ``ls``, up to its ``end msg`` line."""
        info = base + ls
        needles = (b"msg " + msg + b" to ", b"bounce msg " + msg + b" ")
        end_needle = b"end msg " + msg + b"\n"
        for gbase, chunk, frm in self._windows(data, base, ls + 1):
            stop = chunk.find(end_needle, frm)
            limit = stop if stop >= 0 else len(chunk)
            for needle in needles:
                pos = chunk.find(needle, frm, limit)
                while pos >= 0:
                    line_start = chunk.rfind(b"\n", 0, pos) + 1
                    line_end = chunk.find(b"\n", pos)
                    m = EVENT.search(chunk, line_start,
                                     line_end if line_end >= 0 else len(chunk))
                    if m is not None and m[E_MSG] == msg:
                        r = self._result_after(chunk, gbase, line_start, m[E_NUMBER])
                        if r is not None:
                            yield r[0], gbase + line_start, info, r[1]
                    elif m is not None and m[E_BOUNCE] == msg:
                        yield gbase + line_start, -1, info, BOUNCE
                    pos = chunk.find(needle, pos + 1, limit)
            if stop >= 0:
                return

    def merge(self, rows: list[Found]) -> list[int]:
        """Add a block's rows, newest first (on the thread that draws them); returns
        the result offsets added (a row already there is not added twice)."""
        older = self.older
        low = older.result[-1] if len(older) else None
        if low is None or not rows or rows[0][0] < low:  # all older: append in bulk
            added = [r[0] for r in rows]
            older.result.extend(added)
            older.start.extend([r[1] for r in rows])
            older.info.extend([r[2] for r in rows])
            older.status.extend([r[3] for r in rows])
            return added
        added = []
        for result, start, info, status in rows:
            if result < low:
                older.add(result, status, start, info)
                low = result
                added.append(result)
                continue
            # A row whose result lies in a part already searched (its starting or
            # info line matched in this older block): insert it in order.
            k = bisect.bisect_left(older.result, -result, key=lambda r: -r)
            if k < len(older) and older.result[k] == result:
                continue
            older.result.insert(k, result)
            older.start.insert(k, start)
            older.info.insert(k, info)
            older.status.insert(k, status)
            added.append(result)
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
