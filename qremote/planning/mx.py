"""Mail-exchanger logic, apart from DNS I/O: which hosts to try, in which order.

``mx_hosts`` asks a :class:`Lookup` (any object with the three methods below) and
applies RFC 5321 section 5.1: MX by preference, equal preferences in random order,
the domain itself when it has no MX (implicit MX), and RFC 7505 null MX.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from typing import Protocol

from qremote.errors import DnsError

# One generator for every delivery of a process (seeding one from os.urandom per
# delivery costs more than the choices it makes).
CHANCE = random.Random()


class Lookup(Protocol):
    """What the planner needs from DNS; :class:`qremote.planning.dns.DnsLookup` is the real one."""

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


def order_mx(records: list[tuple[int, str]], rng: random.Random | None = None,
             ) -> list[tuple[int, str]]:
    """(preference, host) sorted by preference; equal preferences in random order."""
    rng = rng or CHANCE
    keyed = [(pref, rng.random(), host.rstrip(".").lower()) for pref, host in records]
    seen: set[str] = set()
    out: list[tuple[int, str]] = []
    for pref, _, host in sorted(keyed):
        if host not in seen:
            seen.add(host)
            out.append((pref, host))
    return out


def is_null_mx(records: list[tuple[int, str]]) -> bool:
    """True when the records say "no mail" (an exchange of ``.``)."""
    return any(host in (".", "") for _, host in records)


def mx_hosts(domain: str, lookup: Lookup, rng: random.Random | None = None,
             ) -> list[tuple[int, str]]:
    """(preference, host) to try for ``domain``, best first; the domain itself at
    preference 0 when it has no MX (implicit MX, as qmail's dns_mxip).

    Raises :class:`NullMx` (permanent) or DnsError from the lookup."""
    records = lookup.mx(domain)
    if records is None or not records:
        return [(0, domain.lower())]
    if is_null_mx(records):
        raise NullMx(domain, f"{domain} does not accept mail (null MX, RFC 7505). (#5.1.2)",
                     permanent=True)
    return order_mx(records, rng)



AMBIGUOUS_MX = ("Sorry. Although I'm listed as a best-preference MX or A for that host,\n"
                "it isn't in my control/locals file, so I don't treat it as local. (#5.4.6)")


def is_me(address: str, me: Collection[str]) -> bool:
    """``address`` is one of ``me``, an IPv4-mapped IPv6 address by its IPv4 form."""
    if address in me:
        return True
    if address.startswith("::ffff:") or address.startswith("::FFFF:"):
        import ipaddress

        mapped = ipaddress.IPv6Address(address).ipv4_mapped
        return mapped is not None and str(mapped) in me
    return False


def drop_me(targets: list[tuple[int, str, str]], me: Collection[str],
            ) -> list[tuple[int, str, str]]:
    """qmail's rule for an MX that is this host: every (preference, host, address)
    whose preference is not better than the best one that is an address of this host
    is dropped. Raises a permanent DnsError when nothing is left (#5.4.6)."""
    mine = [pref for pref, _, address in targets if is_me(address, me)]
    if not mine:
        return targets
    kept = [t for t in targets if t[0] < min(mine)]
    if not kept:
        raise DnsError("", AMBIGUOUS_MX, permanent=True)
    return kept
