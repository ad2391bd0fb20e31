"""The delivery engine as an object: one qmail home, one delivery per call.

``qmail-remote`` makes one :class:`Engine` per process and calls :meth:`Engine.deliver`
once. The worker keeps one ``warm`` engine for its whole life and calls it from many
threads: the parsed configuration is then kept, and read again only when a control
file changes (size, mtime or inode), so a long-lived process never delivers with a
stale configuration and never needs a restart; DNS answers are kept for their TTL
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

from qremote.control.config import FILES, Config, load_config
from qremote.delivery.report import Outcome

if TYPE_CHECKING:
    from qremote.delivery.connections import Pool

Stamp = tuple[tuple[str, int, int, int, int], ...]


# A file changed less than this long ago may change again within its mtime's
# granularity (a second on some file systems) without its stamp changing: such a
# stamp is not trusted, and the next delivery reads the files again (as git does).
RACY_NS = 2_000_000_000


def control_stamp(home: Path) -> tuple[Stamp, int]:
    """(name, size, mtime_ns, ctime_ns, inode) of every control file the engine reads,
    and the newest of those times."""
    out = []
    newest = 0
    for name in (*FILES, "routes.cache"):
        try:
            st = os.stat(f"{home}/control/{name}")  # no pathlib: 4x cheaper per delivery
        except OSError:
            out.append((name, -1, -1, -1, -1))
        else:
            out.append((name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
            newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    return tuple(out), newest


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
        self._lock = threading.Lock()
        self._config: Config | None = None
        self._stamp: Stamp | None = None
        self._me: tuple[float, frozenset[str]] | None = None

    def config(self) -> Config:
        """The parsed configuration, read again when a control file changed."""
        stamp, newest = control_stamp(self.home)
        with self._lock:
            if self._config is None or stamp != self._stamp:
                servers = None if self._config is None else self._config.dnsservers
                self._config = load_config(self.home, use_cache=True)
                if self._config.dnsservers != servers:
                    self._resolver = None  # other DNS servers: another cache
                # ctime changes with any write, whatever mtime says (cp -p, touch -r)
                racy = time.time_ns() - newest < RACY_NS
                self._stamp = None if racy else stamp
                if self.pool is not None:
                    self.pool.configure(*self._config.reuse)
            return self._config

    def local_addresses(self) -> frozenset[str]:
        """This host's addresses (for "an MX that is me"), looked up at most once a
        minute."""
        from qremote.planning import ipme

        now = time.monotonic()
        with self._lock:
            if self._me is None or now - self._me[0] > 60:
                self._me = (now, ipme.addresses())
            return self._me[1]

    def deliver(self, argv: Sequence[str | bytes], message: bytes | int,
                progress: Callable[[str], None] | None = None) -> bytes:
        """The reports (bytes for qmail-rspawn) of one delivery.

        ``argv`` is qmail-remote's (HOST SENDER RECIP...); ``message`` the message
        itself or a file descriptor to read it from (the queue file, or a pipe);
        ``progress`` hears each stage of the delivery (for ``qremote status``)."""
        if len(argv) < 3:
            return Outcome(letter="Z", text="qmail-remote needs HOST SENDER RECIP... "
                                             "(#4.3.0)\n").encode()
        if not (self.home / "control").is_dir():
            return Outcome(letter="Z", text=f"qmail home {self.home} has no control "
                                             "directory; set QMAIL_HOME. (#4.3.0)\n").encode()
        from qremote.delivery.deliver import deliver
        from qremote.delivery.message import Message, MessageError
        from qremote.delivery.tcpto import Memory
        from qremote.planning.dns import DnsLookup

        try:
            source = Message(data=message) if isinstance(message, bytes) else \
                Message.from_fd(message)
        except MessageError as exc:
            return Outcome(letter="Z", text=f"Unable to read message: {exc.strerror}. "
                                             "(#4.3.0)\n").encode()
        try:
            config = self.config()
            host, sender = _text(argv[0]), _text(argv[1])
            recipients = [_text(a) for a in argv[2:]]
            warm = self.pool is not None
            lookup = DnsLookup(config.dnsservers, resolver=self._resolver, cached=warm)
            outcome = deliver(config, host, sender, recipients, source, lookup,
                              Memory.for_home(self.home), me=self.local_addresses,
                              pool=self.pool, progress=progress)
            if warm and self._resolver is None and lookup.used:
                self._resolver = lookup.resolver
        except MessageError as exc:
            outcome = Outcome(letter="Z", text=f"Unable to read message: {exc.strerror}. "
                                                "(#4.3.0)\n")
        finally:
            source.close()
        return outcome.encode()
