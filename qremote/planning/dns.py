"""DNS through dnspython: the real :class:`~qremote.planning.mx.Lookup`.

dnspython is imported on first use only, so a delivery whose route needs no DNS
never pays for it. Servers come from ``control/dnsservers`` when given, else from
``/etc/resolv.conf``. NXDOMAIN is permanent; everything else that fails is temporary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from qremote.errors import DnsError

LIFETIME = 30.0
TIMEOUT = 5.0
PTR_LIFETIME = 3.0  # a HELO name is not worth holding a delivery longer
CACHE_SIZE = 50_000  # answers a long-lived process keeps (each for its TTL)


class Answers:
    """The answers a long-lived process has had (records, or none of the type), each
    kept until the expiration dnspython gave it (its smallest TTL): as long as
    dnspython's own cache would serve it, without dnspython's work for each query
    (name parsing, cache keys, an answer object: most of a cached lookup's cost).
    Failures are not kept here (dnspython's cache decides, as before). Thread-safe."""

    def __init__(self, size: int = CACHE_SIZE,
                 clock: Callable[[], float] = time.time) -> None:
        self.size = size
        self.clock = clock  # dnspython's expirations are time.time() values
        self._kept: dict[tuple[str, str], tuple[list[Any], float]] = {}

    def get(self, key: tuple[str, str]) -> list[Any] | None:
        """The records kept for ``key`` (name in lower case, type), unless expired."""
        kept = self._kept.get(key)
        if kept is None or kept[1] <= self.clock():
            return None
        return kept[0]

    def put(self, key: tuple[str, str], records: list[Any], expiration: float) -> None:
        """Keep ``records`` until ``expiration``; bounded: forged names must not grow
        it for ever (dnspython's cache still has what is dropped)."""
        if len(self._kept) >= self.size:
            self._kept.clear()
        self._kept[key] = (records, expiration)


class DnsLookup:
    """Resolver with a per-instance cache; one instance per delivery or simulation
    (a long-lived process gives each one the same resolver, made with ``cached``: its
    answers are then kept for their TTL by dnspython's cache)."""

    def __init__(self, servers: list[tuple[str, int]] | None = None,
                 lifetime: float = LIFETIME, resolver: Any = None,
                 cached: bool = False, answers: Answers | None = None) -> None:
        self._servers = servers or []
        self._answers = answers  # a long-lived process's, shared (with its resolver)
        self._lifetime = lifetime
        self._resolver: Any = resolver  # a long-lived process shares one (its cache)
        self._cached = cached  # a new resolver keeps answers for their TTL
        self._cache: dict[tuple[str, str], Any] = {}

    def _get_resolver(self) -> Any:
        if self._resolver is None:
            import dns.nameserver
            import dns.resolver

            if self._servers:
                res = dns.resolver.Resolver(configure=False)
                res.nameservers = [dns.nameserver.Do53Nameserver(ip, port)
                                   for ip, port in self._servers]
            else:
                try:
                    res = dns.resolver.Resolver()
                except dns.resolver.NoResolverConfiguration:
                    raise DnsError("", "no DNS server: /etc/resolv.conf lists none; "
                                       "write one in control/dnsservers") from None
            res.lifetime = self._lifetime
            res.timeout = min(TIMEOUT, self._lifetime)
            if self._cached:  # bounded: forged sender domains must not grow it for ever
                res.cache = dns.resolver.LRUCache(CACHE_SIZE)
            self._resolver = res
        return self._resolver

    @property
    def used(self) -> bool:
        """True once a resolver was made (a query was asked)."""
        return self._resolver is not None

    @property
    def resolver(self) -> Any:
        """The resolver this lookup made or was given (None before the first query),
        for a long-lived process to give to the next lookups."""
        return self._resolver

    def _query(self, name: str, rdtype: str, lifetime: float | None = None) -> list[Any]:
        """Records of ``rdtype`` for ``name``; [] when none; raises DnsError."""
        key = (name.lower(), rdtype)
        if key in self._cache:
            cached = self._cache[key]
            if isinstance(cached, DnsError):
                raise cached
            return cached
        if self._answers is not None and (kept := self._answers.get(key)) is not None:
            self._cache[key] = kept
            return kept
        import dns.exception
        import dns.name
        import dns.resolver

        try:
            answer = self._get_resolver().resolve(name, rdtype, search=False,
                                                  raise_on_no_answer=False,
                                                  lifetime=lifetime)
            records = list(answer.rrset) if answer.rrset is not None else []
        except dns.resolver.NXDOMAIN:
            err = DnsError(name, f"Sorry, I couldn't find any host named {name}. (#5.1.2)",
                           permanent=True)
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            err = DnsError(name, f"DNS lookup of {name} ({rdtype}) failed temporarily: "
                                 f"{_short(exc)} (#4.4.3)")
        except (dns.name.LabelTooLong, dns.name.EmptyLabel, dns.name.NameTooLong,
                UnicodeError) as exc:
            err = DnsError(name, f"{name} is not a valid domain name: {_short(exc)} (#5.1.2)",
                           permanent=True)
        except dns.exception.DNSException as exc:
            err = DnsError(name, f"DNS lookup of {name} ({rdtype}) failed: {_short(exc)} "
                                 "(#4.4.3)")
        else:
            self._cache[key] = records
            if self._answers is not None:
                self._answers.put(key, records, answer.expiration)
            return records
        self._cache[key] = err
        raise err

    def mx(self, domain: str) -> list[tuple[int, str]] | None:
        """MX records of ``domain``; None when it has none (implicit MX)."""
        records = self._query(domain, "MX")
        if not records:
            return None
        return [(r.preference, r.exchange.to_text(omit_final_dot=True)) for r in records]

    def addresses(self, host: str, ipv4: bool = True, ipv6: bool = True) -> list[str]:
        """IPv4 then IPv6 addresses of ``host``.

        A temporary failure of one family is tolerated when the other answers."""
        out: list[str] = []
        failure: DnsError | None = None
        for rdtype, wanted in (("A", ipv4), ("AAAA", ipv6)):
            if not wanted:
                continue
            try:
                out += [r.address for r in self._query(host, rdtype)]
            except DnsError as exc:
                if exc.permanent:
                    raise
                failure = failure or exc
        if not out and failure is not None:
            raise failure
        return out

    def ptr(self, address: str) -> str | None:
        """The first PTR name of ``address``, or None on any failure."""
        import dns.reversename

        try:
            records = self._query(dns.reversename.from_address(address).to_text(), "PTR",
                                  lifetime=min(PTR_LIFETIME, self._lifetime))
        except DnsError:
            return None
        return records[0].target.to_text(omit_final_dot=True) if records else None


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
