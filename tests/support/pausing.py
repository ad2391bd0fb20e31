"""An SMTP server on loopback that stops at a chosen stage of each session, so a test
can act (kill the worker, send SIGTERM, ask for the status) at that exact point.

Stages: ``mail`` (MAIL FROM read, not answered), ``body`` (354 sent, the first 64 KiB
of the message read, then nothing more is read), ``dot`` (the final dot read, not
answered). A session that reaches the stage counts in :attr:`paused` and waits for
:meth:`release`, then goes on as a plain server; :meth:`stop` ends everything.
"""

from __future__ import annotations

import socket
import threading

from tests.support.listener import close_listener

BODY_PAUSE = 64 * 1024


class PausingServer:
    """A plain SMTP server (250 to everything) that pauses at ``stage`` (or never)."""

    def __init__(self, stage: str | None = None, host: str = "127.0.0.1", port: int = 0,
                 ) -> None:
        self.stage = stage
        self.host = host
        self.port = port
        self.sessions = 0  # connections accepted
        self.messages: list[bytes] = []  # bodies whose final dot was read
        self.accepted = 0  # messages answered 250 after the dot
        self.paused = 0  # sessions that reached the stage
        self._cond = threading.Condition()
        self._released = threading.Event()
        self._stop = threading.Event()

    def start(self) -> PausingServer:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self._sock.bind((self.host, self.port))
        self.port = self._sock.getsockname()[1]
        self._sock.listen(512)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._released.set()
        close_listener(self._sock, self._thread)  # never a later test's connection

    def release(self) -> None:
        """Let every paused session (and every later one) go on."""
        self._released.set()

    def wait_paused(self, n: int = 1, timeout: float = 30) -> None:
        """Wait until ``n`` sessions have reached the stage."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.paused >= n, timeout):
                raise TimeoutError(f"{self.paused} of {n} sessions reached {self.stage}")

    def _pause(self, stage: str) -> bool:
        """At ``stage``: count, wait for release; False when the server stopped."""
        if stage != self.stage:
            return True
        with self._cond:
            self.paused += 1
            self._cond.notify_all()
        self._released.wait(60)
        return not self._stop.is_set()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._cond:
                self.sessions += 1
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            conn.sendall(b"220 pausing.test ESMTP\r\n")
            while line := reader.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-pausing.test\r\n250 8BITMIME\r\n")
                elif verb == b"MAIL":
                    if not self._pause("mail"):
                        return
                    conn.sendall(b"250 ok\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    body, read, paused = [], 0, False
                    while True:
                        chunk = reader.readline()
                        if not chunk:
                            return
                        read += len(chunk)
                        if read >= BODY_PAUSE and not paused:
                            paused = True
                            if not self._pause("body"):
                                return
                        if chunk == b".\r\n":
                            break
                        body.append(chunk)
                    with self._cond:
                        self.messages.append(b"".join(body))
                    if not self._pause("dot"):
                        return
                    conn.sendall(b"250 accepted\r\n")
                    with self._cond:
                        self.accepted += 1
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")
        except OSError:
            return
        finally:
            conn.close()
