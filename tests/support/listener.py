"""Closing a test server's listening socket so that no thread of it can accept again.

``close()`` alone does not wake a thread blocked in ``accept(2)`` on that socket: the
thread stays in the kernel, and the descriptor number is free for the next socket the
test process opens, often a later test's server. Any signal handled with
``SA_RESTART`` then restarts that ``accept(2)`` with the same number, on the new
socket: glibc interrupts every thread that way for any set*id call (``seteuid`` in a
test), and a stop and continue of the process does as well. The stale thread then
serves one connection of the later test with the old server's script (a stale
``250`` to the final dot: a ``K`` for a message the later test's server never saw).
A thread between its Python ``accept()`` and the system call meets the same number.

:func:`close_listener` shuts the socket down first (a blocked ``accept(2)`` fails at
once, and so does one about to start), waits for the accepting thread to end, and only
then closes, releasing the number.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def close_listener(sock: socket.socket, thread: threading.Thread | None = None,
                   timeout: float = 10) -> None:
    """Shut ``sock`` down, wait for ``thread`` (the one accepting on it), then close.

    A thread still alive after ``timeout`` seconds is serving a session of its own
    (a server that serves in its accepting thread); back at ``accept()`` it finds the
    socket closed."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not listening (never started, or already closed)
    if thread is not None and thread is not threading.current_thread() \
            and thread.ident is not None:
        thread.join(timeout)
    sock.close()


def thread_syscalls(pid: int | str = "self") -> dict[str, list[str]]:
    """Each thread of process ``pid``: its system call and arguments as ``/proc`` shows
    them (``["running"]`` when on a CPU), for the threads that could be read."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/syscall") as fh:
                out[tid] = fh.read().split()
        except OSError:
            pass
    return out


def wait_for(found: Callable[[], T | None], timeout: float = 10,
             what: str = "the state waited for") -> T:
    """Poll ``found`` until it gives a value (a thread's state in ``/proc`` has no
    event to wait on)."""
    end = time.monotonic() + timeout
    while (value := found()) is None:
        if time.monotonic() > end:
            raise TimeoutError(f"never reached {what}")
        time.sleep(0.01)
    return value


def accept_number() -> str:
    """The number of the system call a blocking ``accept()`` waits in, on this
    machine (asked of a thread blocked in it: accept4 or accept, by architecture)."""
    probe = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=lambda: probe.accept()[0].close(), daemon=True)
    thread.start()
    try:
        return wait_for(lambda: next((call[0] for tid, call in thread_syscalls().items()
                                      if tid == str(thread.native_id) and len(call) > 1
                                      and int(call[1], 16) == probe.fileno()), None),
                        what="a thread blocked in accept")
    finally:
        socket.create_connection(probe.getsockname()).close()
        thread.join(10)
        probe.close()


class LoopbackServer:
    """A raw test server on 127.0.0.1, a free port: a thread accepts, and each
    connection is served by :meth:`session` (in a thread of its own, or in the accepting
    thread when ``threaded`` is false), then closed; :meth:`stop` closes the listener
    with :func:`close_listener` and waits for the sessions."""

    def __init__(self, backlog: int = 8, threaded: bool = True,
                 rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:  # set before accept: the accepted sockets inherit it
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._threaded = threaded
        self._sessions: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def session(self, conn: socket.socket) -> None:
        """Serve one connection (the subclass's dialogue)."""
        raise NotImplementedError

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            if not self._threaded:
                self._run(conn)
                continue
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
            thread.start()
            self._sessions.append(thread)

    def _run(self, conn: socket.socket) -> None:
        try:
            self.session(conn)
        except OSError:
            pass  # the client left
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop accepting; wait (a while) for the sessions to end."""
        close_listener(self.sock, self._thread)
        for thread in self._sessions:
            thread.join(timeout=5)
