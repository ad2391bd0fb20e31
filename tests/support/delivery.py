"""Helpers to run deliveries and read their reports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from qremote.remote import run

REPO = Path(__file__).resolve().parents[2]


def reports(out: bytes) -> list[str]:
    """The ``\\0``-terminated reports, each as text (letter first)."""
    assert out.endswith(b"\0"), out
    return [r.decode() for r in out[:-1].split(b"\0")]


def deliver(home: Path, host: str, sender: str, rcpts: list[str],
            message: bytes = b"Subject: test\n\nhello\n") -> list[str]:
    """Run the real engine in-process; return its reports."""
    return reports(run([host, sender, *rcpts], message, str(home)))


def deliver_process(home: Path | None, args: list[str], message: bytes,
                    env_extra: dict[str, str] | None = None,
                    ) -> subprocess.CompletedProcess[bytes]:
    """Run ``qmail-remote`` as a real process (the console script's code)."""
    env = {k: v for k, v in os.environ.items() if k != "QMAIL_HOME"}
    if home is not None:
        env["QMAIL_HOME"] = str(home)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-I", "-m", "qremote.remote", *args],
                          input=message, capture_output=True, env=env, timeout=120,
                          cwd=REPO)


def detail(report: str) -> dict[str, str]:
    """The detail line of a message report, as a dict."""
    last = report.rstrip("\n").split("\n")[-1]
    return dict(item.split("=", 1) for item in last.split())


class FullBacklog:
    """A listener whose accept queue is full: further connects time out."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.listener = socket.socket()
        self.listener.bind((host, 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.fillers: list[socket.socket] = []
        for _ in range(4):  # Linux queues backlog+1; extra SYNs are then dropped
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((host, self.port))
            self.fillers.append(s)

    def close(self) -> None:
        for s in self.fillers:
            s.close()
        self.listener.close()
