"""A raw-socket SMTP server whose every reply is scripted, for the differential tests.

:class:`ScriptedSmtp` listens on a free port of a loopback address and serves each
connection in its own thread. Each stage of the dialogue gets an action:

================  =========================================  ========================
stage             when                                       default
================  =========================================  ========================
``greeting``      at once, after the connection is accepted  ``220 scripted.test ...``
``ehlo``          each ``EHLO`` line                         ``250-`` + extensions
``helo``          each ``HELO`` line                         ``250 scripted.test``
``mail``          each ``MAIL`` line                         ``250 ok``
``rcpt``          each ``RCPT`` line                         ``250 ok``
``data``          each ``DATA`` line                         ``354 go ahead``
``dot``           after the final ``.`` of a message         ``250 ok``
``quit``          each ``QUIT`` line                         ``221 bye``, then close
``auth``          each ``AUTH`` line, and each line that     ``235 2.7.0 ok``
                  answers a ``334``
================  =========================================  ========================

An action is one of:

- ``bytes``: sent exactly as given (several lines, NUL bytes, non-ASCII, no CRLF at
  all: whatever the test needs);
- :data:`DROP`: the connection is closed at once;
- :data:`STALL`: nothing more is ever sent; the server keeps reading (and recording)
  what arrives until the client closes or :meth:`ScriptedSmtp.stop` is called;
- :class:`Act`: a reply followed by ``then`` (``"drop"`` or ``"stall"``), e.g. a reply
  without its CRLF and then a close;
- a list of the above: the n-th occurrence of the stage in a session gets the n-th
  item, the last item repeating (one reply per recipient, say).

A ``354`` reply to ``DATA`` switches to reading the message up to the CRLF ``.`` CRLF
that ends it (RFC 5321: only a ``.`` line that follows a CRLF ends the data); any other
reply to ``DATA`` leaves the server in command mode, where each further line is read
as a command (unknown ones get ``500``). As a real server does with pipelined
commands, ``RCPT`` gets ``503`` when no ``MAIL`` was accepted, and ``DATA`` gets
``554`` when no ``RCPT`` of the transaction was (a reply counts as accepting unless it
is a 4xx or 5xx: these are the scripted server's own rules, not the client's).

``BDAT SIZE [LAST]`` (CHUNKING, RFC 3030, when a test offers it) reads exactly SIZE
bytes; the reply to the ``LAST`` chunk is the ``dot`` stage's action, and the chunks
of a transaction together are recorded as its message.

The message can be read at full speed (default), at a steady limited rate
(``read_rate=(bytes, seconds)``: at most that many bytes each period), or the server
can stop reading after ``stop_reading_after`` bytes of the message and hold the
connection, reading nothing, until stopped.

Everything received is recorded per session (:class:`Session`): every command line as
raw bytes (CRLF included) and every message exactly as it came on the wire (dot
stuffing included, without the final ``.`` CRLF). Lines are read one by one from the
session's own buffer, so pipelined commands (several in one packet) are answered in
order, one reply each.

``stop()`` never hangs: stalls and holds wait on an Event that it sets, and every open
connection is shut down.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.support.listener import close_listener

DROP = "drop"
STALL = "stall"

TERMINATOR = b"\r\n.\r\n"


@dataclass(frozen=True)
class Act:
    """A reply, then what the server does next: ``continue``, ``drop`` or ``stall``."""

    reply: bytes = b""
    then: str = "continue"


Action = bytes | str | Act
Script = Action | Sequence[Action]


def _as_act(action: Action) -> Act:
    if isinstance(action, Act):
        return action
    if isinstance(action, bytes | bytearray):
        return Act(bytes(action))
    if action in (DROP, STALL):
        return Act(b"", action)
    raise ValueError(f"unknown action {action!r}")


@dataclass
class Session:
    """What one connection brought: command lines, messages, how it ended."""

    peer: tuple[str, int]
    commands: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    cut_body: bytes | None = None  # a message the client stopped sending midway
    after_stall: bytes = b""  # what arrived while the server said nothing
    pending_chunks: bytes = b""  # BDAT chunks of the transaction so far
    ended: bool = False

    def verbs(self) -> list[bytes]:
        """The command verbs in order (``EHLO``, ``MAIL``, ...), upper case."""
        return [c.split(b" ", 1)[0].split(b":", 1)[0].strip().upper()
                for c in self.commands]

    def lines(self, verb: bytes) -> list[bytes]:
        """The raw command lines of one verb (e.g. ``b"RCPT"``)."""
        return [c for c, v in zip(self.commands, self.verbs(), strict=True) if v == verb]


class _Closed(Exception):
    """The session is over (the peer closed, the server dropped, or stop())."""


class _Conn:
    """A socket with its own read buffer: lines or raw chunks, never both lost."""

    def __init__(self, sock: socket.socket, stopped: threading.Event) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.stopped = stopped

    def _fill(self, size: int = 65536) -> bool:
        """Read more into the buffer; False at end of stream."""
        while not self.stopped.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = self.sock.recv(size)
            except OSError:
                return False
            if not chunk:
                return False
            self.buf += chunk
            return True
        return False

    def readline(self) -> bytes:
        """One line with its LF, or what is left at end of stream (b"" if nothing)."""
        while b"\n" not in self.buf:
            if not self._fill():
                rest = bytes(self.buf)
                self.buf.clear()
                return rest
        end = self.buf.index(b"\n") + 1
        line = bytes(self.buf[:end])
        del self.buf[:end]
        return line

    def read_some(self, size: int) -> bytes:
        """Up to ``size`` bytes (buffered ones first); b"" at end of stream."""
        if not self.buf and not self._fill(size):
            return b""
        out = bytes(self.buf[:size])
        del self.buf[:size]
        return out

    def unread(self, data: bytes) -> None:
        self.buf[:0] = data

    def send(self, data: bytes) -> None:
        if data:
            try:
                self.sock.sendall(data)
            except OSError:
                raise _Closed from None


class ScriptedSmtp:
    """A scripted SMTP server on ``host`` (a loopback address) and a free port.

    Use as a context manager, or call :meth:`start` and :meth:`stop`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 greeting: Script = b"220 scripted.test ESMTP\r\n",
                 ehlo: Script | None = None,
                 helo: Script = b"250 scripted.test\r\n",
                 mail: Script = b"250 ok\r\n",
                 rcpt: Script = b"250 ok\r\n",
                 data: Script = b"354 go ahead\r\n",
                 dot: Script = b"250 ok\r\n",
                 quit: Script = b"221 bye\r\n",
                 auth: Script = b"235 2.7.0 ok\r\n",
                 extensions: Sequence[str] = ("PIPELINING", "8BITMIME", "SMTPUTF8"),
                 read_rate: tuple[int, float] | None = None,
                 stop_reading_after: int | None = None,
                 rcvbuf: int | None = None) -> None:
        if ehlo is None:
            ehlo = b"".join([b"250-scripted.test\r\n",
                             *(f"250-{e}\r\n".encode() for e in extensions),
                             b"250 HELP\r\n"])
        self.host, self.port = host, port
        self.script: dict[str, Script] = {
            "greeting": greeting, "ehlo": ehlo, "helo": helo, "mail": mail,
            "rcpt": rcpt, "data": data, "dot": dot, "quit": quit, "auth": auth}
        self.read_rate = read_rate
        self.stop_reading_after = stop_reading_after
        self.rcvbuf = rcvbuf
        self.sessions: list[Session] = []
        self._stopped = threading.Event()
        self._lock = threading.Condition()
        self._active = 0  # sessions neither ended nor holding
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> ScriptedSmtp:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.rcvbuf:  # inherited by accepted sockets; also stops autotuning
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        self._listener.bind((self.host, self.port))
        self.port = self._listener.getsockname()[1]
        self._listener.listen(16)
        thread = threading.Thread(target=self._accept_loop, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving: stalls and holds end, open connections are shut down."""
        self._stopped.set()
        close_listener(self._listener, self._threads[0] if self._threads else None)
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self) -> ScriptedSmtp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_idle(self, timeout: float = 10) -> bool:
        """Wait until every session has ended (or holds, reading nothing); True if so.

        A client that has exited has closed its side: its session ends as soon as the
        server has read and recorded everything it sent."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def reset(self) -> list[Session]:
        """The sessions so far (after :meth:`wait_idle`), forgotten by the server."""
        self.wait_idle()
        with self._lock:
            sessions, self.sessions = self.sessions, []
        return sessions

    # -- convenience views ------------------------------------------------------------

    @property
    def commands(self) -> list[bytes]:
        """Every command line of every session, in order."""
        return [c for s in self.sessions for c in s.commands]

    @property
    def bodies(self) -> list[bytes]:
        """Every complete message of every session, in order."""
        return [b for s in self.sessions for b in s.bodies]

    # -- serving ----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:  # close() does not wake a blocked accept(): poll instead
                ready, _, _ = select.select([self._listener], [], [], 0.05)
                if not ready:
                    continue
                sock, peer = self._listener.accept()
            except (OSError, ValueError):
                return
            session = Session(peer=peer[:2])
            with self._lock:
                if self._stopped.is_set():
                    sock.close()
                    return
                self.sessions.append(session)
                self._socks.append(sock)
                self._active += 1
            thread = threading.Thread(target=self._serve, args=(sock, session),
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def _set_active(self, delta: int) -> None:
        with self._lock:
            self._active += delta
            self._lock.notify_all()

    def _serve(self, sock: socket.socket, session: Session) -> None:
        conn = _Conn(sock, self._stopped)
        counts: dict[str, int] = {}
        holding = False
        try:
            self._dialogue(conn, session, counts)
        except _Closed:
            pass
        except _Hold:
            holding = True
            self._set_active(-1)
            self._stopped.wait()
        finally:
            session.ended = True
            try:
                sock.close()
            except OSError:
                pass
            if not holding:
                self._set_active(-1)

    def _act(self, conn: _Conn, session: Session, stage: str,
             counts: dict[str, int]) -> bytes:
        """Apply the stage's action; returns the reply sent (raises _Closed at a drop
        or at the end of a stall)."""
        script = self.script[stage]
        n = counts.get(stage, 0)
        counts[stage] = n + 1
        if isinstance(script, Sequence) and not isinstance(script, bytes | str):
            action = script[min(n, len(script) - 1)]
        else:
            action = script
        act = _as_act(action)
        conn.send(act.reply)
        if act.then == DROP:
            raise _Closed
        if act.then == STALL:
            while True:  # say nothing; record what arrives until the client gives up
                more = conn.read_some(65536)
                if not more:
                    raise _Closed
                session.after_stall += more
        return act.reply

    def _dialogue(self, conn: _Conn, session: Session, counts: dict[str, int]) -> None:
        self._act(conn, session, "greeting", counts)
        mail_ok, accepted = False, 0
        sasl = False  # the last reply was a 334: the next line answers it
        while True:
            line = conn.readline()
            if not line:
                raise _Closed
            session.commands.append(line)
            if not line.endswith(b"\n"):
                raise _Closed  # a partial command line, then end of stream
            verb = line.split(b" ", 1)[0].split(b":", 1)[0].strip().upper()
            if sasl or verb == b"AUTH":
                sasl = self._act(conn, session, "auth", counts).startswith(b"334")
            elif verb == b"EHLO":
                self._act(conn, session, "ehlo", counts)
            elif verb == b"HELO":
                self._act(conn, session, "helo", counts)
            elif verb == b"MAIL":
                accepted = 0
                reply = self._act(conn, session, "mail", counts)
                mail_ok = reply[:1] not in (b"4", b"5")
            elif verb == b"RCPT":
                if not mail_ok:
                    conn.send(b"503 5.5.1 MAIL first\r\n")
                    continue
                reply = self._act(conn, session, "rcpt", counts)
                accepted += reply[:1] not in (b"4", b"5")
            elif verb == b"DATA":
                if not accepted:
                    conn.send(b"554 5.5.1 no valid recipients\r\n")
                    continue
                reply = self._act(conn, session, "data", counts)
                if reply.startswith(b"354"):
                    session.bodies.append(self._message(conn, session))
                    mail_ok, accepted = False, 0
                    self._act(conn, session, "dot", counts)
            elif verb == b"BDAT":
                self._bdat(conn, session, counts, line, accepted)
                if line.upper().rstrip().endswith(b"LAST"):
                    mail_ok, accepted = False, 0
            elif verb == b"QUIT":
                self._act(conn, session, "quit", counts)
                raise _Closed
            elif verb in (b"RSET", b"NOOP"):
                if verb == b"RSET":
                    mail_ok, accepted = False, 0
                conn.send(b"250 ok\r\n")
            else:
                conn.send(b"500 5.5.1 unrecognized command\r\n")

    def _bdat(self, conn: _Conn, session: Session, counts: dict[str, int], line: bytes,
              accepted: int) -> None:
        """``BDAT SIZE [LAST]`` (RFC 3030): exactly SIZE bytes follow. The reply to the
        LAST chunk is the ``dot`` stage's (the final reply of the transaction)."""
        words = line.split()
        size = int(words[1])
        chunk = b""
        while len(chunk) < size:
            more = conn.read_some(size - len(chunk))
            if not more:
                session.cut_body = session.pending_chunks + chunk
                raise _Closed
            chunk += more
        session.pending_chunks += chunk
        if not accepted:
            session.pending_chunks = b""
            conn.send(b"554 5.5.1 no valid recipients\r\n")
        elif len(words) > 2 and words[2].upper() == b"LAST":
            session.bodies.append(session.pending_chunks)
            session.pending_chunks = b""
            self._act(conn, session, "dot", counts)
        else:
            conn.send(b"250 2.0.0 chunk received\r\n")

    def _message(self, conn: _Conn, session: Session) -> bytes:
        """The message as sent, up to (not including) the final ``.`` CRLF."""
        if self.read_rate is None and self.stop_reading_after is None:
            lines: list[bytes] = []
            while True:
                line = conn.readline()
                if line == b".\r\n" and (not lines or lines[-1].endswith(b"\r\n")):
                    return b"".join(lines)
                if not line.endswith(b"\n"):
                    session.cut_body = b"".join(lines) + line
                    raise _Closed
                lines.append(line)
        data = bytearray()
        per, period = self.read_rate or (65536, 0.0)
        next_tick = time.monotonic()
        while True:
            if self.stop_reading_after is not None and len(data) >= self.stop_reading_after:
                session.cut_body = bytes(data)
                raise _Hold
            want = per
            if self.stop_reading_after is not None:
                want = min(want, self.stop_reading_after - len(data))
            got = 0
            while got < want:
                chunk = conn.read_some(want - got)
                if not chunk:
                    session.cut_body = bytes(data)
                    raise _Closed
                start = max(0, len(data) - len(TERMINATOR))
                data += chunk
                got += len(chunk)
                end = _find_end(data, start)
                if end is not None:
                    conn.unread(bytes(data[end + 3:]))
                    return bytes(data[:end])
            if period:
                next_tick += period
                delay = next_tick - time.monotonic()
                if delay > 0 and self._stopped.wait(delay):
                    raise _Closed


class _Hold(Exception):
    """Stop reading and hold the connection open until stop()."""


def _find_end(data: bytearray, start: int) -> int | None:
    """Where the final ``.`` CRLF starts in ``data`` (searching from ``start``)."""
    if data.startswith(b".\r\n"):
        return 0
    i = data.find(TERMINATOR, start)
    return None if i < 0 else i + 2
