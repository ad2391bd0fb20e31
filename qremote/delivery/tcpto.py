"""Failover memory, like qmail's tcpto: (local IP, remote address, port) pairs whose
connect timed out recently, in ``QMAIL_HOME/queue/lock/qremote-tcpto``.

One text line a pair: ``WHEN LOCAL ADDRESS PORT`` (``*`` for a kernel-chosen local IP).
Writers take an exclusive ``flock``, readers a shared one; entries expire after
:data:`EXPIRY` seconds and the file keeps at most :data:`MAX_ENTRIES` (the oldest go).
Any failure to use the file disables the memory for that delivery, never the delivery.

A long-lived process keeps one ``cached`` memory: it reads the file again only when
its stamp (size, mtime, ctime, inode) changed or is too young to be trusted (the rule
of the control files, :data:`~qremote.control.stamp.RACY_NS`), one ``stat`` a delivery
instead of opening, locking and parsing it.
"""

from __future__ import annotations

import fcntl
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

EXPIRY = 3600
FUTURE_SLACK = 60
MAX_ENTRIES = 1000
FILE = Path("queue") / "lock" / "qremote-tcpto"

Key = tuple[str, str, int]  # (local IP or "*", remote address, port)


def key(local_ip: str | None, address: str, port: int) -> Key:
    """The memory's key for one attempt."""
    return (local_ip or "*", address, port)


def _lines(data: bytes) -> list[tuple[Key, float]]:
    """The well-formed lines of the file, in order."""
    out = []
    for line in data.decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        try:
            when, port = float(parts[0]), int(parts[3])
        except ValueError:
            continue
        out.append(((parts[1], parts[2], port), when))
    return out


def _current(lines: list[tuple[Key, float]], now: float) -> dict[Key, float]:
    """The entries of ``lines`` that have not expired at ``now``."""
    entries: dict[Key, float] = {}
    for k, when in lines:
        # A time in the future (or inf, nan) would never expire: dropped, beyond a
        # small slack for a clock stepped back.
        if -FUTURE_SLACK <= now - when < EXPIRY:
            entries[k] = when
    return entries


def _parse(data: bytes, now: float) -> dict[Key, float]:
    return _current(_lines(data), now)


def _stamp(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _render(entries: dict[Key, float]) -> bytes:
    newest = sorted(entries.items(), key=lambda kv: kv[1])[-MAX_ENTRIES:]
    return "".join(f"{int(when)} {k[0]} {k[1]} {k[2]}\n" for k, when in newest).encode()


class Memory:
    """The failover memory of one qmail home (``path`` None: disabled)."""

    def __init__(self, path: Path | None, clock: Callable[[], float] = time.time,
                 cached: bool = False) -> None:
        self.path = path
        self.clock = clock
        self.cached = cached
        # cached: the stamp of the file when last read and its lines then
        self._seen: tuple[tuple[int, int, int, int, int], list[tuple[Key, float]]] | None = None

    @classmethod
    def for_home(cls, home: Path, cached: bool = False) -> Memory:
        """The memory file of ``home``."""
        return cls(home / FILE, cached=cached)

    def read(self, strict: bool = False) -> dict[Key, float]:
        """Current (unexpired) entries; empty when the file is absent, or unreadable
        (with ``strict``, an unreadable file raises OSError)."""
        if self.path is None:
            return {}
        try:
            if self.cached and not strict:
                seen = self._seen
                if seen is not None and _stamp(os.stat(self.path)) == seen[0]:
                    return _current(seen[1], self.clock())
            # Never blocks: a FIFO in its place would hold every delivery for ever.
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            with open(fd, "rb") as fh:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise OSError(f"{self.path} is not a regular file")
                fcntl.flock(fh, fcntl.LOCK_SH)
                lines = _lines(fh.read())
                if self.cached:
                    self._keep(os.fstat(fd), lines)  # under the lock: what was read
                return _current(lines, self.clock())
        except FileNotFoundError:
            return {}
        except OSError:
            if strict:
                raise
            return {}

    def _keep(self, st: os.stat_result, lines: list[tuple[Key, float]]) -> None:
        """Remember what was read, unless the stamp is too young to be trusted."""
        from qremote.control.stamp import RACY_NS

        young = time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_NS
        self._seen = None if young else (_stamp(st), lines)

    def _update(self, change: Callable[[dict[Key, float]], None], strict: bool = False,
                create: bool = True) -> None:
        if self.path is None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC
                         | (os.O_CREAT if create else 0), 0o644)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise OSError(f"{self.path} is not a regular file")
        except FileNotFoundError:
            if strict and create:
                raise
            return
        except OSError:
            if strict:
                raise
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            entries = _parse(b"".join(chunks), self.clock())
            change(entries)
            data = _render(entries)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, data)
            os.ftruncate(fd, len(data))
        except OSError:
            if strict:
                raise
        finally:
            os.close(fd)

    def record(self, k: Key) -> None:
        """Remember that a connect for ``k`` timed out now."""
        now = self.clock()
        self._update(lambda entries: entries.__setitem__(k, now))

    def forget(self, k: Key | None = None, strict: bool = False) -> dict[Key, float]:
        """Forget ``k`` (after a successful connect), or every entry when None; returns
        the entries forgotten. With ``strict``, a file that cannot be written raises
        OSError (a missing file holds nothing to forget)."""
        gone: dict[Key, float] = {}

        def change(entries: dict[Key, float]) -> None:
            if k is None:
                gone.update(entries)
                entries.clear()
            elif k in entries:
                gone[k] = entries.pop(k)

        self._update(change, strict=strict, create=False)
        return gone
