"""The planner: which route a delivery takes, and the ordered connection attempts.

One planner for qmail-remote, ``qremote simulate`` and the console. It is pure: DNS
comes in through a :class:`~qremote.planning.mx.Lookup` and chance (round robin, equal MX
preferences) through a :class:`random.Random`, so tests can pin both.

Order (CONTRACT section 3): for each remote group in turn, for each local IP in turn,
for each address of the group, one attempt. A local IP only pairs with addresses of
its own family.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence
from typing import NamedTuple

from qremote.control.addresses import is_ipv6, parse_ip, sender_domain
from qremote.control.config import Config
from qremote.control.routes import Mode, Remote, Route, TlsPolicy
from qremote.errors import DnsError, LineError
from qremote.planning.mx import CHANCE, Lookup, drop_me, mx_hosts

MX = Remote("mx")


class Attempt(NamedTuple):
    """One connection attempt: from ``local_ip`` (None: the kernel picks) to an address."""

    local_ip: str | None
    remote: str  # the MX host, the route's host or IP, or "mx" when DNS is off
    address: str | None
    port: int
    implicit_tls: bool

    @property
    def server_name(self) -> str | None:
        """The name for SNI and certificate checks: the host name, else the address."""
        return self.remote if self.remote != self.address else self.address

    @property
    def target(self) -> str:
        """``IP:PORT`` (``[IPv6]:PORT``) of the attempt, or the remote name."""
        if self.address is None:
            return f"{self.remote}:{self.port}"
        addr = f"[{self.address}]" if is_ipv6(self.address) else self.address
        return f"{addr}:{self.port}"


class Selection(NamedTuple):
    """What the control files say for one (HOST, sender), before any DNS."""

    route: Route | None
    matched: str  # "routemap:N", "smtproutes:N" or "default"
    local_ips: tuple[str | None, ...]
    local_mode: Mode
    remotes: tuple[Remote, ...]
    remote_mode: Mode
    tls: TlsPolicy
    error: str | None = None


class Plan:
    """The planner's answer for one delivery (one recipient domain)."""

    def __init__(self, host: str, sender: str, recipients: list[str],
                 selection: Selection) -> None:
        self.host = host
        self.sender = sender
        self.recipients = recipients
        self.selection = selection
        self.attempts: list[Attempt] = []
        self.error: str | None = None
        self.permanent = False
        self.notes: list[str] = []

    @property
    def route(self) -> Route | None:
        """The route applied, or None (smtproutes or default)."""
        return self.selection.route

    @property
    def route_name(self) -> str:
        """The route's name, ``-`` when none applied (as in the detail line)."""
        return self.route.name if self.route else "-"


def select(config: Config, host: str, sender: str) -> Selection:
    """Apply routemap, then smtproutes, then the default (MX) to HOST and sender."""
    default_local = (config.defaultoutgoingip,)
    rule = config.routemap.lookup(sender_domain(sender), host)
    if rule is not None:
        route = config.routes.routes.get(rule.route)
        matched = f"routemap:{rule.line}"
        if route is None:
            return Selection(None, matched, default_local, "single", (), "single", "may",
                             error=f"routemap line {rule.line} names route {rule.route!r}, "
                                   "which control/routes does not define")
        local: tuple[str | None, ...] = route.local_ips or default_local
        return Selection(route, matched, local, route.local_mode if route.local_ips
                         else "single", route.remotes, route.remote_mode, route.tls)
    entry = config.smtproutes.lookup(host)
    if entry is not None:
        remotes = (entry.relay,) if entry.relay else (MX,)
        return Selection(None, f"smtproutes:{entry.line}", default_local, "single",
                         remotes, "single", "may")
    return Selection(None, "default", default_local, "single", (MX,), "single", "may")


def address_literal(host: str) -> str:
    """The IP of ``[1.2.3.4]`` or ``[IPv6:2001:db8::1]``; an invalid literal is, as in
    qmail, a host that does not exist (permanent)."""
    inner = host[1:-1]
    if inner[:5].lower() == "ipv6:":
        inner = inner[5:]
    try:
        return parse_ip(inner)
    except LineError:
        raise DnsError(host, f"Sorry, I couldn't find any host named {host}. (#5.1.2)",
                       permanent=True) from None


def rotate(items: Sequence, mode: Mode, rng: random.Random) -> list:
    """Round robin starts at a random item, the others following; else written order."""
    items = list(items)
    if mode != "roundrobin" or len(items) < 2:
        return items
    start = rng.randrange(len(items))
    return items[start:] + items[:start]


def _families(local_ips: Sequence[str | None]) -> tuple[bool, bool]:
    """Which address families (IPv4, IPv6) the local IPs can reach."""
    if any(ip is None for ip in local_ips):
        return True, True
    six = [is_ipv6(ip) for ip in local_ips if ip]
    return (not all(six)), any(six)


def _expand(remote: Remote, host: str, lookup: Lookup | None, families: tuple[bool, bool],
            rng: random.Random, me: Callable[[], Collection[str]] | None,
            ) -> list[tuple[str, str | None, int]]:
    """The (name, address, port) targets of one REMOTES item; raises DnsError."""
    if remote.is_ip:
        return [(remote.host, remote.host, remote.port)]
    if lookup is None:
        return [(remote.host, None, remote.port)]
    if remote.is_mx and host.startswith("[") and host.endswith("]"):
        literal = address_literal(host)
        if me is not None:
            drop_me([(0, literal, literal)], me())
        return [(literal, literal, 25)]
    names = mx_hosts(host, lookup, rng) if remote.is_mx else [(0, remote.host)]
    found: list[tuple[int, str, str]] = []
    failure: DnsError | None = None
    for pref, name in names:
        try:
            found += [(pref, name, a) for a in lookup.addresses(name, *families)]
        except DnsError as exc:
            failure = failure or exc
    if found and remote.is_mx and me is not None:
        found = drop_me(found, me())
    if not found:
        if failure is not None and failure.permanent:
            raise DnsError(failure.name, f"Sorry, I couldn't find any host named "
                                         f"{failure.name}. (#4.4.3)")
        if failure is not None:
            raise failure
        what = f"no mail exchanger of {host}" if remote.is_mx else remote.host
        raise DnsError(names[0][1], f"Sorry, {what} has no address I can connect to. "
                                    "(#4.4.3)")
    return [(name, address, remote.port) for _, name, address in found]


def plan(config: Config, host: str, sender: str, recipients: Sequence[str],
         lookup: Lookup | None, rng: random.Random | None = None,
         me: Callable[[], Collection[str]] | None = None) -> Plan:
    """Plan one delivery. ``lookup`` None means no DNS (``mx`` stays unexpanded).

    ``me`` gives this host's addresses: an ``mx`` expansion drops the exchangers that
    are this host, as qmail does (CONTRACT section 3.6); None skips that rule."""
    rng = rng or CHANCE
    host = host.lower()
    sel = select(config, host, sender)
    result = Plan(host, sender, list(recipients), sel)
    if config.errors:
        # A broken file may hide the rule that should apply: defer rather than guess.
        first = config.errors[0].format()
        more = f" (and {len(config.errors) - 1} more)" if len(config.errors) > 1 else ""
        result.error = f"Control files have errors: {first}{more}. (#4.3.0)"
        return result
    if sel.error:
        result.error = sel.error + ". (#4.3.0)"
        return result
    local_ips = rotate(sel.local_ips, sel.local_mode, rng)
    families = _families(local_ips)
    temp_failures: list[str] = []
    for remote in rotate(sel.remotes, sel.remote_mode, rng):
        try:
            targets = _expand(remote, host, lookup, families, rng, me)
        except DnsError as exc:
            if exc.permanent and not result.attempts:
                # The recipient domain's NXDOMAIN, null MX, or MX that is this host,
                # and no earlier group to try: the answer is final.
                result.error, result.permanent, result.attempts = str(exc), True, []
                return result
            if exc.permanent:  # earlier groups come first (relay&mx): only a note
                result.notes.append(f"{remote}: {exc}")
                continue
            temp_failures.append(str(exc))
            result.notes.append(f"{remote}: {exc}")
            continue
        for local in local_ips:
            for name, address, port in targets:
                if local and address and is_ipv6(local) != is_ipv6(address):
                    continue
                result.attempts.append(Attempt(local, name, address, port,
                                               remote.implicit_tls))
    if not result.attempts:
        result.error = (temp_failures[0] if temp_failures else
                        "no local IP of the same address family as the remote addresses; "
                        "add one to the route's LOCAL_IPS")
    return result


def apply_memory(attempts: list[Attempt], marked: dict[tuple[str, str, int], float],
                 ) -> list[Attempt]:
    """Skip attempts whose connect timed out recently (CONTRACT section 3.5).

    When every attempt is marked they are all tried anyway, oldest failure first."""
    def key(a: Attempt) -> tuple[str, str, int]:
        return (a.local_ip or "*", a.address or a.remote, a.port)

    fresh = [a for a in attempts if key(a) not in marked]
    if fresh or not attempts:
        return fresh
    return sorted(attempts, key=lambda a: marked[key(a)])
