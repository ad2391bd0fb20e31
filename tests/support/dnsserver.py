"""A real DNS server on loopback (dnslib), answering from a dict zone.

Zone: {name: [(rtype, value), ...]}; rtype "MX" takes (preference, host). A name
listed in ``servfail`` answers SERVFAIL; any other unknown name is NXDOMAIN; a known
name without records of the asked type is NOERROR with no answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dnslib import AAAA, MX, PTR, QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


@dataclass
class Zone:
    """The data the server answers from; tests may change it while the server runs."""

    records: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    servfail: set[str] = field(default_factory=set)
    queries: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, rtype: str, value: Any) -> None:
        self.records.setdefault(_norm(name), []).append((rtype, value))


class _Resolver(BaseResolver):
    def __init__(self, zone: Zone) -> None:
        self.zone = zone

    def resolve(self, request, handler):
        reply = request.reply()
        qname = _norm(str(request.q.qname))
        qtype = QTYPE[request.q.qtype]
        self.zone.queries.append((qname, qtype))
        if qname in self.zone.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if qname not in self.zone.records:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for rtype, value in self.zone.records[qname]:
            if rtype != qtype:
                continue
            if rtype == "A":
                rdata = A(value)
            elif rtype == "AAAA":
                rdata = AAAA(value)
            elif rtype == "MX":
                rdata = MX(value[1] + "." if value[1] != "." else ".", value[0])
            elif rtype == "PTR":
                rdata = PTR(value + ".")
            else:
                continue
            reply.add_answer(RR(qname + ".", QTYPE.reverse[rtype], rdata=rdata, ttl=60))
        return reply


class DnsServer:
    """Start with ``start()``; ``servers`` is the value for control/dnsservers."""

    def __init__(self, zone: Zone | None = None, address: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.zone = zone or Zone()
        self.address = address
        logger = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data",
                           logf=lambda _msg: None)
        self._server = DNSServer(_Resolver(self.zone), address=address, port=port,
                                 logger=logger)

    @property
    def port(self) -> int:
        return self._server.server.server_address[1]

    @property
    def servers(self) -> list[tuple[str, int]]:
        return [(self.address, self.port)]

    def start(self) -> DnsServer:
        self._server.start_thread()
        return self

    def stop(self) -> None:
        self._server.stop()
        self._server.server.server_close()
