"""Raw-socket servers whose whole behaviour is one function, for attack tests.

:class:`RawServer` listens on a loopback address and runs ``handler(conn, stop)`` in a
thread for each connection; the handler does anything a hostile peer could (trickle
bytes, answer out of step, refuse TLS) and should return once ``stop`` is set, which
:meth:`RawServer.stop` does before closing every connection. The connection is
closed when the handler returns. Lines the handlers read
are recorded in :attr:`RawServer.lines`.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable

from tests.support.listener import close_listener

Handler = Callable[[socket.socket, threading.Event, list[bytes]], None]


class RawServer:
    """A TCP listener on ``host``:``port`` (a free port when 0) serving ``handler``."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.stopped = threading.Event()
        self.lines: list[bytes] = []
        self._conns: list[socket.socket] = []
        self._listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """End every handler and close every socket."""
        self.stopped.set()
        close_listener(self._listener, self._thread)
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        self._thread.join(timeout=2)

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                ready, _, _ = select.select([self._listener], [], [], 0.05)
                if not ready:
                    continue
                conn, _ = self._listener.accept()
            except (OSError, ValueError):
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handler(conn, self.stopped, self.lines)
        except OSError:
            pass
        finally:
            conn.close()  # a handler that returns hangs up


def read_line(conn: socket.socket, stopped: threading.Event, lines: list[bytes]) -> bytes:
    """One command line (b"" at end of stream or on stop), recorded in ``lines``.

    Reads a byte at a time: nothing the client pipelined is lost between calls."""
    line = b""
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([conn], [], [], 0.05)
        if stopped.is_set():
            return b""
        if not ready:
            continue
        byte = conn.recv(1)
        if not byte:
            return b""
        line += byte
    lines.append(line)
    return line
