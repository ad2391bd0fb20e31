"""Blocks of a filter's search analyzed by helper processes, results in order.

A filter over a long history is CPU-bound in :meth:`qconsole.logscan.Plan.analyze`,
a pure function of a block's bytes: on a machine with several CPUs, helper processes
analyze the next blocks while this one applies the results (the exact-way work, the
table). Each helper is ``python -c`` importing only :mod:`qconsole.logscan` (not the
console, not the caller's ``__main__``): it reads a block itself, from the same file
(opened through ``/proc/PID/fd`` of this process, checked by inode), so only the
results cross the pipe. Span ``k`` goes to helper ``k mod n``, each helper answers in
the order it was asked: results come back in order with no thread.

The helpers are kept between searches (one search uses them at a time; another
searches in its own process meanwhile) and killed when a search stops early with work
still queued, or when this process exits. Whatever goes wrong with a helper (it died,
it could not open the file), that block is analyzed here: the pool only ever makes a
search faster, never different.
"""

from __future__ import annotations

import atexit
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from qconsole.logbulk import Block
from qconsole.logscan import BlockResult, Plan
from qconsole.logsource import Segment

AHEAD = 2  # blocks queued per helper
MAX_HELPERS = 4
HANDOVER = 1.0  # seconds a search waits for the helpers before analyzing a block here
_ROOT = str(Path(__file__).resolve().parent.parent)
_CODE = ("import sys; sys.path.insert(0, sys.argv[1]); "
         "from qconsole.logscan import serve; serve()")

Span = tuple[Segment, int, int]  # segment, local start, length


def helpers_wanted() -> int:
    """How many helper processes a search uses here (0: none, one CPU)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return 0 if cpus < 2 else min(MAX_HELPERS, cpus)


class _Helper:
    """One helper process and the spans it was asked for, oldest first."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _CODE, _ROOT],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, close_fds=True)
        self.queued = 0
        self.dead = False  # it stopped answering: never asked again

    def ask(self, args: tuple) -> bool:
        if self.dead:
            return False
        try:
            pickle.dump(args, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except (OSError, ValueError):
            self.dead = True
            return False
        self.queued += 1
        return True

    def answer(self) -> BlockResult | None:
        """The next answer (None: the helper could not do it, or is gone)."""
        self.queued -= 1
        if self.dead:
            return None
        try:
            out = pickle.load(self.proc.stdout)  # type: ignore[arg-type]
        except Exception:  # (gone, or a helper of another version: unknown classes)
            self.dead = True
            return None
        return out if isinstance(out, BlockResult) else None

    def peak_rss(self) -> int:
        """The helper's peak resident memory in bytes (0 if unknown)."""
        try:
            with open(f"/proc/{self.proc.pid}/status", "rb") as fh:
                for line in fh:
                    if line.startswith(b"VmHWM:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def cpu_seconds(self) -> float:
        """The helper's CPU time so far (0 if unknown)."""
        try:
            with open(f"/proc/{self.proc.pid}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return 0.0

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()  # type: ignore[union-attr]
            except OSError:
                pass
        self.proc.wait()


class Pool:
    """The helper processes of this process (see the module's docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._helpers: list[_Helper] = []
        self.answered = 0  # blocks the helpers analyzed (for tests and benchmarks)
        self._searches = 0

    def analyze(self, plan: Plan, spans: Iterator[Span], dense: tuple[int, int],
                join_limit: int,
                stop: Callable[[], bool] = lambda: False) -> Iterator[BlockResult]:
        """The analysis of every span, in order; helpers do it when they are free and
        there are some, else this process does. ``stop``: the search is no longer
        wanted (it ends without waiting for the helpers)."""
        spans = iter(spans)
        # Another search has them (the filter typed before this one, until its thread
        # sees it was stopped, within a block): wait for them a moment, as a block
        # analyzed here meanwhile is this process's memory (a search per key typed).
        waited = 0.0
        while not self._lock.acquire(timeout=0.05):
            if stop():
                return
            waited += 0.05
            if waited < HANDOVER:
                continue
            waited = 0.0
            span = next(spans, None)
            if span is None:
                return
            yield _analyze_here(plan, span)
        try:
            yield from self._analyze(plan, spans, dense, join_limit)
        finally:
            self._lock.release()

    def _analyze(self, plan: Plan, spans: Iterator[Span], dense: tuple[int, int],
                 join_limit: int) -> Iterator[BlockResult]:
        want = helpers_wanted()
        helpers = self._helpers
        while len(helpers) < want:
            try:
                helpers.append(_Helper())
            except OSError:
                break
        if not helpers:
            yield from _here(plan, spans)
            return
        self._searches += 1
        queue: list[tuple[_Helper | None, Span]] = []  # asked, oldest first
        k = 0
        pid = os.getpid()
        done = False
        try:
            while True:
                while not done and len(queue) < AHEAD * len(helpers):
                    span = next(spans, None)
                    if span is None:
                        done = True
                        break
                    seg, start, length = span
                    h = helpers[k % len(helpers)]
                    k += 1
                    args = (self._searches, plan.text, f"/proc/{pid}/fd/{seg.fh.fileno()}",
                            seg.inode, start, length, seg.base + start, dense, join_limit)
                    queue.append((h if h.ask(args) else None, span))
                if not queue:
                    return
                h, span = queue.pop(0)
                res = None if h is None else h.answer()
                if res is None:
                    res = _analyze_here(plan, span)
                else:
                    self.answered += 1
                yield res
        finally:
            # Stopped early, their answers are moot; a dead one is replaced next time.
            for h in [h for h in helpers if h.queued or h.dead]:
                h.kill()
                helpers.remove(h)

    def peak_rss(self) -> int:
        """The helpers' peak resident memory, summed (bytes)."""
        return sum(h.peak_rss() for h in self._helpers)

    def cpu_seconds(self) -> float:
        """The CPU time the live helpers have used (user and system)."""
        return sum(h.cpu_seconds() for h in self._helpers)

    def pids(self) -> list[int]:
        """The helpers' process ids."""
        return [h.proc.pid for h in self._helpers]

    def close(self) -> None:
        """End the helpers."""
        for h in self._helpers:
            h.kill()
        self._helpers.clear()


def _analyze_here(plan: Plan, span: Span) -> BlockResult:
    seg, start, length = span
    return plan.analyze(Block(seg.base + start, seg.pread(start, length)))


def _here(plan: Plan, spans: Iterator[Span]) -> Iterator[BlockResult]:
    for span in spans:
        yield _analyze_here(plan, span)


POOL = Pool()
atexit.register(POOL.close)
