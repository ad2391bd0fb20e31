"""SMTP servers on loopback for delivery tests.

- :class:`Sink`: aiosmtpd with optional STARTTLS or implicit TLS (trustme
  certificates) and AUTH (PLAIN, LOGIN, and a CRAM-MD5 handler), recording messages.
- :class:`ScriptedServer`: a raw socket server that behaves until a chosen stage and
  then answers 4xx, 5xx, drops the connection, or stalls.
"""

from __future__ import annotations

import hmac
import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from tests.support.listener import close_listener


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    mail_options: list[str]
    peer: str
    tls: bool
    auth: str | None


def _login(login: bytes | None) -> str | None:
    return login.decode() if login else None


class _Handler:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.sink.ehlos += 1
        if self.sink.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.sink.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.sink.data_reply:
            return self.sink.data_reply
        self.sink.received.append(Received(
            envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content,
            list(envelope.mail_options), session.peer[0],
            session.ssl is not None,
            _login(getattr(session.auth_data, "login", None))))
        return "250 2.0.0 queued as 1234"

    async def auth_CRAM__MD5(self, server, args):
        challenge = b"<4711.1@sink.test>"
        response = await server.challenge_auth(challenge)
        if not isinstance(response, bytes):
            return AuthResult(success=False, handled=False)
        user, _, digest = response.decode().partition(" ")
        secret = self.sink.users.get(user)
        ok = secret is not None and hmac.compare_digest(
            digest, hmac.new(secret.encode(), challenge, "md5").hexdigest())
        return AuthResult(success=ok, handled=False, auth_data=LoginPassword(user.encode(),
                                                                             b""))


class _Smtp(SMTP):
    line_length_limit = 1_000_000  # accept long lines unless a test asks otherwise


class _Controller(Controller):
    def __init__(self, *args: Any, strict_lines: bool = False, **kwargs: Any) -> None:
        self.strict_lines = strict_lines
        super().__init__(*args, **kwargs)

    def factory(self) -> SMTP:
        cls = SMTP if self.strict_lines else _Smtp
        return cls(self.handler, **self.SMTP_kwargs)


class Sink:
    """aiosmtpd on ``host``:``port`` (a free port when 0)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 starttls: ssl.SSLContext | None = None,
                 implicit: ssl.SSLContext | None = None,
                 users: dict[str, str] | None = None,
                 smtputf8: bool = False, data_size_limit: int | None = 33554432,
                 strict_lines: bool = False, mechanisms: list[str] | None = None,
                 pipelining: bool = False, timeout: float = 300) -> None:
        self.host, self.port = host, port or free_port(host)
        self.pipelining = pipelining
        self.ehlos = 0  # one per connection (and one more after STARTTLS)
        self.received: list[Received] = []
        self.rcpt_replies: dict[str, str] = {}
        self.data_reply: str | None = None
        self.users = users or {}
        kwargs: dict[str, Any] = {
            "data_size_limit": data_size_limit, "enable_SMTPUTF8": smtputf8,
            "decode_data": False, "ident": "sink.test ESMTP", "timeout": timeout}
        if starttls is not None:
            kwargs["tls_context"] = starttls
        if users:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_require_tls"] = False  # the client must refuse by itself
            if mechanisms is not None:
                kwargs["auth_exclude_mechanism"] = [
                    m for m in ("LOGIN", "PLAIN", "CRAM-MD5") if m not in mechanisms]
        else:
            kwargs["auth_exclude_mechanism"] = ["LOGIN", "PLAIN", "CRAM-MD5"]
        self.controller = _Controller(_Handler(self), hostname=host, port=self.port,
                                      strict_lines=strict_lines,
                                     ssl_context=implicit, server_hostname="localhost",
                                     **kwargs)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(user) == password:
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    def start(self) -> Sink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class ScriptedServer:
    """Behaves as a plain SMTP server until ``stage``, then applies ``fault``.

    stage: greeting, ehlo, starttls, auth, mail, rcpt, data, midbody, dot (or none).
    fault: 4xx, 5xx, drop, stall; badtls (at starttls: 220, then no TLS);
    noehlo (502 to EHLO, 250 to HELO).
    """

    stage: str
    fault: str
    host: str = "127.0.0.1"
    extensions: list[str] = field(default_factory=lambda: ["PIPELINING", "8BITMIME"])
    port: int = 0
    bodies: list[bytes] = field(default_factory=list)
    greetings: list[bytes] = field(default_factory=list)  # EHLO/HELO lines heard

    def start(self) -> ScriptedServer:
        self._sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, self.port))
        self.port = self._sock.getsockname()[1]
        self._sock.listen(8)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        close_listener(self._sock, self._thread)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _fault(self, conn: socket.socket, stage: str) -> bool:
        """Apply the fault if ``stage`` is the chosen one; True when it was applied."""
        if stage != self.stage:
            return False
        if self.fault == "4xx":
            conn.sendall(b"451 4.3.0 try again later\r\n")
        elif self.fault == "5xx":
            conn.sendall(b"554 5.7.1 no thanks\r\n")
        elif self.fault == "drop":
            conn.close()
        elif self.fault == "badtls":  # says yes to STARTTLS, then speaks no TLS
            conn.sendall(b"220 go ahead\r\n")
            conn.sendall(b"this is not a TLS server hello\r\n" * 4)
            conn.close()
        elif self.fault == "stall":
            self._stop.wait(30)
            conn.close()
        return True

    def _session(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            if self._fault(conn, "greeting"):
                if self.fault in ("4xx", "5xx"):
                    reader.readline()
                return
            conn.sendall(b"220 scripted.test ESMTP\r\n")
            while True:
                line = reader.readline()
                if not line:
                    return
                verb = line.split(b" ", 1)[0].split(b":", 1)[0].upper().strip()
                if verb in (b"EHLO", b"HELO"):
                    self.greetings.append(line.strip())
                    if verb == b"EHLO" and self.fault == "noehlo":
                        conn.sendall(b"502 5.5.1 EHLO not implemented\r\n")
                    elif verb == b"HELO" and self.fault == "noehlo":
                        conn.sendall(b"250 scripted.test\r\n")
                    elif not self._fault(conn, "ehlo"):
                        ext = b"".join(f"250-{e}\r\n".encode() for e in self.extensions)
                        conn.sendall(b"250-scripted.test\r\n" + ext + b"250 HELP\r\n")
                    elif self.fault in ("drop", "stall"):
                        return
                elif verb == b"STARTTLS":
                    if not self._fault(conn, "starttls"):
                        conn.sendall(b"454 TLS not available\r\n")
                    elif self.fault in ("drop", "stall", "badtls"):
                        return
                elif verb == b"AUTH":
                    if not self._fault(conn, "auth"):
                        conn.sendall(b"235 ok\r\n")
                    elif self.fault in ("drop", "stall"):
                        return
                elif verb == b"MAIL":
                    if not self._fault(conn, "mail"):
                        conn.sendall(b"250 ok\r\n")
                    elif self.fault in ("drop", "stall"):
                        return
                elif verb == b"RCPT":
                    if not self._fault(conn, "rcpt"):
                        conn.sendall(b"250 ok\r\n")
                    elif self.fault in ("drop", "stall"):
                        return
                elif verb == b"DATA":
                    if self._fault(conn, "data"):
                        if self.fault in ("drop", "stall"):
                            return
                        continue
                    conn.sendall(b"354 go ahead\r\n")
                    if self.stage == "midbody":  # stop reading in the middle of DATA
                        self._stop.wait(30)
                        return
                    body = b""
                    while True:
                        chunk = reader.readline()
                        if not chunk:
                            return
                        if chunk == b".\r\n":
                            break
                        body += chunk
                    self.bodies.append(body)
                    if not self._fault(conn, "dot"):
                        conn.sendall(b"250 accepted\r\n")
                    elif self.fault in ("drop", "stall"):
                        return
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")
        except OSError:
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass


def tls_contexts() -> tuple[ssl.SSLContext, str]:
    """A server context for localhost/127.0.0.1/relay.test, and the CA file to trust."""
    import tempfile

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1", "::1", "relay.test")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as ca_file:
        ca_file.write(ca.cert_pem.bytes())
    return server, ca_file.name
