"""Mail-exchanger logic, apart from DNS I/O: which hosts to try, in which order.

``mx_hosts`` asks a :class:`Lookup` (any object with the three methods below) and
applies RFC 5321 section 5.1: MX by preference, equal preferences in random order,
the domain itself when it has no MX (implicit MX), and RFC 7505 null MX.
"""

from __future__ import annotations

import random
from typing import Protocol

from qremote.errors import DnsError


class Lookup(Protocol):
    """What the planner needs from DNS; :class:`qremote.dns.DnsLookup` is the real one."""

    def mx(self, domain: str) -> list[tuple[int, str]] | None:
        """MX records as (preference, host); None when the domain has none.

        Raises DnsError (permanent for NXDOMAIN)."""
        ...

    def addresses(self, host: str, ipv4: bool = True, ipv6: bool = True) -> list[str]:
        """A then AAAA addresses of ``host``; raises DnsError."""
        ...

    def ptr(self, address: str) -> str | None:
        """The PTR name of ``address``, or None."""
        ...


class NullMx(DnsError):
    """The domain publishes a null MX (RFC 7505): it accepts no mail."""


def order_mx(records: list[tuple[int, str]], rng: random.Random | None = None) -> list[str]:
    """Hosts sorted by preference; hosts of equal preference in random order."""
    rng = rng or random.Random()
    keyed = [(pref, rng.random(), host.rstrip(".").lower()) for pref, host in records]
    seen: set[str] = set()
    out: list[str] = []
    for _, _, host in sorted(keyed):
        if host not in seen:
            seen.add(host)
            out.append(host)
    return out


def is_null_mx(records: list[tuple[int, str]]) -> bool:
    """True when the records say "no mail" (an exchange of ``.``)."""
    return any(host in (".", "") for _, host in records)


def mx_hosts(domain: str, lookup: Lookup, rng: random.Random | None = None) -> list[str]:
    """The hosts to try for ``domain``, best first.

    Raises :class:`NullMx` (permanent) or DnsError from the lookup."""
    records = lookup.mx(domain)
    if records is None or not records:
        return [domain.lower()]
    if is_null_mx(records):
        raise NullMx(domain, f"{domain} does not accept mail (null MX, RFC 7505). (#5.1.2)",
                     permanent=True)
    return order_mx(records, rng)

