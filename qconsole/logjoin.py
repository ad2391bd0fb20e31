"""How a row's log lines are joined, looked up in either direction, exactly.

A row is a ``delivery N:`` result line (or a ``bounce msg M`` line) joined with:

- its start: the nearest line before it holding ``starting delivery N: msg ``, no more
  than :data:`JOIN_LIMIT` bytes back, unless another result line of delivery N lies in
  between (a start goes with the first result after it);
- its info line: the nearest line before the start (a bounce: before the bounce line)
  holding ``info msg M: `` for the message M of the start line, no more than
  :data:`JOIN_LIMIT` bytes back, unless a line ending in ``end msg M`` lies in between
  (that message was done: M is another message's number by then).

A line of another program in a syslog file (:func:`~qconsole.logformat.foreign`) is
none of these lines, whatever it holds: its words may be anyone's (a user name given
to sshd).

qmail-send's own logs always join the obvious way; the rules only say what happens with
any other bytes, so that the view, the filter's row-by-row check and its bulk scans
(:mod:`qconsole.logbulk`) agree on every log. :class:`Joiner` looks a row's lines up
backwards (from the row) and the rows of a start or info line up forwards.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter

from qconsole.logformat import (
    E_BOUNCE,
    E_INFO,
    E_MSG,
    E_NUMBER,
    E_STATUS,
    E_TRIPLE,
    event,
    foreign,
)
from qconsole.logsource import MAX_LINE, LogSource

JOIN_LIMIT = 64 << 20
SUCCESS, DEFERRAL, FAILURE, RAW, BOUNCE = 0, 1, 2, 3, 4
CODES = {b"success": SUCCESS, b"deferral": DEFERRAL, b"failure": FAILURE}
START_NEEDLES = re.compile(rb"starting delivery (\d+): msg ")
INFO_NEEDLES = re.compile(rb"info msg (\d+): ")
# Where a line may name a delivery or a message (what :func:`start_needle` and
# ``b"delivery N: "``, or ``b"msg M"`` and the needles of M, are found in).
_DELIVERY_NEEDLES = re.compile(rb"delivery (\d+): ")
_MSG_NEEDLES = re.compile(rb"msg (\d+)")


def start_needle(number: bytes) -> bytes:
    """What the start line of delivery ``number`` holds."""
    return b"starting delivery " + number + b": msg "


def info_needle(msg: bytes) -> bytes:
    """What the info line of message ``msg`` holds."""
    return b"info msg " + msg + b": "


def end_needle(msg: bytes) -> bytes:
    """What the line ending message ``msg`` ends with (with its line break)."""
    return b"end msg " + msg + b"\n"


def result_of(line: bytes, number: bytes) -> int | None:
    """The status code when ``line`` is a result line of delivery ``number``."""
    m = event(line)
    if m is None or m[E_STATUS] is None or m[E_NUMBER] != number:
        return None
    return CODES[m[E_STATUS]]


def bounced(line: bytes) -> bytes | None:
    """The message a ``bounce msg`` or ``triple bounce`` line is about, else None."""
    m = event(line)
    return None if m is None else m[E_BOUNCE] or m[E_TRIPLE]


class Joiner:
    """The join rules over one log."""

    def __init__(self, source: LogSource) -> None:
        self.source = source
        # The start of the last long line met, and an offset inside it: any offset
        # between them is in that line (a look backwards meets it many times).
        self._long = (-1, -1)

    def lines_with(self, needles: tuple[bytes, ...], start: int, end: int,
                   ) -> Iterator[tuple[int, bytes]]:
        """(offset, line) of the lines holding any of ``needles`` among the lines that
        start from ``start`` (a line start) and before ``end``, oldest first (read in
        chunks growing from 256 KiB: what is looked for is most often near)."""
        def holding(chunk: bytes) -> Iterable[int]:
            if len(needles) == 1:  # in order as found: the caller may stop at the first
                return _lines_holding(chunk, needles[0])
            lines: set[int] = set()
            for needle in needles:
                lines.update(_lines_holding(chunk, needle))
            return sorted(lines)

        return self._lines(holding, start, end)

    def lines_naming(self, rx: re.Pattern[bytes], keys: set[bytes], start: int, end: int,
                     ) -> Iterator[tuple[int, bytes]]:
        """:meth:`lines_with`, the lines in which ``rx`` finds a match whose group 1 is
        one of ``keys`` (a set the caller may shrink on the way): many needles looked
        for in one pass."""
        def holding(chunk: bytes) -> Iterator[int]:
            last = -1
            for m in rx.finditer(chunk):
                if m[1] in keys:
                    ls = chunk.rfind(b"\n", 0, m.start()) + 1
                    if ls != last:
                        yield ls
                        last = ls

        return self._lines(holding, start, end)

    def _lines(self, holding: Callable[[bytes], Iterable[int]], start: int, end: int,
               ) -> Iterator[tuple[int, bytes]]:
        stop, size = min(self.source.end, end + MAX_LINE), 4 * MAX_LINE
        while start < stop:
            chunk = next(self.source.forward(start, stop, size), None)
            if chunk is None:
                return
            base, chunk = chunk
            for ls in holding(chunk):
                if base + ls >= end:
                    return
                le = chunk.find(b"\n", ls)
                line = chunk[ls:le if le >= 0 else len(chunk)]
                head = line  # (a chunk may begin inside a line longer than it)
                if ls == 0 and (real := self.line_start(base)) != base:
                    head = self.source.read_line(real)
                if not foreign(head):  # (no needle of a join is read in it)
                    yield base + ls, line
            if base + len(chunk) >= end:
                return
            start, size = base + len(chunk), min(2 * size, 1 << 20)

    # Backwards: a row's lines ---------------------------------------------------

    def join(self, result: int, status: int) -> tuple[int, int]:
        """(start, info) offsets of the row whose line is at ``result`` (-1: none)."""
        if status == RAW:
            return -1, -1
        line = self.source.read_line(result)
        m = event(line)
        if m is None:
            return -1, -1
        if status == BOUNCE:
            start, msg, ref = -1, m[E_BOUNCE] or m[E_TRIPLE], result
        else:
            number = m[E_NUMBER]
            start = self.find_back(start_needle(number), result, JOIN_LIMIT)
            if start >= 0 and self._result_between(number, start, result):
                start = -1
            s = event(self.source.read_line(start)) if start >= 0 else None
            msg, ref = (s[E_MSG] if s is not None else None), start
        if msg is None:
            return start, -1
        return start, self.info_before(msg, ref)

    def info_before(self, msg: bytes, ref: int) -> int:
        """The info line of message ``msg`` for a start (or bounce) line at ``ref``."""
        info = self.find_back(info_needle(msg), ref, JOIN_LIMIT)
        if info >= 0 and self.find_back(end_needle(msg), ref, ref - info - 1) >= 0:
            return -1
        return info

    def find_back(self, needle: bytes, before: int, limit: int) -> int:
        """:meth:`LogSource.find_back`, past another program's syslog lines: a needle
        in one of them is no start, info or end line (its words may be anyone's)."""
        return self.source.find_back(needle, before, limit, self._foreign_at)

    def _foreign_at(self, at: int, line: bytes | None) -> bool:
        """The line holding offset ``at`` (``line``, if known to begin there) is
        another program's."""
        if line is None:
            line = self.source.read_line(self.line_start(at))
        return foreign(line)

    def line_start(self, at: int) -> int:
        """Where the line holding offset ``at`` begins: ``at`` itself, but inside a
        line longer than :meth:`LogSource.forward` reads at once (whose line it is, is
        told by its beginning, as in the bulk search's blocks that hold it whole)."""
        seg = self.source.segment_at(at)
        if at == seg.base or seg.pread(at - seg.base - 1, 1) == b"\n":
            return at
        if self._long[0] <= at <= self._long[1]:
            return self._long[0]
        start = self.source.line_start(at)
        self._long = (start, at)
        return start

    def _result_between(self, number: bytes, start: int, result: int) -> bool:
        after = start + len(self.source.read_line(start)) + 1
        return any(result_of(line, number) is not None
                   for _, line in self.lines_with((b"delivery " + number + b": ",),
                                                  after, result))

    # Forwards: the rows of a start or info line --------------------------------

    def row_after_start(self, start: int, number: bytes) -> tuple[int, int] | None:
        """(offset, status) of the row whose start is the line at ``start`` (one that
        holds the start needle of delivery ``number``), or None."""
        return self.rows_after_starts(start, [number]).get(number)

    def rows_after_starts(self, start: int, numbers: list[bytes],
                          ) -> dict[bytes, tuple[int, int]]:
        """:meth:`row_after_start` of each of ``numbers`` (distinct), in one look
        forwards: a line naming many deliveries (a remote's reply can) is read past
        once, not once a number. Each number's row is the first line after ``start``
        holding its result; a line holding its start needle first means none."""
        if not numbers:
            return {}
        after = start + len(self.source.read_line(start)) + 1
        end = min(self.source.end, start + JOIN_LIMIT + 1)
        looking, out = set(numbers), {}
        lines = (self.lines_with((b"delivery " + numbers[0] + b": ",), after, end)
                 if len(numbers) == 1 else
                 self.lines_naming(_DELIVERY_NEEDLES, looking, after, end))
        for ls, line in lines:
            if ls - start > JOIN_LIMIT:
                break
            for number in dict.fromkeys(map(itemgetter(1), _DELIVERY_NEEDLES.finditer(line))):
                if number not in looking:
                    continue
                code = result_of(line, number)
                if code is not None:
                    out[number] = (ls, code)
                    looking.discard(number)
                elif start_needle(number) in line:
                    looking.discard(number)
            if not looking:
                break
        return out

    def rows_after_info(self, info: int, msg: bytes, after: int | None = None,
                        ) -> list[tuple[int, int, int]]:
        """(offset, status, start) of every row whose info line is the line at ``info``
        (one that holds the info needle of message ``msg``); start is -1 for a bounce.
        ``after``: a line start from which to go on (no line between the info line and
        it ends the message), for the rows from there only."""
        return self.rows_after_infos(info, [msg], after)[msg]

    def rows_after_infos(self, info: int, msgs: list[bytes], after: int | None = None,
                         ) -> dict[bytes, list[tuple[int, int, int]]]:
        """:meth:`rows_after_info` of each of ``msgs`` (distinct), in one look forwards
        (see :meth:`rows_after_starts`): a message's rows are those of its start lines
        and its bounce and triple bounce lines, up to a line holding its info needle or
        ending ``end msg M``."""
        if after is None:
            after = info + len(self.source.read_line(info)) + 1
        end = min(self.source.end, info + JOIN_LIMIT + 1)
        looking, out = set(msgs), {msg: [] for msg in msgs}
        triple = b"triple bounce"
        lines = (self.lines_with((b"msg " + msgs[0], triple), after, end) if len(msgs) == 1
                 else self._lines(lambda chunk: _lines_naming_or(chunk, looking, triple),
                                  after, end))
        for ls, line in lines:
            if ls - info > JOIN_LIMIT:
                break
            m = event(line)
            named = dict.fromkeys(map(itemgetter(1), _MSG_NEEDLES.finditer(line)))
            if m is not None and m[E_TRIPLE]:
                named[m[E_TRIPLE]] = None
            for msg in named:
                if msg not in looking:
                    continue
                if m is not None and m[E_MSG] == msg:
                    numbers = list(dict.fromkeys(map(itemgetter(1),
                                                     START_NEEDLES.finditer(line))))
                    rows = self.rows_after_starts(ls, numbers)
                    out[msg].extend((rows[n][0], rows[n][1], ls) for n in numbers
                                    if n in rows)
                elif m is not None and (m[E_BOUNCE] or m[E_TRIPLE]) == msg:
                    out[msg].append((ls, BOUNCE, -1))
                if info_needle(msg) in line or line.endswith(end_needle(msg)[:-1]):
                    looking.discard(msg)
            if not looking:
                break
        return out

    def rows_of_line(self, offset: int, line: bytes, as_start: bool, as_info: bool,
                     ) -> Iterator[tuple[int, int, int, int]]:
        """(row, status, start, info) of the rows that have the line at ``offset`` as
        their start line (if ``as_start``) or their info line (if ``as_info``); -2
        where the row's other line is not looked up."""
        # Each number once: a remote's reply repeating a needle a thousand times is
        # one look forwards, not a thousand (each up to JOIN_LIMIT bytes).
        # Many numbers: one look forwards for them all.
        if as_start:
            numbers = list(dict.fromkeys(map(itemgetter(1), START_NEEDLES.finditer(line))))
            rows = self.rows_after_starts(offset, numbers)
            yield from ((rows[n][0], rows[n][1], offset, -2) for n in numbers if n in rows)
        if as_info:
            msgs = list(dict.fromkeys(map(itemgetter(1), INFO_NEEDLES.finditer(line))))
            found = self.rows_after_infos(offset, msgs)
            for msg in msgs:
                for row, status, start in found[msg]:
                    yield row, status, start, offset


def _lines_naming_or(chunk: bytes, msgs: set[bytes], literal: bytes) -> list[int]:
    """The starts of the lines of ``chunk`` naming one of ``msgs`` after ``msg `` or
    holding ``literal``, each once, in order."""
    lines = {chunk.rfind(b"\n", 0, m.start()) + 1
             for m in _MSG_NEEDLES.finditer(chunk) if m[1] in msgs}
    lines.update(_lines_holding(chunk, literal))
    return sorted(lines)


def _lines_holding(chunk: bytes, needle: bytes) -> Iterator[int]:
    """The starts of the lines of ``chunk`` holding ``needle``, each once, in order."""
    last = -1
    pos = chunk.find(needle)
    while pos >= 0:
        ls = chunk.rfind(b"\n", 0, pos) + 1
        if ls != last:
            yield ls
            last = ls
        pos = chunk.find(needle, pos + 1)


def info_msg(line: bytes) -> bytes | None:
    """The message of an ``info msg`` line (its event), else None."""
    m = event(line)
    return None if m is None else m[E_INFO]
