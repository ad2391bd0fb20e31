"""Deliveries of a log as rows of offsets, read on demand; counters of the last hour.

A row is a ``delivery N:`` line joined with its ``starting delivery N`` and
``info msg`` lines, stored as three file offsets and a status byte (about 25 bytes a
row, so ten million log lines fit in well under 300 MB). History is indexed from
the end backwards, in a worker thread, so the newest page shows first; lines
appended later are indexed forwards as they arrive. Rows are read and parsed only
when shown.

Rows whose lines were lost to a truncation of the file (logrotate's
``copytruncate``) are dropped, never read again from the bytes now at their offsets:
followed ones are removed, history ones (the newest of ``older``) are skipped.
"""

from __future__ import annotations

import re
import threading
import time
from array import array
from collections.abc import Iterator

from qconsole.logformat import (
    E_BOUNCE,
    E_CHANNEL,
    E_CONCURRENCY,
    E_INFO,
    E_MSG,
    E_NUMBER,
    E_STATUS,
    E_TEXT,
    E_TRIPLE,
    Delivery,
    decode,
    delivery,
    event,
    foreign,
    raw_row,
    split_report,
    split_stamp,
    syslog_program,
    worded_event,
)
from qconsole.logsource import MAX_LINE, LogSource

SUCCESS, DEFERRAL, FAILURE, RAW, BOUNCE = 0, 1, 2, 3, 4
CODES = {b"success": SUCCESS, b"deferral": DEFERRAL, b"failure": FAILURE}
HOUR = 3600
# Counter names for rows without a detail line: they are not "-" (qremote applied no
# route), which the detail line itself says.
NO_DETAIL = "? (no detail line)"
LOCAL = "(local)"


def window_end(newest: float | None, now: float) -> float:
    """The end of "the last hour": now, or the log's newest delivery when that is
    older than an hour (a log read after the fact)."""
    return newest if newest is not None and newest < now - HOUR else now


def bounce_msg(m: re.Match[bytes]) -> bytes | None:
    """The message of a ``bounce msg`` or ``triple bounce`` line, else None."""
    return m[E_BOUNCE] or m[E_TRIPLE]


def ended(line: bytes) -> bytes | None:
    """The message an ``end msg M`` line ends, else None."""
    m = _ENDED.search(line)
    return None if m is None else m[1]


_ENDED = re.compile(rb"end msg (\d+)$")


class Rows:
    """Parallel arrays: result, start and info offsets (-1: unknown) and a status."""

    def __init__(self) -> None:
        self.result = array("q")
        self.start = array("q")
        self.info = array("q")
        self.status = array("b")

    def add(self, result: int, status: int, start: int = -1, info: int = -1) -> int:
        """Append a row; returns its index."""
        # The result offset last: a row counts (len) once its other columns are there,
        # as the table reads rows on its own thread while the history grows.
        self.start.append(start)
        self.info.append(info)
        self.status.append(status)
        self.result.append(result)
        return len(self.result) - 1

    def __len__(self) -> int:
        return len(self.result)


class Counters:
    """Per route and per local IP: success, deferral, failure per minute."""

    def __init__(self) -> None:
        self.minutes: dict[tuple[str, str], dict[int, list[int]]] = {}
        self.newest: float | None = None

    def add(self, when: float, status: int, route: str, local: str | None) -> None:
        """Count one delivery (``local`` None: no local IP known)."""
        minute = int(when // 60)
        keys = (("route", route),) if local is None else (("route", route),
                                                          ("local IP", local))
        for key in keys:
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
        self.history_end = source.follow_from  # history before, followed rows after
        self.concurrency: tuple[float | None, str] | None = None  # newest "status:"
        # Other programs' lines holding qmail-send's events, skipped: how many, and the
        # program of one (a log of qmail-send's lines under another name shows none).
        self.skipped = 0
        self.skipped_program = ""
        self.paused = threading.Event()  # set: history waits (a search runs)
        self._uncounted: dict[bytes, tuple[float, int]] = {}  # no detail: by channel
        # Forward joins: the latest "starting delivery N" and "info msg M" offsets.
        self._starts: dict[bytes, int] = {}
        self._infos: dict[bytes, int] = {}

    def __len__(self) -> int:
        return self.older_count() + len(self.newer)

    def older_count(self) -> int:
        """The history rows shown: those whose lines were not lost to a truncation."""
        return len(self.older) - self._older_lost()

    def _older_lost(self) -> int:
        """How many of the newest history rows lie in truncated segments (``older``
        is in descending offsets: they are its first rows)."""
        floor = self.source.lost_from
        if floor is None:
            return 0
        result = self.older.result
        lo, hi = 0, len(result)
        while lo < hi:
            mid = (lo + hi) // 2
            if result[mid] >= floor:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def locate(self, i: int) -> tuple[Rows, int]:
        """The rows and index of display row ``i``."""
        total = len(self.older)
        n = total - self._older_lost()
        return (self.older, total - 1 - i) if i < n else (self.newer, i - n)

    def reader(self) -> LogIndex:
        return self

    def read(self, rows: Rows, j: int) -> Delivery:
        """Row ``j`` of ``rows``, read from the file and joined."""
        result = self.source.read_line(rows.result[j])
        if rows.status[j] == RAW:
            return raw_row(result, self.year)
        if len(result) >= MAX_LINE:  # (its detail line ends it: read it too)
            result = self.source.read_long_line(rows.result[j])
        start = self.source.read_line(rows.start[j]) if rows.start[j] >= 0 else None
        info = self.source.read_line(rows.info[j]) if rows.info[j] >= 0 else None
        return delivery(result, start, info, self.year)

    def _count(self, line: bytes, m: re.Match[bytes], code: int,
                channel: bytes | None = None) -> None:
        """Count a result line: by its detail line; without one, by its channel once
        known (a local delivery, or a report with no detail line), never as "-"."""
        when, _ = split_stamp(line, self.year)
        if when is None:
            return
        if self._cutoff is None:  # the newest delivery sets the window
            self._cutoff = window_end(when, time.time()) - HOUR
        if when < self._cutoff:
            self.hour_done = True
            return
        detail = split_report(decode(m[E_TEXT]))[1]
        if detail is None and channel is None:
            self._uncounted[m[E_NUMBER]] = (when, code)
            return
        with self.lock:
            if detail is not None:
                self.counters.add(when, code, detail.route, detail.local)
            else:
                self.counters.add(when, code, LOCAL if channel == b"local" else NO_DETAIL,
                                  None)

    def _count_joined(self, number: bytes, channel: bytes) -> None:
        """A row without a detail line met its starting line: count it now."""
        waiting = self._uncounted.pop(number, None)
        if waiting is not None:
            with self.lock:
                self.counters.add(waiting[0], waiting[1],
                                  LOCAL if channel == b"local" else NO_DETAIL, None)

    def _skipped(self, line: bytes) -> None:
        """Count another program's line that holds qmail-send's words (skipped)."""
        if worded_event(line) is not None:
            self.skipped += 1
            if not self.skipped_program:
                self.skipped_program = decode(syslog_program(line) or b"?")

    def scan_history(self, stop: threading.Event | None = None, first: int = 200,
                     progress: int = 20000) -> Iterator[int]:
        """Index the history from the end backwards; yields the row count once
        ``first`` rows are in (the newest page), then every ``progress`` rows."""
        pending: dict[bytes, int] = {}  # delivery number -> row awaiting its start
        awaiting: dict[bytes, list[int]] = {}  # msg -> rows awaiting its info line
        seen: set[bytes] = set()
        rows = self.older
        report_at = first
        for base, lines in self.source.backward(self.history_end):
            while self.paused.is_set() and not (stop is not None and stop.is_set()):
                time.sleep(0.05)
            offsets = [0] * len(lines)
            pos = base
            for k, line in enumerate(lines):
                offsets[k] = pos
                pos += len(line) + 1
            for k in range(len(lines) - 1, -1, -1):
                line = lines[k]
                m = event(line)
                if m is None:
                    if line.strip() and not foreign(line):
                        rows.add(offsets[k], RAW)
                    else:
                        self._skipped(line)
                    continue
                number = m[E_NUMBER]
                if m[E_STATUS] is not None:  # delivery N: result
                    code = CODES[m[E_STATUS]]
                    pending[number] = rows.add(offsets[k], code)
                    seen.add(number)
                    if not self.hour_done:
                        self._count(line, m, code)
                elif m[E_MSG] is not None:  # starting delivery N: msg M
                    j = pending.pop(number, None)
                    if j is not None:
                        rows.start[j] = offsets[k]
                        awaiting.setdefault(m[E_MSG], []).append(j)
                        self._count_joined(number, m[E_CHANNEL])
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
                elif (msg := bounce_msg(m)) is not None:  # a bounce of message M
                    awaiting.setdefault(msg, []).append(rows.add(offsets[k], BOUNCE))
                elif m[E_CONCURRENCY] is not None and self.concurrency is None:
                    self.concurrency = (split_stamp(line, self.year)[0],
                                        decode(m[E_CONCURRENCY]))
                elif (done := ended(line)) is not None:  # newer deliveries of M:
                    awaiting.pop(done, None)  # another message (see logjoin)
            if stop is not None and stop.is_set():
                return
            if len(rows) >= report_at:
                report_at = len(rows) + progress
                yield len(rows)
        self.history_done = True
        yield len(rows)

    def _drop_lost(self) -> None:
        """Forget what lies in truncated segments: followed rows (the newest, at the
        end of ``newer``) and the starting and info lines waiting for a join."""
        lost = self.source.is_lost
        with self.lock:
            newer = self.newer
            keep = len(newer)
            while keep and lost(newer.result[keep - 1]):
                keep -= 1
            for column in (newer.result, newer.start, newer.info, newer.status):
                del column[keep:]
            for joins in (self._starts, self._infos):
                for key in [k for k, offset in joins.items() if lost(offset)]:
                    del joins[key]

    def follow(self) -> int:
        """Index the lines appended since the last call; returns how many rows
        (after a truncation, see ``source.truncations``, rows may be gone too)."""
        added = 0
        truncations = self.source.truncations
        lines = self.source.poll()
        if self.source.truncations != truncations:
            self._drop_lost()
        for offset, line in lines:
            m = event(line)
            if m is None:
                if line.strip() and not foreign(line):
                    with self.lock:
                        self.newer.add(offset, RAW)
                    added += 1
                else:
                    self._skipped(line)
                continue
            channel = None
            with self.lock:
                if m[E_STATUS] is not None:
                    start = self._starts.pop(m[E_NUMBER], -1)
                    info = -1
                    if start >= 0 and self.source.is_lost(start):
                        start = -1  # logged before a truncation: gone
                    if start >= 0:
                        s = event(self.source.read_line(start))
                        if s is not None and s[E_MSG] is not None:
                            info = self._infos.get(s[E_MSG], -1)
                            channel = s[E_CHANNEL]
                    self.newer.add(offset, CODES[m[E_STATUS]], start, info)
                    added += 1
                elif m[E_MSG] is not None:
                    self._starts[m[E_NUMBER]] = offset
                elif m[E_INFO] is not None:
                    self._infos[m[E_INFO]] = offset
                    if len(self._infos) > 20000:  # keep the newest messages only
                        for key in list(self._infos)[:10000]:
                            del self._infos[key]
                elif (msg := bounce_msg(m)) is not None:
                    self.newer.add(offset, BOUNCE, -1, self._infos.get(msg, -1))
                    added += 1
                elif m[E_CONCURRENCY] is not None:
                    self.concurrency = (split_stamp(line, self.year)[0],
                                        decode(m[E_CONCURRENCY]))
                elif (done := ended(line)) is not None:
                    self._infos.pop(done, None)
            if m[E_STATUS] is not None:
                self._count(line, m, CODES[m[E_STATUS]], channel or b"remote")
        return added
