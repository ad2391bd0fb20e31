"""The test servers leave no thread blocked in ``accept(2)`` once stopped.

Such a thread outlives its socket and, once any signal restarts its system call (glibc
does that to every thread for a ``seteuid``), accepts on whatever socket has the same
descriptor number by then: a later test's server, whose client then hears the old
server's replies (see :mod:`tests.support.listener`). This once made
``test_many_deliveries_at_once`` see 40 ``K`` reports and 39 messages.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

import pytest

from tests.support.attackworker import RsetRefuser
from tests.support.listener import accept_number, thread_syscalls, wait_for
from tests.support.pausing import PausingServer
from tests.support.smtpsink import ScriptedServer
from tests.test_reuse import RsetKiller
from tests.test_trust import DiscardServer, SlowReader


def _in_accept(number: str, fd: int) -> list[str]:
    """The threads blocked in ``accept`` on descriptor number ``fd``."""
    return [tid for tid, call in thread_syscalls().items()
            if len(call) > 1 and call[0] == number and int(call[1], 16) == fd]


SERVERS: dict[str, tuple[Callable[[], object], str, str]] = {
    # name: (started server, its listening socket's attribute, its stop method)
    "pausing": (lambda: PausingServer().start(), "_sock", "stop"),
    "scripted": (lambda: ScriptedServer("none", "none").start(), "_sock", "stop"),
    "rset-refuser": (RsetRefuser, "sock", "stop"),
    "discard": (DiscardServer, "sock", "stop"),
    "slow-reader": (lambda: SlowReader(0.01), "sock", "stop"),
    "rset-killer": (RsetKiller, "sock", "stop"),
}


@pytest.mark.parametrize("name", SERVERS)
def test_no_thread_stays_in_accept_after_stop(name: str) -> None:
    if not os.path.exists("/proc/self/task"):
        pytest.skip("no /proc here")
    number = accept_number()
    make, attr, stop = SERVERS[name]
    before = thread_syscalls()  # threads another server left in accept are not this one's
    server = make()
    fd = getattr(server, attr).fileno()
    earlier = {tid for tid, call in before.items()
               if len(call) > 1 and call[0] == number and int(call[1], 16) == fd}
    wait_for(lambda: ([t for t in _in_accept(number, fd) if t not in earlier]
                      or [None])[0])  # its own thread waits there
    getattr(server, stop)()
    # what the fix removes: a thread left blocked on the closed descriptor number
    end = time.monotonic() + 5
    while (stale := [t for t in _in_accept(number, fd) if t not in earlier]) \
            and time.monotonic() < end:
        time.sleep(0.01)
    assert stale == [], f"{name}: threads {stale} still in accept on closed fd {fd}"


def test_a_later_server_gets_its_connections_after_a_seteuid() -> None:
    """The consequence, end to end: once a set*id call has interrupted every thread,
    only the later server's own thread may wait in accept on its descriptor number,
    and each connection reaches it."""
    if not os.path.exists("/proc/self/task"):
        pytest.skip("no /proc here")
    number = accept_number()
    before = thread_syscalls()
    old = DiscardServer()
    fd = old.sock.fileno()
    wait_for(lambda: (_in_accept(number, fd) or [None])[0])
    old.stop()
    new = socket.socket()
    try:
        new.bind(("127.0.0.1", 0))
        new.listen(16)
        if new.fileno() != fd:
            pytest.skip("another thread took the descriptor number meanwhile")
        # a thread still in accept on this number: restarted below, it would be on
        # the new socket (and took one of the connections in 3 runs out of 4)
        foreign = [tid for tid in _in_accept(number, fd) if tid not in before]
        assert foreign == [], f"threads {foreign} left in accept on fd {fd}"
        os.seteuid(os.geteuid())  # glibc interrupts every thread (SIGSETXID, SA_RESTART)
        new.settimeout(10)
        for _ in range(5):
            with socket.create_connection(new.getsockname(), timeout=10):
                new.accept()[0].close()
    finally:
        new.close()
