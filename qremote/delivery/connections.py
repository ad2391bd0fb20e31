"""The worker's cache of open SMTP connections, for reuse by later deliveries.

A connection is reused only for the same key: local IP, remote address and port, TLS
policy (and implicit TLS), the name its certificate was checked against, the
credentials and the HELO name. Limits, as Postfix's connection cache: a connection
idle longer than ``idle`` seconds is closed; none is reused once older than
``lifetime`` seconds or after ``messages`` deliveries. Each reuse starts with
``RSET`` (pipelined with the next transaction where the server offers PIPELINING),
which also proves the connection is still alive before ``MAIL FROM``.

The in-process qmail-remote has no pool: it says QUIT after its one delivery.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from qremote.delivery.smtp import Client

IDLE = 2.0  # Postfix: smtp_connection_cache_time_limit
LIFETIME = 300.0  # Postfix: smtp_connection_reuse_time_limit
MESSAGES = 100


class Key(NamedTuple):
    """What must be equal for a connection to be reused."""

    local_ip: str | None
    address: str
    port: int
    implicit_tls: bool
    tls: str
    server_name: str | None
    user: str
    password: str
    helo: str
    plain_only: bool

    def destination(self) -> str:
        """``LOCAL -> ADDRESS:PORT`` for status output (no credentials)."""
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.local_ip or '*'} -> {address}:{self.port}"


class Cached:
    """One open, negotiated connection and what its server offered."""

    def __init__(self, client: Client, ehlo: dict[str, str], mech: str, local: str,
                 now: float) -> None:
        self.client = client
        self.ehlo = ehlo
        self.mech = mech
        self.local = local
        self.created = now
        self.used = now
        self.messages = 0


def looks_alive(client: Client) -> bool:
    """An idle SMTP connection has nothing to read: anything there (EOF, a 421 on
    timeout, TLS data) means the server is leaving it."""
    if not client.alive or client.pending:  # a reply nobody asked for: out of step
        return False
    pending = getattr(client.sock, "pending", None)
    if pending is not None and pending():
        return False
    try:
        readable, _, _ = select.select([client.sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def farewell(client: Client) -> None:
    """QUIT without waiting, then close."""
    if client.alive:
        try:
            client.send(b"QUIT\r\n")
        except Exception:  # a connection being thrown away may fail in any way
            pass
    client.close()


class Pool:
    """Idle connections by key; thread-safe. Counts deliveries and reuses."""

    def __init__(self, idle: float = IDLE, lifetime: float = LIFETIME,
                 messages: int = MESSAGES, clock: Callable[[], float] = time.monotonic,
                 ) -> None:
        self.idle = idle
        self.lifetime = lifetime
        self.messages = messages
        self.clock = clock
        self._lock = threading.Lock()
        self._idle: dict[Key, list[Cached]] = {}
        self.created = 0  # counted with count(): many threads
        self.reused = 0
        self.stale = 0
        self.tls_contexts: dict[bool, object] = {}  # made once, for every connection

    def count(self, field: str) -> None:
        """Add one to ``created``, ``reused`` or ``stale``."""
        with self._lock:
            setattr(self, field, getattr(self, field) + 1)

    def configure(self, idle: float, lifetime: float, messages: int) -> None:
        """New limits (the control files changed)."""
        self.idle, self.lifetime, self.messages = idle, lifetime, messages

    def _expired(self, c: Cached, now: float) -> bool:
        return (now - c.used > self.idle or now - c.created > self.lifetime
                or c.messages >= self.messages)

    def take(self, key: Key) -> Cached | None:
        """An idle connection for ``key`` that still looks alive, or None."""
        now = self.clock()
        doomed: list[Cached] = []
        found = None
        with self._lock:
            stack = self._idle.get(key, [])
            while stack:
                c = stack.pop()  # the most recently used first
                if self._expired(c, now) or not looks_alive(c.client):
                    doomed.append(c)
                    continue
                found = c
                break
            if not stack:
                self._idle.pop(key, None)
        for c in doomed:
            farewell(c.client)
        return found

    def give(self, key: Key, cached: Cached) -> None:
        """Keep ``cached`` for a later delivery, or close it if a limit says so."""
        now = self.clock()
        cached.used = now
        cached.messages += 1
        if self.idle <= 0 or self._expired(cached, now) or not cached.client.alive:
            farewell(cached.client)
            return
        with self._lock:
            self._idle.setdefault(key, []).append(cached)

    def reap(self) -> None:
        """Close the idle connections that a limit now excludes."""
        now = self.clock()
        doomed: list[Cached] = []
        with self._lock:
            for key in list(self._idle):
                keep = []
                for c in self._idle[key]:
                    (doomed if self._expired(c, now) else keep).append(c)
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]
        for c in doomed:
            farewell(c.client)

    def close_all(self) -> None:
        """Close every idle connection (the worker is stopping)."""
        with self._lock:
            everything = [c for stack in self._idle.values() for c in stack]
            self._idle.clear()
        for c in everything:
            farewell(c.client)

    def snapshot(self) -> list[dict[str, object]]:
        """The idle connections by destination, for ``qremote status``."""
        now = self.clock()
        with self._lock:
            return [{"destination": key.destination(), "tls": c.client.tls_version or "none",
                     "auth": c.mech, "messages": c.messages,
                     "idle": round(now - c.used, 1), "age": round(now - c.created, 1)}
                    for key, stack in self._idle.items() for c in stack]
