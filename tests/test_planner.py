"""The planner against a real DNS server on loopback (dnslib)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from qremote.control.config import load_config
from qremote.planning.dns import DnsLookup
from qremote.planning.planner import plan
from tests.conftest import dnsservers_file
from tests.support.dnsserver import DnsServer

SEED_ROUTES = """# seed routes
route1;;;;
route2;1.1.1.1;2.2.2.2:465;admin;123456
route3;1.1.1.1;mx&3.3.3.3:587;;
route4;1.1.1.1|2.2.2.2;;;
route5;1.1.1.1&2.2.2.2&3.3.3.3&4.4.4.4;mx&6.6.6.6:587;;
"""


@pytest.fixture
def zone_home(make_home, dns_server: DnsServer) -> Path:
    z = dns_server.zone
    z.add("example.com", "MX", (10, "mx1.example.com"))
    z.add("example.com", "MX", (20, "mx2.example.com"))
    z.add("mx1.example.com", "A", "192.0.2.10")
    z.add("mx1.example.com", "A", "192.0.2.11")
    z.add("mx1.example.com", "AAAA", "2001:db8::10")
    z.add("mx2.example.com", "A", "192.0.2.20")
    z.add("implicit.test", "A", "192.0.2.30")
    z.add("nullmx.test", "MX", (0, "."))
    z.add("noaddr.test", "MX", (10, "ghost.noaddr.test"))
    z.add("equal.test", "MX", (10, "a.equal.test"))
    z.add("equal.test", "MX", (10, "b.equal.test"))
    z.add("a.equal.test", "A", "192.0.2.41")
    z.add("b.equal.test", "A", "192.0.2.42")
    z.add("relay.test", "A", "192.0.2.50")
    z.add("rr.test", "A", "192.0.2.60")
    z.servfail.add("broken.test")
    routemap = ("*;example.com;route5\n*;implicit.test;route3\n*;rr.test;route4\n"
                "*;broken.test;route3\n*;v6.test;v6\n*;typo.test;typo\n")
    routes = SEED_ROUTES + "v6;2001:db8::1&1.1.1.1;mx;;\ntypo;;nosuch.relay.test;;\n"
    return make_home(routes=routes, routemap=routemap, dnsservers=dnsservers_file(dns_server))


def _plan(home: Path, host: str, sender: str = "a@b.org", seed: int = 1):
    config = load_config(home)
    assert config.errors == []
    return plan(config, host, sender, [f"x@{host}"], DnsLookup(config.dnsservers),
                random.Random(seed))


def _order(p) -> list[tuple[str | None, str | None, int]]:
    return [(a.local_ip, a.address, a.port) for a in p.attempts]


def test_route5_order_from_the_contract(zone_home: Path) -> None:
    p = _plan(zone_home, "example.com")
    assert p.route_name == "route5" and p.selection.matched == "routemap:1"
    mx = [("192.0.2.10", 25), ("192.0.2.11", 25), ("192.0.2.20", 25)]
    expected = [(ip, a, port) for ip in ("1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4")
                for a, port in mx]
    expected += [(ip, "6.6.6.6", 587) for ip in ("1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4")]
    assert _order(p) == expected
    assert p.attempts[0].remote == "mx1.example.com"


def test_implicit_mx_and_fallback(zone_home: Path) -> None:
    p = _plan(zone_home, "implicit.test")
    assert _order(p) == [("1.1.1.1", "192.0.2.30", 25), ("1.1.1.1", "3.3.3.3", 587)]


def test_null_mx_is_permanent(zone_home: Path) -> None:
    p = _plan(zone_home, "nullmx.test")
    assert p.permanent and p.attempts == [] and "null MX" in p.error


def test_nxdomain_is_permanent(zone_home: Path) -> None:
    p = _plan(zone_home, "nonexistent.test")
    assert p.permanent and "couldn't find any host named nonexistent.test" in p.error


def test_servfail_falls_over_to_the_relay(zone_home: Path) -> None:
    p = _plan(zone_home, "broken.test")
    assert p.error is None and _order(p) == [("1.1.1.1", "3.3.3.3", 587)]
    assert "failed temporarily" in p.notes[0]


def test_mx_without_address_is_temporary(make_home, dns_server: DnsServer) -> None:
    dns_server.zone.add("noaddr.test", "MX", (10, "ghost.noaddr.test"))
    home = make_home(dnsservers=dnsservers_file(dns_server))
    p = _plan(home, "noaddr.test")
    assert p.error and not p.permanent and p.attempts == []


def test_unresolvable_route_host_is_temporary(zone_home: Path) -> None:
    p = _plan(zone_home, "typo.test")
    assert not p.permanent and "nosuch.relay.test" in p.error


def test_ipv6_local_ips_pair_with_their_family(zone_home: Path) -> None:
    p = _plan(zone_home, "v6.test")
    # v6.test has no MX and no address: the route's mx is the domain itself.
    assert p.error
    home = zone_home
    (home / "control" / "routemap").write_text("*;example.com;v6\n*;*;route1\n")
    p = _plan(home, "example.com")
    assert _order(p)[:1] == [("2001:db8::1", "2001:db8::10", 25)]
    assert ("2001:db8::1", "192.0.2.10", 25) not in _order(p)
    assert ("1.1.1.1", "192.0.2.10", 25) in _order(p)


def test_equal_preferences_are_shuffled(zone_home: Path) -> None:
    (zone_home / "control" / "routemap").write_text("*;*;route1\n")
    firsts = {_plan(zone_home, "equal.test", seed=s).attempts[0].address for s in range(20)}
    assert firsts == {"192.0.2.41", "192.0.2.42"}


def test_round_robin_spreads_evenly(zone_home: Path) -> None:
    rng = random.Random(7)
    config = load_config(zone_home)
    lookup = DnsLookup(config.dnsservers)
    starts = Counter(plan(config, "rr.test", "a@b.org", ["x@rr.test"], lookup, rng)
                     .attempts[0].local_ip for _ in range(2000))
    assert set(starts) == {"1.1.1.1", "2.2.2.2"}
    assert abs(starts["1.1.1.1"] - 1000) < 120
    # The other local IP always follows as the fallback.
    p = plan(config, "rr.test", "a@b.org", ["x@rr.test"], lookup, rng)
    assert {a.local_ip for a in p.attempts} == {"1.1.1.1", "2.2.2.2"}


def test_rr_test_without_dns_and_defaults(make_home) -> None:
    home = make_home(defaultoutgoingip="127.0.0.9\n",
                     smtproutes="sub.example.com:[192.0.2.99]:2525\n.example.com:\n")
    config = load_config(home)
    p = plan(config, "sub.example.com", "", ["x@sub.example.com"], None)
    assert p.selection.matched == "smtproutes:1" and p.route_name == "-"
    assert _order(p) == [("127.0.0.9", "192.0.2.99", 2525)]
    p = plan(config, "a.example.com", "", ["x@a.example.com"], None)
    assert p.selection.matched == "smtproutes:2"
    assert [(a.remote, a.address) for a in p.attempts] == [("mx", None)]
    p = plan(config, "other.org", "", ["x@other.org"], None)
    assert p.selection.matched == "default" and p.attempts[0].local_ip == "127.0.0.9"


@pytest.mark.parametrize(("host", "address"), [("[192.0.2.5]", "192.0.2.5"),
                                                ("[IPv6:2001:DB8::5]", "2001:db8::5")])
def test_address_literals(make_home, host: str, address: str) -> None:
    config = load_config(make_home())
    p = plan(config, host, "a@b.org", [f"x@{host}"], DnsLookup([("127.0.0.1", 9)]))
    assert _order(p) == [(None, address, 25)]


@pytest.mark.parametrize("host", ["[not-an-ip]", "[300.1.1.1]", "[]"])
def test_invalid_address_literal_is_permanent(make_home, host: str) -> None:
    config = load_config(make_home())
    p = plan(config, host, "a@b.org", [f"x@{host}"], DnsLookup([("127.0.0.1", 9)]))
    assert p.permanent and p.attempts == [] and p.error.endswith("(#5.1.2)")


def test_config_errors_defer(make_home) -> None:
    config = load_config(make_home(routes="good;;;;\nbad;;;\n", routemap="*;*;good\n"))
    p = plan(config, "x.org", "a@b.org", ["y@x.org"], None)
    assert not p.permanent and "control/routes:2: error" in p.error and "#4.3.0" in p.error
