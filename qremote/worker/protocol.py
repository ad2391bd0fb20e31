"""The wire protocol between ``qmail-remote`` (a client) and ``qremote worker``.

A unix stream socket, by default ``QMAIL_HOME/queue/lock/qremote.sock``. One request
a connection; integers are big-endian.

Request (client to worker), sent with one ``sendmsg(2)``::

    offset  size       field
    0       1          version: 1
    1       1          kind: "D" deliver, "S" status
    2       2          argc: the number of arguments (0 for status)
    4       4 x argc   the length of each argument
    ...     sum        the arguments, back to back: qmail-remote's HOST SENDER RECIP...

A deliver request carries two file descriptors in one ``SCM_RIGHTS`` message, attached
to its first byte: the message (the client's stdin: the queue file) and the report fd
(the client's stdout: qmail-rspawn's pipe; in relay mode a pipe the client copies to
its stdout). A status request carries none.

Reply (worker to client): one byte, :data:`ACK`, sent once the worker holds the
descriptors and has parsed the request, before any delivery work. For a status
request the JSON document follows the ack, then the worker closes. Anything else
means "not taken", and the client delivers in-process: no socket, a refused connect,
a connection closed or reset before the ack (a refused peer, a draining worker, an
unknown version, a malformed request). The worker never starts a delivery it has not
acked; once acked it writes the delivery's whole report into the report fd in one
``write(2)`` and closes its copies of both descriptors (qmail-rspawn reads to EOF).
A worker that dies instead closes them unwritten: qmail-rspawn sees no output, a
``Z``, and retries.
"""

from __future__ import annotations

import array
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from qremote.errors import QremoteError

VERSION = 1
DELIVER = b"D"
STATUS = b"S"
ACK = b"A"
MAX_ARGS = 0xFFFF
MAX_REQUEST = 1 << 20  # a larger argv is delivered in-process
PIPE_BUF = 4096  # a write of at most this many bytes into a pipe is atomic (POSIX)
SOCKET_NAME = "qremote.sock"
SUN_PATH_MAX = 107  # sizeof(sun_path) - 1 on Linux


class ProtocolError(QremoteError):
    """A request that does not follow the protocol; the connection is dropped."""


class NoRequest(ProtocolError):
    """The client closed the connection without a byte (a probe): nothing to report."""


class Request(NamedTuple):
    """One parsed request and the descriptors that came with it."""

    kind: bytes
    args: list[bytes]
    fds: list[int]


def default_socket(home: Path) -> Path:
    """Where the worker listens for the qmail home ``home``."""
    return home / "queue" / "lock" / SOCKET_NAME


def encode_request(kind: bytes, args: Sequence[bytes] = ()) -> bytes:
    """The bytes of a request (without its descriptors)."""
    if len(args) > MAX_ARGS:
        raise ProtocolError(f"{len(args)} arguments; the protocol carries {MAX_ARGS}")
    head = bytes([VERSION]) + kind + len(args).to_bytes(2, "big")
    lengths = b"".join(len(a).to_bytes(4, "big") for a in args)
    return head + lengths + b"".join(args)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 65536))
        if not chunk:
            raise ProtocolError("the client closed the connection in the middle of its "
                                "request")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_request(sock: socket.socket) -> Request:
    """Read one request and its descriptors from ``sock``.

    On any error every descriptor received is closed before :class:`ProtocolError`
    (or ``OSError``) propagates: a descriptor kept by mistake would hold qmail-rspawn's
    pipe open, and the delivery would hang."""
    fds: list[int] = []
    try:
        space = socket.CMSG_SPACE(4 * 4)  # room for more than two, to see extras
        data, ancillary, flags, _ = sock.recvmsg(65536, space,
                                                 getattr(socket, "MSG_CMSG_CLOEXEC", 0))
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = array.array("i")
                got.frombytes(payload[:len(payload) - len(payload) % got.itemsize])
                fds.extend(got)
        if flags & socket.MSG_CTRUNC:
            raise ProtocolError("too many file descriptors in the request")
        if not data and not fds:
            raise NoRequest("the client closed the connection before its request")
        if not data:
            raise ProtocolError("the client closed the connection before its request")
        if len(data) < 4:
            data += _recv_exact(sock, 4 - len(data))
        if data[0] != VERSION:
            raise ProtocolError(f"protocol version {data[0]}; this worker speaks {VERSION}")
        kind, argc = data[1:2], int.from_bytes(data[2:4], "big")
        need = 4 + 4 * argc
        if len(data) < need:
            data += _recv_exact(sock, need - len(data))
        lengths = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(argc)]
        total = need + sum(lengths)
        if total > MAX_REQUEST:
            raise ProtocolError(f"a request of {total} bytes; the limit is {MAX_REQUEST}")
        if len(data) < total:
            data += _recv_exact(sock, total - len(data))
        if len(data) > total:
            raise ProtocolError("bytes after the request")
        args, pos = [], need
        for n in lengths:
            args.append(data[pos:pos + n])
            pos += n
        wanted = {DELIVER: 2, STATUS: 0}.get(kind)
        if wanted is None:
            raise ProtocolError(f"unknown request kind {kind!r}")
        if len(fds) != wanted:
            raise ProtocolError(f"{len(fds)} file descriptors with a {kind.decode()} "
                                f"request; it takes {wanted}")
        return Request(kind, args, fds)
    except BaseException:
        close_all(fds)
        raise


def close_all(fds: Sequence[int]) -> None:
    """Close every descriptor, ignoring errors."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def send_request(sock: socket.socket, kind: bytes, args: Sequence[bytes] = (),
                 fds: Sequence[int] = ()) -> None:
    """Send one request, its descriptors attached to the first byte."""
    data = encode_request(kind, args)
    ancillary = ([(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
                 if fds else [])
    sent = sock.sendmsg([data], ancillary)
    if sent < len(data):
        sock.sendall(data[sent:])


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end (``SO_PEERCRED``)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    pid, uid, gid = array.array("i", raw)
    return pid, uid, gid


@contextmanager
def socket_address(path: Path) -> Iterator[str]:
    """An address for ``bind``/``connect`` naming ``path``, whatever its length.

    A unix socket address holds at most 107 bytes; a longer path is reached through a
    descriptor of its directory (``/proc/self/fd/N/NAME``), which leaves the working
    directory alone (safe in a threaded program)."""
    text = os.fspath(path)
    if len(os.fsencode(text)) <= SUN_PATH_MAX:
        yield text
        return
    dir_fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{dir_fd}/{path.name}"
    finally:
        os.close(dir_fd)


def connect(path: Path, timeout: float | None = None) -> socket.socket:
    """A connection to the worker listening at ``path`` (``OSError`` when none)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        with socket_address(path) as address:
            sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def fit_report(report: bytes, limit: int = PIPE_BUF) -> bytes:
    """``report`` shortened to ``limit`` bytes if it is longer, every letter kept.

    Only a write of at most PIPE_BUF bytes into a pipe is atomic: a longer report
    could be cut by the worker's death into records without their message report,
    which qmail-rspawn would read as a bounce. The message report keeps its first
    line and its detail line (the last); recipient reports keep their first line."""
    if len(report) <= limit:
        return report
    records = report.split(b"\0")[:-1]
    if not records:
        return report[:limit]
    *recipients, message = records
    lines = message.split(b"\n")
    if len(lines) > 2:
        message = b"\n".join([lines[0][:1000], b"(report shortened by qremote worker)",
                              lines[-1][:1000]])
    recipients = [r.split(b"\n", 1)[0][:200] for r in recipients]
    out = b"".join(r + b"\0" for r in [*recipients, message])
    return out if len(out) <= limit else report
