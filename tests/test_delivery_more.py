"""More delivery behaviours: IPv6, HELO fallback, SMTPUTF8, MX through real DNS."""

from __future__ import annotations

import os

import pytest

from tests.conftest import dnsservers_file
from tests.support.delivery import deliver, detail
from tests.support.dnsserver import DnsServer
from tests.support.smtpsink import ScriptedServer, Sink


def test_ipv6_local_and_remote(make_home) -> None:
    sink = Sink(host="::1").start()
    try:
        home = make_home(routes=f"v6;::1;[::1]:{sink.port};;\n", routemap="*;*;v6\n")
        out = deliver(home, "x.org", "a@b.org", ["y@x.org"])
        assert out[-1][0] == "K", out
        d = detail(out[-1])
        assert (d["local"], d["remote"]) == ("::1", f"[::1]:{sink.port}")
    finally:
        sink.stop()


def test_helo_when_ehlo_is_refused(make_home) -> None:
    server = ScriptedServer("none", "noehlo").start()
    try:
        home = make_home(routes=f"r;127.0.0.2;127.0.0.1:{server.port};;\n",
                         routemap="*;*;r\n", helohost="out.example.org\n")
        out = deliver(home, "x.org", "a@b.org", ["y@x.org"])
        assert out[-1][0] == "K"
        assert server.greetings == [b"EHLO out.example.org", b"HELO out.example.org"]
    finally:
        server.stop()


def test_smtputf8(make_home) -> None:
    plain = Sink().start()
    utf8 = Sink(smtputf8=True).start()
    try:
        home = make_home(routes=f"r;127.0.0.2;127.0.0.1:{plain.port}&127.0.0.1:{utf8.port};;\n",
                         routemap="*;*;r\n")
        out = deliver(home, "x.org", "a@b.org", ["jürgen@x.org"])
        assert out[-1][0] == "K" and detail(out[-1])["remote"].endswith(f":{utf8.port}")
        assert "SMTPUTF8" in utf8.received[0].mail_options and plain.received == []
    finally:
        plain.stop()
        utf8.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="binds port 25: needs root")
def test_mx_route_through_real_dns(make_home, dns_server: DnsServer) -> None:
    z = dns_server.zone
    z.add("x.org", "MX", (10, "mx1.x.org"))
    z.add("x.org", "MX", (20, "mx2.x.org"))
    z.add("mx1.x.org", "A", "127.0.0.31")  # nothing listens there: refused
    z.add("mx2.x.org", "A", "127.0.0.32")
    z.add("nomx.test", "A", "127.0.0.32")  # implicit MX
    z.add("nullmx.test", "MX", (0, "."))
    sink = Sink(host="127.0.0.32", port=25).start()
    try:
        home = make_home(routes="r;127.0.0.2;mx;;\n", routemap="*;*;r\n",
                         dnsservers=dnsservers_file(dns_server))
        out = deliver(home, "x.org", "a@b.org", ["y@x.org"])
        assert out[-1][0] == "K" and detail(out[-1])["remote"] == "127.0.0.32:25"
        out = deliver(home, "nomx.test", "a@b.org", ["y@nomx.test"])
        assert out[-1][0] == "K"
        out = deliver(home, "nullmx.test", "a@b.org", ["y@nullmx.test"])
        assert out[-1].startswith("Dnullmx.test does not accept mail (null MX")
        out = deliver(home, "nxdomain.test", "a@b.org", ["y@nxdomain.test"])
        assert out[-1].startswith("DSorry, I couldn't find any host named nxdomain.test.")
        assert len(sink.received) == 2
    finally:
        sink.stop()


def test_stall_in_the_middle_of_data_is_bounded(make_home) -> None:
    import time

    server = ScriptedServer("midbody", "stall").start()
    try:
        home = make_home(routes=f"r;127.0.0.2;127.0.0.1:{server.port};;\n",
                         routemap="*;*;r\n", timeoutremote="1\n")
        start = time.monotonic()
        # Far more than the socket buffers hold: the writes block, then time out.
        out = deliver(home, "x.org", "a@b.org", ["y@x.org"], (b"y" * 998 + b"\n") * 30_000)
        assert time.monotonic() - start < 10
        assert out[-1].startswith("ZConnected to 127.0.0.1 but connection died. (#4.4.2)")
    finally:
        server.stop()


def test_engine_is_reusable_as_a_library(make_home) -> None:
    from qremote.control.config import load_config
    from qremote.delivery.deliver import deliver as engine
    from qremote.delivery.tcpto import Memory

    sink = Sink().start()
    try:
        home = make_home(routes=f"r;127.0.0.2|127.0.0.3;127.0.0.1:{sink.port};;\n",
                         routemap="*;*;r\n")
        config = load_config(home)
        outcomes = [engine(config, "x.org", "a@b.org", [f"u{i}@x.org"], b"m\n", None,
                           Memory(None)) for i in range(6)]
        assert [o.letter for o in outcomes] == ["K"] * 6
        assert [r.rcpt_tos for r in sink.received] == [[f"u{i}@x.org"] for i in range(6)]
    finally:
        sink.stop()


def test_plain_and_login_inside_tls(make_home) -> None:
    from tests.support.smtpsink import tls_contexts

    server_ctx, _ = tls_contexts()
    for mech in ("PLAIN", "LOGIN"):
        sink = Sink(starttls=server_ctx, users={"bob": "pw"},
                    mechanisms=[mech]).start()
        try:
            home = make_home(routes=f"r;127.0.0.2;127.0.0.1:{sink.port};bob;pw\n",
                             routemap="*;*;r\n")
            out = deliver(home, "x.org", "a@b.org", ["y@x.org"])
            assert out[-1][0] == "K", out
            assert detail(out[-1])["auth"] == mech and sink.received[0].auth == "bob"
        finally:
            sink.stop()


def test_tls_none_never_starts_tls(make_home) -> None:
    from tests.support.smtpsink import tls_contexts

    server_ctx, _ = tls_contexts()
    sink = Sink(starttls=server_ctx).start()
    try:
        home = make_home(routes=f"r;127.0.0.2;127.0.0.1:{sink.port};;;tls=none\n",
                         routemap="*;*;r\n")
        out = deliver(home, "x.org", "a@b.org", ["y@x.org"])
        assert out[-1][0] == "K" and detail(out[-1])["tls"] == "none"
        assert not sink.received[0].tls
    finally:
        sink.stop()
