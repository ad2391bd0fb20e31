"""A log file as bytes at stable offsets: its rotated history, and what is appended.

For a multilog ``current``, the rotated ``@*.s`` (and ``@*.u``) files of the same
directory come first, oldest first; every file is a segment, and an offset is global
across segments, so it stays valid when ``current`` is rotated. :meth:`poll` follows
the file like ``tail -F``: when the name points to a new file (rotation) the rest of
the old one is read first, and a truncated file starts a new segment.

A truncation (logrotate's ``copytruncate``) is noticed even when the file has grown
past its old size again before the next poll: the bytes just before where reading
stopped must still be the ones read. The bytes of a truncated segment are gone (the
file holds others at those offsets now): it is marked lost, nothing is read from it
again, and its offsets are never handed out for new lines (the index drops its rows).
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
MAX_LINE = 1 << 16
LONG_LINE = 16 << 20  # a line read whole up to this: a row shown, the filter's blocks
MAX_SEGMENTS = 400
TAIL = 256  # bytes before the reading position kept to notice a rewrite


class LogError(Exception):
    """The log cannot be read; the text says which file and why."""


class Segment:
    """One file of the log, at a global base offset."""

    def __init__(self, path: Path, fh: BinaryIO, base: int, size: int) -> None:
        self.path = path
        self.fh = fh
        self.base = base
        self.size = size
        self.inode = os.fstat(fh.fileno()).st_ino
        self.lost = False  # truncated: its bytes are gone

    def pread(self, offset: int, length: int) -> bytes:
        """Bytes at a segment-local offset (os.pread: safe across threads); nothing
        from a lost segment."""
        if self.lost:
            return b""
        return os.pread(self.fh.fileno(), length, offset)


def _line_begin(seg: Segment, at: int, step: int) -> int:
    """Where the line holding segment-local offset ``at`` begins, read back in reads
    from ``step`` bytes, each twice the last (most long lines are found in one); ``at``
    itself for a line longer than LONG_LINE (garbage: it is read in pieces)."""
    lo = at
    while lo > 0 and at - lo < LONG_LINE:
        nlo = max(0, lo - step, at - LONG_LINE)
        back = seg.pread(nlo, lo - nlo).rfind(b"\n")
        if back >= 0:
            return nlo + back + 1
        lo, step = nlo, 2 * step
    return 0 if lo == 0 else at


def _open(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise LogError(f"cannot read {path}: {exc.strerror}") from None


def history_files(path: Path) -> list[Path]:
    """Rotated multilog files beside ``current``, oldest first (TAI64N names sort)."""
    if path.name != "current":
        return []
    try:
        names = sorted(p.name for p in path.parent.iterdir()
                       if p.name.startswith("@") and p.name.endswith((".s", ".u")))
    except OSError:
        return []
    return [path.parent / n for n in names[-MAX_SEGMENTS:]]


class LogSource:
    """The log named ``path`` (a file, or a multilog directory: its ``current``)."""

    def __init__(self, path: Path) -> None:
        given_dir = path.is_dir()
        if given_dir:
            path = path / "current"
        self.path = path
        self.segments: list[Segment] = []
        self.bases: list[int] = []
        # A rotated file removed by multilog since it was listed, or not readable, is
        # left out (and said); the others and the file itself are still the log.
        self.unreadable: list[str] = []
        for p in history_files(path):
            try:
                fh = _open(p)
            except LogError as exc:
                self.unreadable.append(str(exc))
                continue
            self._add(Segment(p, fh, self.end, os.fstat(fh.fileno()).st_size))
        # Said while the file named is missing (read from when it appears).
        self.waiting: str | None = None
        try:
            fh = _open(path)
        except LogError as exc:
            # A multilog directory without its current (an archive of rotated files,
            # or between multilog's rename and the new current): the history is the
            # log, and current is followed from when it appears, as tail -F waits. So
            # is a file missing from a directory that exists (started between a
            # rotation's rename and the new file); a missing directory is a typo.
            if path.exists() or not (given_dir or self.segments or path.parent.is_dir()):
                raise
            if not (given_dir or self.segments):
                self.waiting = f"{exc} (read when it appears, as tail -F does)"
            fh = _open(Path(os.devnull))
        self._add(Segment(path, fh, self.end, os.fstat(fh.fileno()).st_size))
        self.follow_from = self._last_line_end()  # where poll() reads next
        self.partial = b""
        last = self.segments[-1]
        start = max(last.base, self.follow_from - TAIL)
        self.tail = last.pread(start - last.base, self.follow_from - start)
        self.lost_from: int | None = None  # the first offset of the first lost segment
        self.truncations = 0  # how many times a followed file was truncated

    def _last_line_end(self) -> int:
        """Past the last newline: an unterminated last line is read once complete."""
        last = self.segments[-1]
        tail = last.pread(max(0, last.size - MAX_LINE), min(MAX_LINE, last.size))
        if not tail or tail.endswith(b"\n"):
            return self.end
        cut = tail.rfind(b"\n")
        return self.end - len(tail) + cut + 1 if cut >= 0 else self.end

    def _add(self, segment: Segment) -> None:
        self.segments.append(segment)
        self.bases.append(segment.base)

    @property
    def end(self) -> int:
        """The global offset just past the last byte known."""
        if not self.segments:
            return 0
        last = self.segments[-1]
        return last.base + last.size

    def segment_at(self, offset: int) -> Segment:
        """The segment holding global ``offset``."""
        return self.segments[max(0, bisect.bisect_right(self.bases, offset) - 1)]

    def read_line(self, offset: int, limit: int = MAX_LINE) -> bytes:
        """The line starting at global ``offset`` (without its newline), at most
        ``limit`` bytes of it."""
        seg = self.segment_at(offset)
        local = offset - seg.base
        left = max(0, seg.size - local)
        data = seg.pread(local, min(1024, left))  # most lines are short
        cut = data.find(b"\n")
        if cut < 0 and len(data) < left:
            data = seg.pread(local, min(limit, left))
            cut = data.find(b"\n")
        return data if cut < 0 else data[:cut]

    def line_start(self, offset: int) -> int:
        """Where the line holding global ``offset`` begins (``offset`` itself in a line
        longer than LONG_LINE: garbage, read in pieces)."""
        seg = self.segment_at(offset)
        return seg.base + _line_begin(seg, offset - seg.base, MAX_LINE)

    def read_long_line(self, offset: int, keep: int = MAX_LINE, limit: int = LONG_LINE,
                       ) -> bytes:
        """:meth:`read_line`, for a line longer than ``keep`` bytes: its first
        ``keep // 2`` bytes and its last ones from a ``/`` (the last line of a logged
        report, where its detail line is), with how many bytes between are not shown.
        A line longer than ``limit`` is read in ``limit`` pieces to its end."""
        seg = self.segment_at(offset)
        local = offset - seg.base
        data = seg.pread(local, min(limit, max(0, seg.size - local)))
        cut = data.find(b"\n")
        if cut >= 0 or local + len(data) >= seg.size:
            line = data if cut < 0 else data[:cut]
            if len(line) <= keep:
                return line
            length, last = len(line), line[-keep - 1:]
        else:  # longer than ``limit``
            length = len(data)
            while local + length < seg.size:
                more = seg.pread(local + length, min(limit, seg.size - local - length))
                cut = more.find(b"\n")
                length += len(more) if cut < 0 else cut
                if cut >= 0 or not more:
                    break
            last = seg.pread(local + length - keep - 1, keep + 1)
        half = keep // 2
        # From a "/" in the last half: its detail line whole. A detail line longer
        # than that (after the line's last "/"; up to ``keep``): whole too, as the
        # filter reads it.
        slash = last.find(b"/", len(last) - half)
        if slash < 0:
            at = last.rfind(b"/")
            slash = at if at >= 0 and last.startswith(b"/route=", at) else -1
        tail = last[slash:] if slash >= 0 else last[-half:]
        head = data[:min(half, length - len(tail))]
        if len(head) + len(tail) == length:
            return head + tail
        hidden = length - len(head) - len(tail)
        return head + f"/[{hidden:,} bytes not shown]".encode() + tail

    def backward(self, end: int | None = None) -> Iterator[tuple[int, list[bytes]]]:
        """Chunks of whole lines from ``end`` back to the start: (offset of the first
        line, lines), newest chunk first. A line never spans two segments."""
        end = self.end if end is None else end
        for seg in reversed(self.segments):
            if seg.base >= end:
                continue
            stop = min(end, seg.base + seg.size) - seg.base
            while stop > 0:
                start = max(0, stop - CHUNK)
                data = seg.pread(start, stop - start)
                if start > 0:
                    cut = data.find(b"\n", 0, len(data) - 1)  # not the chunk's own end
                    if cut >= 0:
                        start += cut + 1
                        data = data[cut + 1:]
                    else:  # a line longer than a chunk: whole, as the filter's
                        # blocks hold it (longer than LONG_LINE: garbage, in pieces)
                        begin = _line_begin(seg, start, CHUNK)
                        if begin < start:
                            start = begin
                            data = seg.pread(start, stop - start)
                if not data:
                    break
                lines = data.split(b"\n")
                if lines and lines[-1] == b"":
                    lines.pop()
                yield seg.base + start, lines
                stop = start

    def spans(self, end: int, size: int) -> Iterator[tuple[Segment, int, int]]:
        """Where the blocks of :meth:`blocks` lie, newest first: (segment, local start,
        length); only the few bytes that find a line start are read."""
        for seg in reversed(self.segments):
            if seg.base >= end:
                continue
            stop = min(end, seg.base + seg.size) - seg.base
            while stop > 0:
                start = max(0, stop - size)
                if start > 0:  # begin after a line break (found in a small read)
                    head = seg.pread(start, min(MAX_LINE, stop - start))
                    cut = head.find(b"\n", 0, max(0, stop - start - 1))
                    if cut >= 0:
                        start += cut + 1
                    else:  # inside a long line: go back to where it begins (the
                        # line whole in any block, a helper's too)
                        start = _line_begin(seg, start, max(size, MAX_LINE))
                yield seg, start, stop - start
                stop = start

    def blocks(self, end: int, size: int) -> Iterator[tuple[int, bytes]]:
        """Blocks of whole lines from ``end`` (a line start) back to the start, newest
        first, about ``size`` bytes each: (global offset of the block, its bytes). A
        line longer than a block makes its block longer; a line longer than LONG_LINE
        is cut (it is garbage)."""
        for seg, start, length in self.spans(end, size):
            data = seg.pread(start, length)
            if data:  # (empty: the file was truncated under us)
                yield seg.base + start, data

    def forward(self, start: int, end: int, size: int = 1 << 20,
                ) -> Iterator[tuple[int, bytes]]:
        """Blocks of whole lines from global ``start`` (a line start) up to ``end``,
        oldest first: (global offset, bytes)."""
        pos = start
        while pos < end:
            seg = self.segment_at(pos)
            local = pos - seg.base
            stop = min(seg.size, end - seg.base, local + size)
            if stop <= local or seg.lost:
                nxt = bisect.bisect_right(self.bases, pos)
                if nxt >= len(self.segments):
                    return
                pos = self.segments[nxt].base
                continue
            data = seg.pread(local, stop - local)
            if not data:
                return
            if stop < min(seg.size, end - seg.base):  # keep whole lines only
                cut = data.rfind(b"\n")
                if cut >= 0:
                    data = data[:cut + 1]
            yield pos, data
            pos += len(data)

    def find_back(self, needle: bytes, before: int, limit: int,
                  skip: Callable[[int, bytes | None], bool] | None = None) -> int:
        """The global offset of the start of the nearest line before ``before`` that
        holds ``needle`` (a line start), if that line starts no more than ``limit``
        bytes before ``before``; -1 otherwise. A line for which ``skip(start, line)``
        is True is passed over (``line``: its bytes, None when the block read begins
        inside it); many such lines are one read."""
        low = before - limit
        for base, data in self.blocks(before, 1 << 16):
            cut = len(data)
            while (cut := data.rfind(needle, 0, cut)) >= 0:
                ls = data.rfind(b"\n", 0, cut) + 1
                if base + ls < low:
                    return -1
                if skip is None:
                    return base + ls
                le = data.find(b"\n", cut)
                if not skip(base + ls, data[ls:le if le >= 0 else len(data)] if ls else None):
                    return base + ls
                cut = ls
            if base <= low:
                return -1
        return -1

    def poll(self) -> list[tuple[int, bytes]]:
        """Complete lines appended since the last poll, as (offset, line); follows a
        rotation or a truncation like ``tail -F``."""
        out: list[tuple[int, bytes]] = []
        if self._rewritten():
            self._lose_last()
        else:
            self._read_tail(out)
        try:
            st = os.stat(self.path)
        except OSError:
            return out  # between a rename and the new file: try again later
        last = self.segments[-1]
        if st.st_ino != last.inode or last.lost:
            if not last.lost:  # renamed (rotated): what it got before, and its last
                self._read_tail(out)  # line, complete or not
                if self.partial:
                    out.append((self.follow_from, self.partial))
                last.size = max(last.size, os.fstat(last.fh.fileno()).st_size)
            try:
                fh = _open(self.path)
            except LogError:
                return out
            self._add(Segment(self.path, fh, self.end, 0))
            self.waiting = None
            self.follow_from = self.end
            self.partial = b""
            self.tail = b""
            self._read_tail(out)
        return out

    def _rewritten(self) -> bool:
        """The open file is shorter than what was read of it, or its bytes before
        that point changed (truncated, then written again)."""
        last = self.segments[-1]
        if last.lost:
            return False  # lost already: a new segment is opened as soon as it can
        pos = self.follow_from + len(self.partial) - last.base
        size = os.fstat(last.fh.fileno()).st_size
        if size < pos:
            return True
        if not self.tail:
            return False
        end = self.follow_from - last.base
        return last.pread(end - len(self.tail), len(self.tail)) != self.tail

    def _lose_last(self) -> None:
        """The followed segment was truncated: its bytes are gone for good."""
        last = self.segments[-1]
        last.lost = True
        self.partial = b""  # the start of a line that no longer exists
        self.truncations += 1
        if self.lost_from is None:
            self.lost_from = last.base

    def is_lost(self, offset: int) -> bool:
        """True when the bytes at global ``offset`` were lost to a truncation."""
        return self.lost_from is not None and self.segment_at(offset).lost

    def _read_tail(self, out: list[tuple[int, bytes]]) -> None:
        last = self.segments[-1]
        if last.lost:
            return
        size = os.fstat(last.fh.fileno()).st_size
        pos = self.follow_from + len(self.partial) - last.base
        if size <= pos:
            return
        data = self.partial + last.pread(pos, size - pos)
        last.size = max(last.size, size)
        offset = self.follow_from
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            out.append((offset, line))
            offset += len(line) + 1
        if offset > self.follow_from:
            self.tail = (self.tail + data[:offset - self.follow_from])[-TAIL:]
        self.follow_from = offset

    def close(self) -> None:
        """Close every file."""
        for seg in self.segments:
            seg.fh.close()
