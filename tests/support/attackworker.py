"""Helpers for the attack tests on the worker (issue 10's retest).

- :func:`relay_home`: a qmail home whose every delivery goes to one loopback server,
  with ``queue/lock`` for a worker.
- :func:`via_pyclient`: one delivery as qmail-rspawn makes it, through the Python
  client (the worker when one listens, else in-process).
- :func:`message_letter`: the K/Z/D of a report.
- :class:`ForeignListener`: a process of ANOTHER user (``nobody``) listening on the
  worker's socket path, acknowledging every request and writing a forged ``K`` into
  the report descriptor it was handed: what a client meets when something else than
  the worker (run by root or qmailr) answers there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from qremote.client.build import PYCLIENT
from tests.support.listener import LoopbackServer
from tests.support.rspawn import Spawned, spawn

NOBODY = 65534
FORGED = b"Kforged by a foreign listener.\nroute=- local=- remote=- tls=none auth=none\0"


def relay_home(make_home: Callable[..., Path], port: int, **extra: str) -> Path:
    """Control files sending everything to 127.0.0.1:``port`` from 127.0.0.2, and
    ``queue/lock``; connections stay cached for a minute unless ``extra`` says."""
    files = {"routes": f"r;127.0.0.2;127.0.0.1:{port};;\n", "routemap": "*;*;r\n",
             "timeoutconnect": "5\n", "timeoutremote": "30\n", "reuseidle": "60\n",
             **extra}
    home = make_home(**files)
    (home / "queue" / "lock").mkdir(parents=True, exist_ok=True)
    return home


def via_pyclient(home: Path, args: list[str], message: bytes = b"Subject: t\n\nhi\n",
                 timeout: float = 60) -> Spawned:
    """One delivery through the Python client, spawned as qmail-rspawn does."""
    return spawn([sys.executable, "-I", "-S", str(PYCLIENT), *args], message,
                 env={"QMAIL_HOME": str(home)}, timeout=timeout)


def message_letter(report: bytes) -> str:
    """The letter of the message report (the last record)."""
    records = report.split(b"\0")
    return chr(records[-2][0]) if len(records) >= 2 and records[-2] else "?"


# Runs as ``nobody`` under a system Python (the test's interpreter may live where
# nobody can read it): bind, listen, ack, forge a K, close.
_FOREIGN = r"""
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(16)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    data, anc, _, _ = c.recvmsg(1 << 20, socket.CMSG_SPACE(16))
    fds = array.array("i")
    for level, kind, payload in anc:
        fds.frombytes(payload[:len(payload) - len(payload) % 4])
    print("request", len(data), "fds", len(fds), flush=True)
    if data:
        c.sendall(b"A")
    c.close()
    if len(fds) >= 2:
        os.write(fds[1], FORGED)
    for fd in fds:
        os.close(fd)
""".replace("FORGED", repr(FORGED))


def foreign_python() -> str | None:
    """A Python that ``nobody`` can run, or None."""
    for cand in ("/usr/bin/python3", "/usr/local/bin/python3"):
        try:
            done = subprocess.run([cand, "-I", "-c", "pass"], user=NOBODY, group=NOBODY,
                                  extra_groups=[], capture_output=True, timeout=30,
                                  cwd="/")
        except OSError:
            continue
        if done.returncode == 0:
            return cand
    return None


class ForeignListener:
    """``nobody`` listening on ``path`` (its directory must let nobody create it)."""

    def __init__(self, python: str, path: Path) -> None:
        self.path = path
        self.proc = subprocess.Popen([python, "-I", "-c", _FOREIGN, str(path)],
                                     user=NOBODY, group=NOBODY, extra_groups=[],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     cwd="/")
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != b"listening":
            self.stop()
            raise RuntimeError(f"the foreign listener did not start: {line!r}")

    def stop(self) -> list[str]:
        """Stop it; the lines it printed (one per request it read)."""
        self.proc.kill()
        out, _ = self.proc.communicate(timeout=30)
        return out.decode(errors="replace").splitlines()

    @staticmethod
    def owner(path: Path) -> int:
        return os.lstat(path).st_uid


class RsetRefuser(LoopbackServer):
    """A raw SMTP server offering PIPELINING and CHUNKING that answers every ``RSET``
    with ``502`` and otherwise works: each ``BDAT`` chunk it reads is kept in
    :attr:`bodies` (a message accepted), and answered ``250``."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        super().__init__()

    def session(self, conn) -> None:  # type: ignore[no-untyped-def]
        reader = conn.makefile("rb")
        conn.sendall(b"220 rset-refuser ESMTP\r\n")
        while line := reader.readline():
            verb = line.split()[0].upper() if line.split() else b""
            if verb == b"EHLO":
                conn.sendall(b"250-rset-refuser\r\n250-PIPELINING\r\n250 CHUNKING\r\n")
            elif verb == b"RSET":
                conn.sendall(b"502 5.5.1 RSET not implemented\r\n")
            elif verb == b"BDAT":
                self.bodies.append(reader.read(int(line.split()[1])))
                conn.sendall(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")
