"""A small blocking SMTP client on a socket: connect from a local IP, replies, TLS.

Only the protocol mechanics live here; what a reply means for the delivery is decided
in :mod:`qremote.delivery.session`. ``ssl`` is imported only when TLS is used.

Timeouts are qmail's: ``timeoutremote`` bounds each read and each write of at most
:data:`WRITE_CHUNK` bytes, never a whole message, so a slow but steady server
receives any size. A reply is read as qmail reads it (lines up to LF, CR dropped,
``-`` after the code continues it), but its code counts only when it is three ASCII
digits, and its text reaches reports with every control byte replaced by ``?``.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, NamedTuple

from qremote.errors import QremoteError

WRITE_CHUNK = 1 << 16
MAX_TEXT = 5000  # characters of a reply kept for reports (qmail's HUGESMTPTEXT)
MAX_REPLY = 1 << 20  # bytes of a reply read before the peer is deemed broken
# Each settimeout() is a system call: a wait this close to the one set is kept as set.
TIMEOUT_SLACK = 0.001
_DIGITS = frozenset(b"0123456789")
# Bytes that never reach a report raw: C0 controls (CR dropped before) and DEL.
_CONTROLS = bytes(range(32)) + b"\x7f"
_SAFE = bytes.maketrans(_CONTROLS, b"?" * len(_CONTROLS))


class AttemptError(QremoteError):
    """The attempt failed before ``MAIL FROM``; the next attempt follows.

    ``tls`` and ``auth`` say what the connection had reached, for the detail line."""

    def __init__(self, text: str, timed_out: bool = False, tls_fallback: bool = False,
                 tls: str = "none", auth: str = "none") -> None:
        super().__init__(text)
        self.timed_out = timed_out
        self.tls_fallback = tls_fallback
        self.tls = tls
        self.auth = auth
        self.local: str | None = None


class ConnectionDied(QremoteError):
    """The peer closed the connection, or a read or write timed out or failed.

    ``tls_unconfirmed``: TLS had just been set up and nothing was read through it yet
    (a TLS 1.3 server that rejects the client says so only at that first read)."""

    def __init__(self, text: str, tls_unconfirmed: bool = False) -> None:
        super().__init__(text)
        self.tls_unconfirmed = tls_unconfirmed


class Reply(NamedTuple):
    """An SMTP reply: its code (0 when unreadable) and its text, safe for reports."""

    code: int
    text: str

    @property
    def ok(self) -> bool:
        """A 2xx reply."""
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        """A 5xx reply (an unreadable reply is never permanent)."""
        return 500 <= self.code < 600


def reply_code(line: bytes) -> int:
    """The code of a reply's first line: three ASCII digits then space, ``-`` or
    nothing; else 0 (unreadable)."""
    if len(line) >= 3 and all(b in _DIGITS for b in line[:3]) and line[3:4] in (b"", b" ",
                                                                                   b"-"):
        return int(line[:3])
    return 0


def safe_text(raw: bytes) -> str:
    """One reply line as report text: CR dropped, control bytes (LF too) as ``?``,
    UTF-8 or U+FFFD."""
    return raw.replace(b"\r", b"").translate(_SAFE).decode("utf-8", "replace")


def connect(local_ip: str | None, address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection from ``local_ip`` (None: the kernel picks); raises AttemptError."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if local_ip:
            try:
                sock.bind((local_ip, 0))
            except OSError as exc:
                raise AttemptError(f"cannot bind local IP {local_ip}: "
                                   f"{exc.strerror or exc}") from None
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except TimeoutError:
            raise AttemptError(f"connection to {address}:{port} timed out",
                               timed_out=True) from None
        except OSError as exc:
            raise AttemptError(f"cannot connect to {address}:{port}: "
                               f"{exc.strerror or exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


class Client:
    """One SMTP connection: send lines, read replies, upgrade to TLS."""

    def __init__(self, sock: Any, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self.sock.settimeout(timeout)
        self._waits = timeout  # the socket's timeout as last set
        self._buf = b""
        self.tls_version: str | None = None
        self._tls_unconfirmed = False
        self.alive = True  # False once a read or write failed
        self.reusable = True  # False once the server said it is closing (421)

    @property
    def pending(self) -> bool:
        """Bytes already received and not read as a reply: the dialogue is out of step."""
        return bool(self._buf)

    def close(self) -> None:
        """Close without waiting for anything."""
        self.alive = False
        try:
            self.sock.close()
        except OSError:
            pass

    def _wait(self, seconds: float) -> None:
        """Make each socket operation wait at most ``seconds``."""
        if abs(seconds - self._waits) > TIMEOUT_SLACK:
            self.sock.settimeout(seconds)
            self._waits = seconds

    def _died(self, text: str) -> ConnectionDied:
        self.alive = False
        return ConnectionDied(text, self._tls_unconfirmed)

    def send(self, data: bytes) -> None:
        """Write all of ``data``, each :data:`WRITE_CHUNK` within the timeout."""
        view = memoryview(data)
        try:
            self._wait(self.timeout)
            if self.tls_version is None and len(view) <= WRITE_CHUNK:
                # What fits goes at once (the socket is non-blocking under its
                # timeout): sendall would first poll, a system call, to learn it can.
                try:
                    view = view[os.write(self.sock.fileno(), view):]
                except BlockingIOError:
                    pass
            for i in range(0, len(view), WRITE_CHUNK):
                self.sock.sendall(view[i:i + WRITE_CHUNK])
        except TimeoutError:
            raise self._died("timed out sending to the remote host") from None
        except (OSError, ValueError) as exc:
            raise self._died(f"write failed: {exc}") from None

    def _readline(self, deadline: float) -> bytes:
        start = 0
        while True:
            end = self._buf.find(b"\n", start)
            if end >= 0:
                line, self._buf = self._buf[:end], self._buf[end + 1:]
                return line
            if len(self._buf) > MAX_REPLY:
                raise self._died("reply line too long")
            start = len(self._buf)
            left = deadline - time.monotonic()
            if left <= 0:  # a reply trickled byte by byte must still end in time
                raise self._died("timed out waiting for the remote host's whole reply")
            try:
                self._wait(min(left, self.timeout))
                chunk = self.sock.recv(8192)
            except TimeoutError:
                raise self._died("timed out waiting for the remote host") from None
            except (OSError, ValueError) as exc:
                raise self._died(f"read failed: {exc}") from None
            if not chunk:
                raise self._died("connection closed by the remote host")
            self._buf += chunk

    def reply(self) -> Reply:
        """Read one (possibly multi-line) reply. Each read waits at most the timeout,
        and so does the whole reply (a server trickling an endless reply would
        otherwise hold the delivery for days: Postfix bounds it the same way)."""
        deadline = time.monotonic() + self.timeout
        lines = [self._readline(deadline)]
        total = len(lines[0])
        while lines[-1][3:4] == b"-":
            lines.append(self._readline(deadline))
            total += len(lines[-1])
            if total > MAX_REPLY:
                raise self._died("reply too long")
        self._tls_unconfirmed = False
        text = "\n".join(safe_text(line) for line in lines)
        if len(text) > MAX_TEXT:
            text = text[:MAX_TEXT] + "..."
        code = reply_code(lines[0].replace(b"\r", b""))
        if code == 421:  # the server is closing the connection: never reuse it
            self.reusable = False
        return Reply(code, text)

    def command(self, line: str | bytes) -> Reply:
        """Send one command line and read its reply."""
        raw = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line
        self.send(raw + b"\r\n")
        return self.reply()

    def starttls(self, context: Any, server_hostname: str | None) -> None:
        """Wrap the socket in TLS (after a 220 to STARTTLS, or at once for port 465)."""
        import ssl

        if server_hostname and not context.check_hostname and not _idna_ok(server_hostname):
            server_hostname = None  # no SNI for a name DNS allows but IDNA does not
        try:
            self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)
        except (ssl.SSLError, ssl.CertificateError, OSError, ValueError) as exc:
            # ValueError (UnicodeError among them): a name that cannot be verified
            self.alive = False
            raise AttemptError(f"TLS handshake failed: {exc}", tls_fallback=True) from None
        self._buf = b""
        self._waits = self.sock.gettimeout() or 0.0
        self.tls_version = self.sock.version()
        self._tls_unconfirmed = True


def _idna_ok(name: str) -> bool:
    try:
        name.encode("idna")
    except (UnicodeError, ValueError):
        return False
    return True


def tls_context(verify: bool, kept: dict[bool, Any] | None = None) -> Any:
    """A client context: certificate and host name checked only when ``verify``.

    ``kept``: contexts made before, by a long-lived process (loading the trust store
    costs milliseconds)."""
    if kept is not None and verify in kept:
        return kept[verify]
    import ssl

    if verify:
        ctx = ssl.create_default_context()
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if kept is not None:
        kept[verify] = ctx
    return ctx


def parse_ehlo(reply: Reply) -> dict[str, str]:
    """EHLO keywords (upper case) and their parameters.

    The old ``AUTH=MECH ...`` form counts as ``AUTH``; both forms' mechanisms merge."""
    out: dict[str, str] = {}
    for line in reply.text.split("\n")[1:]:
        keyword, _, params = line[4:].strip().partition(" ")
        keyword = keyword.upper()
        if keyword.startswith("AUTH="):
            keyword, params = "AUTH", keyword[5:] + " " + params
        if keyword:
            if keyword == "AUTH" and "AUTH" in out:
                params = out["AUTH"] + " " + params
            out[keyword] = params.strip()
    return out
