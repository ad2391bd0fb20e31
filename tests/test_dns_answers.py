"""The answers a warm engine keeps in front of dnspython: served only while
dnspython's cache would serve them (until their TTL runs out), failures never kept,
and a change of DNS servers starts afresh."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from qremote.delivery.engine import Engine
from qremote.errors import DnsError
from qremote.planning.dns import Answers, DnsLookup
from tests.support.dnsserver import DnsServer

TTL = 60  # the test server's


def test_an_answer_is_kept_until_its_ttl_runs_out(dns_server: DnsServer) -> None:
    dns_server.zone.add("x.org", "MX", (10, "mx1.x.org"))
    dns_server.zone.add("mx1.x.org", "A", "127.0.0.7")
    later = [0.0]
    answers = Answers(clock=lambda: time.time() + later[0])
    first = DnsLookup(dns_server.servers, answers=answers)
    assert first.mx("x.org") == [(10, "mx1.x.org")]
    assert first.addresses("mx1.x.org") == ["127.0.0.7"]
    asked = len(dns_server.zone.queries)
    assert asked == 3  # MX, A, AAAA (none: kept too)
    dns_server.zone.records["x.org"] = [("MX", (20, "mx2.x.org"))]
    second = DnsLookup(dns_server.servers, answers=answers)  # another delivery
    assert second.mx("x.org") == [(10, "mx1.x.org")]
    assert second.addresses("mx1.x.org") == ["127.0.0.7"]
    assert len(dns_server.zone.queries) == asked  # nothing asked
    later[0] = TTL + 1
    third = DnsLookup(dns_server.servers, answers=answers)
    assert third.mx("x.org") == [(20, "mx2.x.org")]
    assert len(dns_server.zone.queries) == asked + 1


def test_a_failure_is_not_kept(dns_server: DnsServer) -> None:
    answers = Answers()
    for _ in range(2):
        lookup = DnsLookup(dns_server.servers, answers=answers)
        try:
            lookup.mx("nowhere.example")
        except DnsError as exc:
            assert exc.permanent
        else:
            raise AssertionError("NXDOMAIN expected")
        assert answers.get(("nowhere.example", "MX")) is None
    assert dns_server.zone.queries.count(("nowhere.example", "MX")) == 2


def test_other_dns_servers_start_with_no_answers(
        make_home: Callable[..., Path], dns_server: DnsServer) -> None:
    home = make_home(dnsservers=f"127.0.0.1:{dns_server.port}\n")
    engine = Engine(home, warm=True)
    engine.config()
    kept = engine.answers()
    assert engine.answers() is kept
    (home / "control" / "dnsservers").write_text(f"127.0.0.2:{dns_server.port}\n")
    engine.config()
    assert engine.answers() is not kept
