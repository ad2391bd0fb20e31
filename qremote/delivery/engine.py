"""The delivery engine as an object: one qmail home, one delivery per call.

``qmail-remote`` makes one :class:`Engine` per process and calls :meth:`Engine.deliver`
once. The worker keeps one ``warm`` engine for its whole life and calls it from many
threads: the parsed configuration is then kept, and read again only when a control
file changes (its :mod:`~qremote.control.stamp`), so a long-lived process never
delivers with a stale configuration and never needs a restart; the failover memory is
kept and read again only when its file changes; DNS answers are kept for their TTL
(dnspython's cache), TLS contexts are made once, and open connections are kept for
later deliveries (:class:`~qremote.delivery.connections.Pool`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qremote.control.config import Config, load_config
from qremote.control.stamp import RACY_NS, Stamp, Stamper
from qremote.delivery.report import Outcome

if TYPE_CHECKING:
    from qremote.delivery.connections import Pool
    from qremote.delivery.tcpto import Memory
    from qremote.planning.dns import Answers


def _text(arg: str | bytes) -> str:
    """An argv item as text; bytes that are not UTF-8 survive (surrogateescape)."""
    return os.fsdecode(arg) if isinstance(arg, bytes) else arg


class Engine:
    """Deliveries for the qmail home ``home``; thread-safe."""

    def __init__(self, home: Path, warm: bool = False) -> None:
        self.home = home
        self.pool: Pool | None = None
        if warm:
            from qremote.delivery.connections import Pool

            self.pool = Pool()
        self._resolver: Any = None  # warm: one resolver and its cache for every lookup
        self._answers: Answers | None = None  # warm: and the answers it gave, kept
        self._lock = threading.Lock()
        self._config: Config | None = None
        self._stamp: Stamp | None = None
        self._fresh: tuple[Stamp, Config] | None = None  # a trusted stamp, its config
        self._stamper = Stamper(home)
        self._memory: Memory | None = None  # warm: the failover memory, kept
        self._me: tuple[float, frozenset[str]] | None = None

    def config(self, taken: tuple[Stamp, int] | None = None) -> Config:
        """The parsed configuration, read again when a control file changed.

        ``taken``: the stamp of the control files, when the caller has just taken it."""
        stamp, newest = taken or self._stamper.take() or ((), 0)
        fresh = self._fresh  # read once: a pair never torn by another thread's reload
        if fresh is not None and fresh[0] == stamp:
            return fresh[1]  # no lock: 200 threads at once would queue on it
        with self._lock:
            if self._config is None or stamp != self._stamp:
                servers = None if self._config is None else self._config.dnsservers
                self._config = load_config(self.home, use_cache=True)
                if self._config.dnsservers != servers:
                    self._resolver = None  # other DNS servers: another cache
                    self._answers = None
                # ctime changes with any write, whatever mtime says (cp -p, touch -r)
                racy = time.time_ns() - newest < RACY_NS
                self._stamp = None if racy else stamp
                if self.pool is not None:
                    self.pool.configure(*self._config.reuse)
                self._fresh = None if racy else (stamp, self._config)
            return self._config

    def local_addresses(self) -> frozenset[str]:
        """This host's addresses (for "an MX that is me"), looked up at most once a
        minute."""
        from qremote.planning import ipme

        now = time.monotonic()
        me = self._me
        if me is not None and now - me[0] <= 60:
            return me[1]
        with self._lock:
            if self._me is None or now - self._me[0] > 60:
                self._me = (now, ipme.addresses())
            return self._me[1]

    def answers(self) -> Answers:
        """The DNS answers kept for the current DNS servers (a warm engine's)."""
        from qremote.planning.dns import Answers

        answers = self._answers
        if answers is not None:
            return answers
        with self._lock:
            if self._answers is None:
                self._answers = Answers()
            return self._answers

    def memory(self) -> Memory:
        """The failover memory; a warm engine keeps one, which reads the file again
        only when it changed."""
        from qremote.delivery.tcpto import Memory

        if self.pool is None:
            return Memory.for_home(self.home)
        if self._memory is None:
            self._memory = Memory.for_home(self.home, cached=True)
        return self._memory

    def deliver(self, argv: Sequence[str | bytes], message: bytes | int,
                progress: Callable[[str], None] | None = None) -> bytes:
        """The reports (bytes for qmail-rspawn) of one delivery.

        ``argv`` is qmail-remote's (HOST SENDER RECIP...); ``message`` the message
        itself or a file descriptor to read it from (the queue file, or a pipe);
        ``progress`` hears each stage of the delivery (for ``qremote status``)."""
        if len(argv) < 3:
            return Outcome(letter="Z", text="qmail-remote needs HOST SENDER RECIP... "
                                             "(#4.3.0)\n").encode()
        taken = self._stamper.take()
        if taken is None:
            return Outcome(letter="Z", text=f"qmail home {self.home} has no control "
                                             "directory; set QMAIL_HOME. (#4.3.0)\n").encode()
        from qremote.delivery.deliver import deliver
        from qremote.delivery.message import Message, MessageError
        from qremote.planning.dns import DnsLookup

        try:
            source = Message(data=message) if isinstance(message, bytes) else \
                Message.from_fd(message)
        except MessageError as exc:
            return Outcome(letter="Z", text=f"Unable to read message: {exc.strerror}. "
                                             "(#4.3.0)\n").encode()
        try:
            config = self.config(taken)
            host, sender = _text(argv[0]), _text(argv[1])
            recipients = [_text(a) for a in argv[2:]]
            warm = self.pool is not None
            lookup = DnsLookup(config.dnsservers, resolver=self._resolver, cached=warm,
                               answers=self.answers() if warm else None)
            outcome = deliver(config, host, sender, recipients, source, lookup,
                              self.memory(), me=self.local_addresses,
                              pool=self.pool, progress=progress)
            if warm and self._resolver is None and lookup.used:
                self._resolver = lookup.resolver
        except MessageError as exc:
            outcome = Outcome(letter="Z", text=f"Unable to read message: {exc.strerror}. "
                                                "(#4.3.0)\n")
        finally:
            source.close()
        return outcome.encode()
