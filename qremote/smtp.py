"""A small blocking SMTP client on a socket: connect from a local IP, replies, TLS.

Only the protocol mechanics live here; what a reply means for the delivery is decided
in :mod:`qremote.session`. ``ssl`` is imported only when TLS is used.
"""

from __future__ import annotations

import socket
from typing import Any, NamedTuple

from qremote.errors import QremoteError

MAX_REPLY = 64 * 1024


class AttemptError(QremoteError):
    """The attempt failed before ``MAIL FROM``; the next attempt follows."""

    def __init__(self, text: str, timed_out: bool = False, tls_fallback: bool = False):
        super().__init__(text)
        self.timed_out = timed_out
        self.tls_fallback = tls_fallback


class ConnectionDied(QremoteError):
    """The peer closed the connection, or a read or write timed out or failed."""


class Reply(NamedTuple):
    """An SMTP reply: its code (0 when unreadable) and its full text."""

    code: int
    text: str

    @property
    def ok(self) -> bool:
        """A 2xx reply."""
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        """A 5xx reply."""
        return 500 <= self.code < 600


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
    except BaseException:
        sock.close()
        raise
    return sock


class Client:
    """One SMTP connection: send lines, read replies, upgrade to TLS."""

    def __init__(self, sock: Any, timeout: float) -> None:
        self.sock = sock
        self.sock.settimeout(timeout)
        self._buf = b""
        self.tls_version: str | None = None

    def close(self) -> None:
        """Close without waiting for anything."""
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes) -> None:
        """Write all of ``data``; raises ConnectionDied."""
        try:
            self.sock.sendall(data)
        except (OSError, ValueError) as exc:
            raise ConnectionDied(f"write failed: {exc}") from None

    def _readline(self) -> bytes:
        while b"\n" not in self._buf:
            if len(self._buf) > MAX_REPLY:
                raise ConnectionDied("reply line too long")
            try:
                chunk = self.sock.recv(8192)
            except TimeoutError:
                raise ConnectionDied("timed out waiting for the remote host") from None
            except (OSError, ValueError) as exc:
                raise ConnectionDied(f"read failed: {exc}") from None
            if not chunk:
                raise ConnectionDied("connection closed by the remote host")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.rstrip(b"\r")

    def reply(self) -> Reply:
        """Read one (possibly multi-line) reply."""
        lines: list[str] = []
        total = 0
        while True:
            raw = self._readline()
            total += len(raw)
            if total > MAX_REPLY:
                raise ConnectionDied("reply too long")
            text = raw.decode("utf-8", "replace")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                break
        first = lines[0]
        code = int(first[:3]) if first[:3].isdigit() else 0
        return Reply(code, "\n".join(lines))

    def command(self, line: str) -> Reply:
        """Send one command line and read its reply."""
        self.send(line.encode("utf-8") + b"\r\n")
        return self.reply()

    def starttls(self, context: Any, server_hostname: str | None) -> None:
        """Wrap the socket in TLS (after a 220 to STARTTLS, or at once for port 465)."""
        import ssl

        try:
            self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)
        except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
            raise AttemptError(f"TLS handshake failed: {exc}", tls_fallback=True) from None
        self._buf = b""
        self.tls_version = self.sock.version()


def tls_context(verify: bool) -> Any:
    """A client context: certificate and host name checked only when ``verify``."""
    import ssl

    if verify:
        return ssl.create_default_context()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def parse_ehlo(reply: Reply) -> dict[str, str]:
    """EHLO keywords (upper case) and their parameters."""
    out: dict[str, str] = {}
    for line in reply.text.split("\n")[1:]:
        keyword, _, params = line[4:].strip().partition(" ")
        if keyword:
            out[keyword.upper()] = params.strip()
    return out


def prepare_message(data: bytes) -> bytes:
    """qmail's conversion: LF to CRLF, leading dots doubled, a final newline added."""
    if data and not data.endswith(b"\n"):
        data += b"\n"
    data = data.replace(b"\n", b"\r\n")
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..")
