"""The routes parser: the seed's examples, every malformed case, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qremote.control.routes import Remote, Route, format_route, parse_route, route_from_fields
from qremote.errors import FieldError, LineError


def test_seed_examples() -> None:
    r1 = parse_route("route1;;;;")
    assert r1.local_ips == () and r1.remotes == (Remote("mx"),) and not r1.auth
    assert r1.tls == "may"
    r2 = parse_route("route2;1.1.1.1;2.2.2.2:465;admin;123456")
    assert r2.local_ips == ("1.1.1.1",)
    assert r2.remotes == (Remote("2.2.2.2", 465, True),)
    assert r2.remotes[0].implicit_tls
    assert (r2.user, r2.password) == ("admin", "123456")
    r3 = parse_route("route3;1.1.1.1;mx&3.3.3.3:587;;")
    assert r3.remotes == (Remote("mx"), Remote("3.3.3.3", 587, True))
    assert r3.remote_mode == "failover"
    r4 = parse_route("route4;1.1.1.1|2.2.2.2;;;")
    assert r4.local_ips == ("1.1.1.1", "2.2.2.2") and r4.local_mode == "roundrobin"
    r5 = parse_route("route5;1.1.1.1&2.2.2.2&3.3.3.3&4.4.4.4;mx&6.6.6.6:587;;")
    assert r5.local_mode == "failover" and len(r5.local_ips) == 4


def test_ipv6_hosts_options() -> None:
    r = parse_route("v6;2001:db8::1&::1;[2001:db8::25]:2525|relay.Example.NET;u;p;tls=verify")
    assert r.local_ips == ("2001:db8::1", "::1")
    assert r.remotes == (Remote("2001:db8::25", 2525, True), Remote("relay.example.net"))
    assert r.remote_mode == "roundrobin" and r.tls == "verify"


@pytest.mark.parametrize(("line", "message"), [
    ("r;;;", "expected 5 or 6 fields"),
    ("r;;;;;;", "expected 5 or 6 fields"),
    (";;;;", "empty route name"),
    ("my_route;;;;", "letters, digits and '-'"),
    ("r;1.1.1.1&2.2.2.2|3.3.3.3;;;", "mixes '&' and '|'"),
    ("r;;mx&a.example|b.example;;", "mixes '&' and '|'"),
    ("r;1.1.1.1&&2.2.2.2;;;", "empty item"),
    ("r;1.1.1.1&;;;", "empty item"),
    ("r;256.1.1.1;;;", "not a valid IPv4 address"),
    ("r;1.1.1;;;", "not a valid IPv4 address"),
    ("r;mail.example.com;;;", "not an IPv4 or IPv6 address"),
    ("r;1.1.1.1&1.1.1.1;;;", "listed twice"),
    ("r;;mx|relay.example.net;;", "'mx' cannot be part of a '|'"),
    ("r;;relay.example.net:0;;", "out of range"),
    ("r;;relay.example.net:65536;;", "out of range"),
    ("r;;relay.example.net:smtp;;", "is not a number"),
    ("r;;2001:db8::1;;", "IPv6 address in brackets"),
    ("r;;[2001:db8::1;;", "missing ']'"),
    ("r;;999.1.1.1:25;;", "not a valid IPv4 address"),
    ("r;;bad_host!;;", "not a valid host name"),
    ("r;;mx&mx;;", "same remote twice"),
    ("r;;;admin;", "PASS is empty"),
    ("r;;;;secret", "USER is empty"),
    ("r;;;;;tls=maybe", "not one of none, may, encrypt, verify"),
    ("r;;;;;color=blue", "OPTIONS item 1 is not a known option"),
    ("r;;;;;tls", "not key=value"),
    ("r;;;;;tls=may,tls=none", "given twice"),
])
def test_malformed(line: str, message: str) -> None:
    with pytest.raises(LineError, match=None) as info:
        parse_route(line)
    assert message in str(info.value)


ips4 = st.ip_addresses(v=4).map(str)
ips6 = st.ip_addresses(v=6).map(str)
hosts = st.from_regex(r"\A[a-z][a-z0-9-]{0,10}[a-z0-9](\.[a-z]{2,6}){1,2}\Z")
ports = st.integers(min_value=1, max_value=65535)
remote = st.one_of(
    st.builds(lambda h, p: Remote(h, p, False), hosts, ports),
    st.builds(lambda h, p: Remote(h, p, True), ips4 | ips6, ports),
)


@st.composite
def routes(draw: st.DrawFn) -> Route:
    local = tuple(draw(st.lists(ips4 | ips6, max_size=4, unique=True)))
    local_mode = draw(st.sampled_from(["failover", "roundrobin"])) if len(local) > 1 \
        else "single"
    remote_mode = draw(st.sampled_from(["single", "failover", "roundrobin"]))
    items = draw(st.lists(remote, min_size=1, max_size=4, unique=True))
    if remote_mode == "failover" and draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), Remote("mx"))
    if remote_mode == "single" or len(items) == 1:
        items, remote_mode = items[:1], "single"
    cred = draw(st.booleans())
    user = draw(st.from_regex(r"\A[a-z0-9@.]{1,12}\Z")) if cred else ""
    password = draw(st.from_regex(r"\A[!-:<-~]{1,12}\Z")) if cred else ""
    return Route(draw(st.from_regex(r"\A[A-Za-z0-9-]{1,20}\Z")), local, local_mode,
                 tuple(items), remote_mode, user, password,
                 draw(st.sampled_from(["none", "may", "encrypt", "verify"])))


@given(routes())
def test_format_then_parse_is_identity(route: Route) -> None:
    assert parse_route(format_route(route)) == route


@pytest.mark.parametrize(("values", "field", "text"), [
    (("r 1", "", "", "", "", "may"), "name", "letters, digits"),
    (("r", "1.2.3", "", "", "", "may"), "local_ips", "not a valid IPv4"),
    (("r", "", "mx|relay.test", "", "", "may"), "remotes", "round-robin"),
    (("r", "", "", "u", "", "may"), "password", "PASS is empty"),
    (("r", "", "", "", "p", "may"), "user", "USER is empty"),
    (("r", "", "", "", "", "maybe"), "tls", "not one of"),
    (("r", "", "", "a;b", "p", "may"), "user", "';'"),
])
def test_route_from_fields_names_the_field(values, field, text) -> None:
    with pytest.raises(FieldError) as info:
        route_from_fields(*values)
    assert info.value.field == field and text in str(info.value)


def test_route_from_fields_equals_the_line_parser() -> None:
    route = route_from_fields("r", "127.0.0.2|127.0.0.3", "mx&relay.test:587", "u", "p",
                              "verify")
    assert route == parse_route("r;127.0.0.2|127.0.0.3;mx&relay.test:587;u;p;tls=verify")


def test_credentials_with_control_characters_are_refused_without_echo() -> None:
    import pytest

    from qremote.control.routes import parse_route
    from qremote.errors import LineError

    for line in ("r;;;us\x1ber;pw", "r;;;user;p\x07w-secret", "r;;;user;pw\x7fx"):
        with pytest.raises(LineError) as err:
            parse_route(line)
        assert "control character" in str(err.value)
        assert "secret" not in str(err.value) and "\x1b" not in str(err.value)
