"""qmail-rspawn in miniature: run a qmail-remote as qmail does and read the outcome.

:func:`spawn` follows qmail's ``spawn.c``: the message is a regular file opened
read-only as stdin (the queue file), stdout is a pipe, stderr is the same pipe; the
parent keeps its copy of the pipe's write end until the child has been reaped, reads
the pipe until EOF (while the child runs), and only then builds the report.
:func:`rspawn_report` is ``report()`` of qmail-rspawn.c, rule for rule: what
qmail-send receives, its first byte the letter that decides (``K`` delivered, ``Z``
retry, ``D`` bounce).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass

_LETTERS = {1: b"K", 0: b"Z", -1: b"D"}


def _cstr(data: bytes, start: int) -> bytes:
    """substdio_puts(s + start): the bytes up to the next NUL."""
    end = data.find(b"\0", start)
    return data[start:] if end < 0 else data[start:end]


def rspawn_report(returncode: int, output: bytes) -> bytes:
    """What qmail-rspawn tells qmail-send for a child with this status and output."""
    if returncode < 0:  # killed by a signal
        return b"Zqmail-remote crashed.\n"
    if returncode == 111:
        return b"ZUnable to run qmail-remote.\n"
    if returncode != 0:
        return b"DUnable to run qmail-remote.\n"
    if not output:
        return b"Zqmail-remote produced no output.\n"
    result, j = -1, 0
    for k, byte in enumerate(output):
        if byte == 0:
            first = output[j:j + 1]
            if first == b"K":
                result = 1
                break
            if first == b"Z":
                result = 0
                break
            if first == b"D":
                break
            j = k + 1
    orr = result
    if output[:1] == b"s":
        orr = 0
    elif output[:1] == b"h":
        orr = -1
    out = _LETTERS[orr]
    k = 1
    while k < len(output):
        k += 1
        if output[k - 1] == 0:
            out += _cstr(output, 1)
            if result <= orr and k < len(output) and output[k:k + 1] in (b"Z", b"D", b"K"):
                out += _cstr(output, k + 1)
            break
    return out


def eof_soon(fd: int, timeout: float = 10) -> bool:
    """True when the pipe ``fd`` reads EOF within ``timeout`` (every writer closed)."""
    import select

    readable, _, _ = select.select([fd], [], [], timeout)
    return bool(readable) and os.read(fd, 1) == b""


@dataclass
class Spawned:
    """One delivery as qmail-rspawn saw it."""

    returncode: int
    output: bytes  # the bytes read from the pipe (the child's stdout and stderr)
    report: bytes  # what qmail-rspawn hands to qmail-send

    @property
    def letter(self) -> str:
        return chr(self.report[0])


def spawn(argv: list[str], message: bytes, env: dict[str, str] | None = None,
          timeout: float = 120, user: int | None = None, groups: list[int] | None = None,
          started: threading.Event | None = None) -> Spawned:
    """Run ``argv`` (the client and qmail-remote's HOST SENDER RECIP) as qmail-rspawn
    does, as ``user`` (uid) with ``groups`` (the first is the gid) when given;
    ``started`` is set once the child runs."""
    with tempfile.TemporaryFile() as queue_file:
        queue_file.write(message)
        queue_file.flush()
        queue_file.seek(0)
        if user is not None:
            os.fchmod(queue_file.fileno(), 0o644)
        read_end, write_end = os.pipe()
        chunks: list[bytes] = []

        def reader() -> None:
            while chunk := os.read(read_end, 65536):
                chunks.append(chunk)

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        try:
            kwargs: dict = {} if user is None else {"user": user}
            if groups:
                kwargs |= {"group": groups[0], "extra_groups": groups}
            child = subprocess.Popen(argv, stdin=queue_file, stdout=write_end,
                                     stderr=write_end, env=env if env is not None else {},
                                     **kwargs)
            if started is not None:
                started.set()
            returncode = child.wait(timeout)
        finally:
            os.close(write_end)  # spawn.c: closed once the child is reaped
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError("the report pipe never reached EOF")
        os.close(read_end)
    output = b"".join(chunks)
    return Spawned(returncode, output, rspawn_report(returncode, output))
