"""Deliveries of a log as rows of offsets, read on demand; counters of the last hour.

A row is a ``delivery N:`` line joined with its ``starting delivery N`` and
``info msg`` lines, stored as three file offsets and a status byte (about 25 bytes a
row, so ten million log lines fit in well under 300 MB). History is indexed from
the end backwards, in a worker thread, so the newest page shows first; lines
appended later are indexed forwards as they arrive. Rows are read and parsed only
when shown.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections.abc import Iterator

from qconsole.logformat import (
    E_INFO,
    E_MSG,
    E_NUMBER,
    E_STATUS,
    EVENT,
    Delivery,
    delivery,
    raw_row,
    split_stamp,
    syslog_program,
)
from qconsole.logsource import LogSource
from qremote.report import parse_detail

SUCCESS, DEFERRAL, FAILURE, RAW = 0, 1, 2, 3
CODES = {b"success": SUCCESS, b"deferral": DEFERRAL, b"failure": FAILURE}
HOUR = 3600


def window_end(newest: float | None, now: float) -> float:
    """The end of "the last hour": now, or the log's newest delivery when that is
    older than an hour (a log read after the fact)."""
    return newest if newest is not None and newest < now - HOUR else now


def _foreign(line: bytes) -> bool:
    """A syslog line from a program other than qmail: not shown at all."""
    program = syslog_program(line)
    return program is not None and b"qmail" not in program and b"splogger" not in program


class Rows:
    """Parallel arrays: result, start and info offsets (-1: unknown) and a status."""

    def __init__(self) -> None:
        self.result = array("q")
        self.start = array("q")
        self.info = array("q")
        self.status = array("b")

    def add(self, result: int, status: int, start: int = -1, info: int = -1) -> int:
        """Append a row; returns its index."""
        self.result.append(result)
        self.start.append(start)
        self.info.append(info)
        self.status.append(status)
        return len(self.result) - 1

    def __len__(self) -> int:
        return len(self.result)


class Counters:
    """Per route and per local IP: success, deferral, failure per minute."""

    def __init__(self) -> None:
        self.minutes: dict[tuple[str, str], dict[int, list[int]]] = {}
        self.newest: float | None = None

    def add(self, when: float, status: int, route: str, local: str) -> None:
        """Count one delivery."""
        minute = int(when // 60)
        for key in (("route", route), ("local IP", local)):
            per = self.minutes.setdefault(key, {}).setdefault(minute, [0, 0, 0])
            per[status] += 1
        if self.newest is None or when > self.newest:
            self.newest = when

    def table(self, now: float, buckets: int = 30,
              ) -> list[tuple[str, str, int, int, int, list[int]]]:
        """(kind, name, successes, deferrals, failures, deliveries per bucket) over the
        hour ending at :func:`window_end`."""
        end = int(window_end(self.newest, now) // 60)
        first = end - 59
        out = []
        for (kind, name), per in sorted(self.minutes.items()):
            totals = [0, 0, 0]
            spark = [0] * buckets
            for minute, counts in per.items():
                if first <= minute <= end:
                    for i in range(3):
                        totals[i] += counts[i]
                    spark[(minute - first) * buckets // 60] += sum(counts)
            if any(totals):
                out.append((kind, name, *totals, spark))
        return out


class RowView:
    """What the table needs from a list of rows; subclasses say where row ``i`` is."""

    def locate(self, i: int) -> tuple[Rows, int]:
        """The rows and row number of display row ``i`` (subclasses)."""
        raise NotImplementedError

    def reader(self) -> LogIndex:
        """The index that reads rows from the file (subclasses)."""
        raise NotImplementedError

    def row(self, i: int) -> Delivery:
        """Display row ``i``, read from the file and joined."""
        return self.reader().read(*self.locate(i))

    def status(self, i: int) -> int:
        """The status code of display row ``i``."""
        rows, j = self.locate(i)
        return rows.status[j]

    def key(self, i: int) -> tuple[bool, int, int, int]:
        """A key of display row ``i``: the same as history grows, different once the
        row's start or info line has been joined (so no stale copy is kept)."""
        rows, j = self.locate(i)
        return (rows is self.reader().newer, j, rows.start[j], rows.info[j])


class LogIndex(RowView):
    """Every delivery of a log: ``older`` (history, newest first) and ``newer``
    (appended since opening, oldest first). Display row ``i`` counts from the oldest."""

    def __init__(self, source: LogSource, year: int | None = None) -> None:
        self.source = source
        self.year = year
        self.older = Rows()
        self.newer = Rows()
        self.counters = Counters()
        self.lock = threading.Lock()
        self.history_done = False
        self.hour_done = False
        self._cutoff: float | None = None
        # Forward joins: the latest "starting delivery N" and "info msg M" offsets.
        self._starts: dict[bytes, int] = {}
        self._infos: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self.older) + len(self.newer)

    def locate(self, i: int) -> tuple[Rows, int]:
        """The rows and index of display row ``i``."""
        n = len(self.older)
        return (self.older, n - 1 - i) if i < n else (self.newer, i - n)

    def reader(self) -> LogIndex:
        return self

    def read(self, rows: Rows, j: int) -> Delivery:
        """Row ``j`` of ``rows``, read from the file and joined."""
        result = self.source.read_line(rows.result[j])
        if rows.status[j] == RAW:
            return raw_row(result, self.year)
        start = self.source.read_line(rows.start[j]) if rows.start[j] >= 0 else None
        info = self.source.read_line(rows.info[j]) if rows.info[j] >= 0 else None
        return delivery(result, start, info, self.year)

    def _count(self, line: bytes, code: int) -> None:
        when, rest = split_stamp(line, self.year)
        if when is None:
            return
        detail = parse_detail(rest.decode("utf-8", "replace"))
        route, local = (detail.route, detail.local) if detail else ("-", "-")
        with self.lock:
            self.counters.add(when, code, route, local)

    def scan_history(self, stop: threading.Event | None = None, first: int = 200,
                     progress: int = 20000) -> Iterator[int]:
        """Index the history from the end backwards; yields the row count once
        ``first`` rows are in (the newest page), then every ``progress`` rows."""
        pending: dict[bytes, int] = {}  # delivery number -> row awaiting its start
        awaiting: dict[bytes, list[int]] = {}  # msg -> rows awaiting its info line
        seen: set[bytes] = set()
        rows = self.older
        report_at = first
        for base, lines in self.source.backward(self.source.follow_from):
            offsets = [0] * len(lines)
            pos = base
            for k, line in enumerate(lines):
                offsets[k] = pos
                pos += len(line) + 1
            for k in range(len(lines) - 1, -1, -1):
                line = lines[k]
                m = EVENT.search(line)
                if m is None:
                    if line.strip() and not _foreign(line):
                        rows.add(offsets[k], RAW)
                    continue
                number = m[E_NUMBER]
                if m[E_STATUS] is not None:  # delivery N: result
                    code = CODES[m[E_STATUS]]
                    pending[number] = rows.add(offsets[k], code)
                    seen.add(number)
                    if not self.hour_done:
                        self._hour(line, code)
                elif m[E_MSG] is not None:  # starting delivery N: msg M
                    j = pending.pop(number, None)
                    if j is not None:
                        rows.start[j] = offsets[k]
                        awaiting.setdefault(m[E_MSG], []).append(j)
                    elif number not in seen:  # in progress when the log was opened
                        with self.lock:
                            self._starts.setdefault(number, offsets[k])
                    seen.add(number)
                elif m[E_INFO] is not None:  # info msg M
                    for j in awaiting.pop(m[E_INFO], ()):
                        rows.info[j] = offsets[k]
                    with self.lock:
                        if len(self._infos) < 10000:
                            self._infos.setdefault(m[E_INFO], offsets[k])
            if stop is not None and stop.is_set():
                return
            if len(rows) >= report_at:
                report_at = len(rows) + progress
                yield len(rows)
        self.history_done = True
        yield len(rows)

    def _hour(self, line: bytes, code: int) -> None:
        when, _ = split_stamp(line, self.year)
        if when is None:
            return
        if self._cutoff is None:  # the newest delivery sets the window
            self._cutoff = window_end(when, time.time()) - HOUR
        if when < self._cutoff:
            self.hour_done = True
            return
        self._count(line, code)

    def follow(self) -> int:
        """Index the lines appended since the last call; returns how many rows."""
        added = 0
        for offset, line in self.source.poll():
            m = EVENT.search(line)
            if m is None:
                if line.strip() and not _foreign(line):
                    with self.lock:
                        self.newer.add(offset, RAW)
                    added += 1
                continue
            with self.lock:
                if m[E_STATUS] is not None:
                    start = self._starts.pop(m[E_NUMBER], -1)
                    info = -1
                    if start >= 0:
                        s = EVENT.search(self.source.read_line(start))
                        if s is not None and s[E_MSG] is not None:
                            info = self._infos.get(s[E_MSG], -1)
                    self.newer.add(offset, CODES[m[E_STATUS]], start, info)
                    added += 1
                elif m[E_MSG] is not None:
                    self._starts[m[E_NUMBER]] = offset
                elif m[E_INFO] is not None:
                    self._infos[m[E_INFO]] = offset
                    if len(self._infos) > 20000:  # keep the newest messages only
                        for key in list(self._infos)[:10000]:
                            del self._infos[key]
            if m[E_STATUS] is not None:
                self._count(line, CODES[m[E_STATUS]])
        return added


class Filtered(RowView):
    """The rows of a :class:`LogIndex` whose text contains ``needle`` (any case).

    Same shape as the index (``older`` newest first, ``newer`` oldest first), built
    by :meth:`scan` a slice at a time, so matches show while the search goes on and
    rows that arrive while following are filtered too."""

    def __init__(self, index: LogIndex, needle: str) -> None:
        self.index = index
        self.needle = needle.lower()
        self.older = array("q")
        self.newer = array("q")
        self.done_older = 0
        self.done_newer = 0

    def __len__(self) -> int:
        return len(self.older) + len(self.newer)

    def locate(self, i: int) -> tuple[Rows, int]:
        """The index rows and row number of display row ``i``."""
        n = len(self.older)
        if i < n:
            return self.index.older, self.older[n - 1 - i]
        return self.index.newer, self.newer[i - n]

    def reader(self) -> LogIndex:
        return self.index

    def _match(self, rows: Rows, j: int) -> bool:
        return self.needle in self.index.read(rows, j).text().lower()

    def scan(self, budget: int = 5000) -> tuple[int, int]:
        """Test up to ``budget`` rows not tested yet, newest first; returns
        (older rows added, newer rows added)."""
        index = self.index
        added_newer = 0
        while self.done_newer < len(index.newer) and budget > 0:
            if self._match(index.newer, self.done_newer):
                self.newer.append(self.done_newer)
                added_newer += 1
            self.done_newer += 1
            budget -= 1
        added_older = 0
        while self.done_older < len(index.older) and budget > 0:
            if self._match(index.older, self.done_older):
                self.older.append(self.done_older)
                added_older += 1
            self.done_older += 1
            budget -= 1
        return added_older, added_newer

    @property
    def complete(self) -> bool:
        """True when every row indexed so far was tested."""
        return (self.done_older >= len(self.index.older)
                and self.done_newer >= len(self.index.newer))
