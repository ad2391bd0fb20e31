"""``qremote worker`` as a real process for a test: start it, read its log, stop it.

Run as a script (``python -m tests.support.workerproc --pause-at STAGE ...``) it is the
real worker, :class:`qremote.worker.server.Server`, except that it stops itself
(SIGSTOP, the whole process) when a delivery reaches STAGE (accepted, acked,
delivering, reporting): the test then kills it (SIGKILL) exactly there.
"""

from __future__ import annotations

import argparse
import os
import pwd
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]



def thread_cpus(pid: int) -> set[str]:
    """The CPUs each thread of process ``pid`` may run on (``Cpus_allowed_list``)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                found.add(line.split(":", 1)[1].strip())
    return found

class WorkerProcess:
    """A worker for ``home``, run as the current user unless ``user`` says otherwise,
    by this interpreter, or by ``python`` (a venv's, with its own qremote: then a user
    it drops to can reach it, as README requires)."""

    def __init__(self, home: Path, user: str | None = None, pause_at: str | None = None,
                 socket: Path | None = None, env: dict[str, str] | None = None,
                 preexec: Callable[[], None] | None = None,
                 python: Path | None = None, options: tuple[str, ...] = ()) -> None:
        self.home = home
        self.options = options  # more of qremote worker's options
        self.python = python
        self.env = env
        self.preexec = preexec
        self.user = user or pwd.getpwuid(os.geteuid()).pw_name
        self.pause_at = pause_at
        self.socket = socket
        self.lines: list[str] = []
        self._cond = threading.Condition(threading.RLock())

    def start(self, timeout: float = 60) -> WorkerProcess:
        if self.pause_at:
            argv = [sys.executable, "-m", "tests.support.workerproc", "--pause-at",
                    self.pause_at]
        else:
            argv = [str(self.python or sys.executable), "-m", "qremote.cli", "worker"]
        argv += ["--qmail-home", str(self.home), "--user", self.user]
        if self.socket:
            argv += ["--socket", str(self.socket)]
        argv += self.options
        env = {k: v for k, v in (self.env or os.environ).items() if k != "QMAIL_HOME"}
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     cwd="/" if self.python else REPO, env=env,
                                     preexec_fn=self.preexec)
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.wait_line(lambda line: "listening on" in line, timeout)
        except TimeoutError:
            self.kill()
            raise RuntimeError("the worker did not start: "
                               + self.proc.stderr.read().decode(errors="replace")) from None
        return self

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.lines.append("<EOF>")
            self._cond.notify_all()

    def wait_line(self, predicate: Callable[[str], bool], timeout: float = 30) -> str:
        """The first log line for which ``predicate`` holds, waiting for it."""
        def found() -> str | None:
            return next((line for line in self.lines if predicate(line)), None)

        with self._cond:
            if not self._cond.wait_for(lambda: found() is not None or "<EOF>" in self.lines,
                                       timeout):
                raise TimeoutError(f"no such log line in {self.lines}")
            line = found()
        if line is None:
            raise TimeoutError(f"the worker exited; its log: {self.lines}")
        return line

    def deliveries(self) -> list[str]:
        """The log's delivery lines so far."""
        with self._cond:  # reentrant: also called with the condition held
            return [line for line in self.lines if line.startswith("delivery ")]

    def wait_deliveries(self, n: int, timeout: float = 30) -> list[str]:
        """Wait for ``n`` delivery lines (a line follows its report); return them all."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.deliveries()) >= n or "<EOF>" in self.lines,
                                timeout)
        return self.deliveries()

    def wait_stopped(self, timeout: float = 30) -> None:
        """Wait until the worker stopped itself (SIGSTOP) at its pause stage."""
        done = threading.Event()
        timer = threading.Timer(timeout, lambda: done.is_set() or self.proc.kill())
        timer.start()
        try:
            _, status = os.waitpid(self.proc.pid, os.WUNTRACED)
        finally:
            done.set()
            timer.cancel()
        if not os.WIFSTOPPED(status):
            raise RuntimeError(f"the worker ended instead of stopping: status {status}")

    def kill(self) -> None:
        """SIGKILL, as a crash or ``kill -9`` would."""
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait(30)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM; the exit status once it has drained."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _main() -> int:
    from qremote.worker.server import Server

    parser = argparse.ArgumentParser()
    parser.add_argument("--pause-at", required=True)
    parser.add_argument("--qmail-home", required=True)
    parser.add_argument("--user")
    parser.add_argument("--socket")
    args = parser.parse_args()

    class Pausing(Server):
        def set_stage(self, delivery, stage):  # type: ignore[no-untyped-def]
            super().set_stage(delivery, stage)
            if stage == args.pause_at:  # this thread stops here, not a bit later
                signal.pthread_kill(threading.get_ident(), signal.SIGSTOP)

    server = Pausing(Path(args.qmail_home),
                     socket_path=Path(args.socket) if args.socket else None)
    server.open(args.user)
    return server.serve()


if __name__ == "__main__":
    sys.exit(_main())
