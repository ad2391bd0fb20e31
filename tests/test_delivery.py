"""qmail-remote against real SMTP servers on loopback: reports, bytes, TLS, AUTH."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from qremote.delivery.tcpto import Memory
from tests.conftest import dnsservers_file
from tests.support.delivery import FullBacklog, deliver, deliver_process, detail
from tests.support.smtpsink import ScriptedServer, Sink, free_port, tls_contexts

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="binds port 25/465: needs root")


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def tls() -> tuple:
    return tls_contexts()


def relay_home(make_home, port: int, local: str = "127.0.0.2", extra: str = "",
               options: str = "", creds: str = ";", **files: str) -> Path:
    routes = f"relay;{local};127.0.0.1:{port};{creds}{options}\n" + extra
    return make_home(routes=routes, routemap="*;*;relay\n", timeoutconnect="2\n",
                     timeoutremote="5\n", **files)


def test_plain_delivery_with_detail_line(make_home, sink: Sink) -> None:
    home = relay_home(make_home, sink.port)
    out = deliver(home, "example.com", "a@b.org", ["x@example.com"])
    assert out[0] == "r"
    assert out[1].startswith("K127.0.0.1 accepted message.\nRemote host said: 250 2.0.0 ")
    assert detail(out[1]) == {"route": "relay", "local": "127.0.0.2",
                              "remote": f"127.0.0.1:{sink.port}", "tls": "none",
                              "auth": "none"}
    assert sink.received[0].peer == "127.0.0.2"
    assert (sink.received[0].mail_from, sink.received[0].rcpt_tos) == (
        "a@b.org", ["x@example.com"])


def test_message_arrives_byte_exact(make_home, sink: Sink) -> None:
    home = relay_home(make_home, sink.port)
    message = (b"Subject: dots\n\n.leading dot\n..two dots\n.\nbare\rCR\n"
               b"8bit: caf\xc3\xa9 \xff\n" + b"L" * 5000 + b"\nno final newline")
    out = deliver(home, "example.com", "a@b.org", ["x@example.com"], message)
    assert out[-1][0] == "K"
    # A bare CR is a line break on the wire, as in notqmail (SMTP has no bare CR).
    expected = message.replace(b"\r", b"\n").replace(b"\n", b"\r\n") + b"\r\n"
    assert sink.received[0].content == expected
    assert "BODY=8BITMIME" in sink.received[0].mail_options


def test_server_line_limit_is_the_servers_verdict(make_home) -> None:
    sink = Sink(strict_lines=True).start()
    try:
        out = deliver(relay_home(make_home, sink.port), "x.org", "a@b.org", ["y@x.org"],
                      b"Subject: long\n\n" + b"L" * 5000 + b"\n")
        assert out[-1].startswith("D127.0.0.1 failed after I sent the message.\n"
                                  "Remote host said: 500 Line too long")
    finally:
        sink.stop()


def test_recipient_reports_in_argv_order(make_home, sink: Sink) -> None:
    sink.rcpt_replies = {"bad@x.org": "550 5.1.1 no such user",
                         "later@x.org": "450 4.2.0 greylisted"}
    home = relay_home(make_home, sink.port)
    out = deliver(home, "x.org", "a@b.org", ["bad@x.org", "ok@x.org", "later@x.org"])
    assert out[0] == "h127.0.0.1 does not like recipient.\n" \
                     "Remote host said: 550 5.1.1 no such user\n"
    assert out[1] == "r"
    assert out[2].startswith("s127.0.0.1 does not like recipient.\nRemote host said: 450")
    assert out[3][0] == "K" and sink.received[0].rcpt_tos == ["ok@x.org"]
    sink.rcpt_replies = {"bad@x.org": "550 5.1.1 no such user"}
    out = deliver(home, "x.org", "a@b.org", ["bad@x.org"])
    assert out[0][0] == "h" and out[1].startswith("DGiving up on 127.0.0.1.\n")


def test_data_rejection_is_not_k(make_home, sink: Sink) -> None:
    sink.data_reply = "554 5.6.0 content rejected"
    out = deliver(relay_home(make_home, sink.port), "x.org", "a@b.org", ["y@x.org"])
    assert out[-1].startswith("D127.0.0.1 failed after I sent the message.\n"
                              "Remote host said: 554 5.6.0 content rejected\n")
    sink.data_reply = "451 4.3.0 try later"
    out = deliver(relay_home(make_home, sink.port), "x.org", "a@b.org", ["y@x.org"])
    assert out[-1].startswith("Z127.0.0.1 failed after I sent the message.")


def test_local_ip_failover_after_bind_error(make_home, sink: Sink, dns_server) -> None:
    servers = dnsservers_file(dns_server)  # the PTR of 192.0.2.1 gets a quick NXDOMAIN
    home = relay_home(make_home, sink.port, local="192.0.2.1&127.0.0.3", dnsservers=servers)
    out = deliver(home, "x.org", "a@b.org", ["y@x.org"])
    assert out[-1][0] == "K" and detail(out[-1])["local"] == "127.0.0.3"
    home = relay_home(make_home, sink.port, local="192.0.2.1", dnsservers=servers)
    out = deliver(home, "x.org", "a@b.org", ["y@x.org"])
    assert out[-1].startswith("ZSorry, I wasn't able to establish an SMTP connection. "
                              "(#4.4.1)\n")
    assert "cannot bind local IP 192.0.2.1" in out[-1]


def test_remote_failover_refused_then_sink(make_home, sink: Sink) -> None:
    closed = free_port()
    home = make_home(routes=f"r;127.0.0.2;127.0.0.1:{closed}&127.0.0.1:{sink.port};;\n",
                     routemap="*;*;r\n")
    out = deliver(home, "x.org", "a@b.org", ["y@x.org"])
    assert out[-1][0] == "K" and detail(out[-1])["remote"] == f"127.0.0.1:{sink.port}"


def test_connect_timeout_is_remembered(make_home, sink: Sink) -> None:
    full = FullBacklog()
    try:
        home = make_home(routes=f"r;127.0.0.2;127.0.0.1:{full.port}&127.0.0.1:{sink.port};;\n",
                         routemap="*;*;r\n", timeoutconnect="1\n")
        (home / "queue" / "lock").mkdir(parents=True)
        out = deliver(home, "x.org", "a@b.org", ["y@x.org"])
        assert out[-1][0] == "K"
        marked = Memory.for_home(home).read()
        assert list(marked) == [("127.0.0.2", "127.0.0.1", full.port)]
        # The next delivery skips the marked pair: straight to the sink, no timeout.
        out = deliver(home, "x.org", "a@b.org", ["y@x.org"])
        assert out[-1][0] == "K" and len(sink.received) == 2
    finally:
        full.close()


def test_starttls_may_and_verify(make_home, tls: tuple) -> None:
    server_ctx, ca_file = tls
    sink = Sink(starttls=server_ctx).start()
    try:
        home = relay_home(make_home, sink.port)
        out = deliver(home, "x.org", "a@b.org", ["y@x.org"])
        assert detail(out[-1])["tls"].startswith("TLSv1") and sink.received[0].tls
        home = relay_home(make_home, sink.port, options=";tls=verify")
        os.environ["SSL_CERT_FILE"] = ca_file
        try:
            out = deliver(home, "x.org", "a@b.org", ["y@x.org"])
        finally:
            del os.environ["SSL_CERT_FILE"]
        assert out[-1][0] == "K", out
        out = deliver(home, "x.org", "a@b.org", ["y@x.org"])  # CA not trusted now
        assert out[-1][0] == "Z" and "TLS handshake failed" in out[-1]
    finally:
        sink.stop()


def test_tls_encrypt_without_starttls_defers(make_home, sink: Sink) -> None:
    out = deliver(relay_home(make_home, sink.port, options=";tls=encrypt"), "x.org",
                  "a@b.org", ["y@x.org"])
    assert out[-1][0] == "Z" and "does not offer STARTTLS" in out[-1]
    assert sink.received == []


def test_may_falls_back_to_plaintext_after_a_failed_handshake(make_home) -> None:
    server = ScriptedServer("starttls", "badtls",
                            extensions=["STARTTLS", "8BITMIME"]).start()
    try:
        home = relay_home(make_home, server.port)
        out = deliver(home, "x.org", "a@b.org", ["y@x.org"])
        assert out[-1][0] == "K", out
        assert detail(out[-1])["tls"] == "none" and len(server.bodies) == 1
        home = relay_home(make_home, server.port, options=";tls=encrypt")
        out = deliver(home, "x.org", "a@b.org", ["y@x.org"])
        assert out[-1][0] == "Z" and len(server.bodies) == 1
    finally:
        server.stop()


def test_auth_mechanisms(make_home, tls: tuple) -> None:
    server_ctx, _ = tls
    users = {"alice": "s3cret"}
    plain = Sink(users=users).start()
    starttls = Sink(users=users, starttls=server_ctx).start()
    try:
        # In the clear only CRAM-MD5 is allowed, and it is preferred anyway.
        out = deliver(relay_home(make_home, plain.port, creds="alice;s3cret"), "x.org",
                      "a@b.org", ["y@x.org"])
        assert detail(out[-1])["auth"] == "CRAM-MD5" and plain.received[0].auth == "alice"
        # Wrong password: every offered mechanism is tried, then Z, never D.
        out = deliver(relay_home(make_home, plain.port, creds="alice;wrong"), "x.org",
                      "a@b.org", ["y@x.org"])
        assert out[-1][0] == "Z" and "authentication failed" in out[-1]
        # Inside TLS: CRAM-MD5 first; PLAIN and LOGIN are allowed too.
        out = deliver(relay_home(make_home, starttls.port, creds="alice;s3cret"), "x.org",
                      "a@b.org", ["y@x.org"])
        d = detail(out[-1])
        assert out[-1][0] == "K" and d["auth"] == "CRAM-MD5" and d["tls"] != "none"
    finally:
        plain.stop()
        starttls.stop()


def test_credentials_never_in_the_clear(make_home) -> None:
    server = ScriptedServer("none", "none", extensions=["AUTH PLAIN LOGIN"]).start()
    try:
        out = deliver(relay_home(make_home, server.port, creds="alice;s3cret"), "x.org",
                      "a@b.org", ["y@x.org"])
        assert out[-1][0] == "Z" and "credentials travel only inside TLS" in out[-1]
        assert server.bodies == []
    finally:
        server.stop()


def test_size_limit_is_permanent(make_home) -> None:
    sink = Sink(data_size_limit=100).start()
    try:
        out = deliver(relay_home(make_home, sink.port), "x.org", "a@b.org", ["y@x.org"],
                      b"Subject: big\n\n" + b"x" * 500 + b"\n")
        assert out[-1][0] == "D" and "accepts at most 100" in out[-1]
    finally:
        sink.stop()


@root_only
def test_implicit_tls_on_465(make_home, tls: tuple) -> None:
    server_ctx, _ = tls
    sink = Sink(host="127.0.0.21", port=465, implicit=server_ctx,
                users={"admin": "123456"}).start()
    try:
        home = make_home(routes="route2;127.0.0.2;127.0.0.21:465;admin;123456\n",
                         routemap="*;*;route2\n")
        out = deliver(home, "x.org", "a@b.org", ["y@x.org"])
        d = detail(out[-1])
        assert out[-1][0] == "K", out
        assert d["tls"].startswith("TLSv1") and d["remote"] == "127.0.0.21:465"
        assert d["auth"] in ("CRAM-MD5", "PLAIN", "LOGIN")
    finally:
        sink.stop()


def test_process_never_writes_stderr_and_exits_zero(make_home, sink: Sink,
                                                    tmp_path: Path) -> None:
    home = relay_home(make_home, sink.port)
    result = deliver_process(home, ["x.org", "a@b.org", "y@x.org"], b"hi\n")
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout.startswith(b"r\0K127.0.0.1 accepted message.")
    broken = make_home(routes="bad;;;\n", routemap="*;*;bad\n")
    result = deliver_process(broken, ["x.org", "a@b.org", "y@x.org"], b"hi\n")
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout.startswith(b"ZControl files have errors: control/routes:1: error")
    assert result.stdout.endswith(b"route=- local=- remote=- tls=none auth=none\0")
    result = deliver_process(tmp_path / "nowhere", ["x.org", "a@b.org", "y@x.org"], b"hi\n")
    assert (result.returncode, result.stderr) == (0, b"") and result.stdout.startswith(b"Z")
    result = deliver_process(home, ["x.org"], b"")
    assert (result.returncode, result.stdout[:1]) == (0, b"Z")


def test_a_relay_delivery_imports_nothing_it_does_not_need(make_home, sink: Sink) -> None:
    """Start-up cost is the product's cost: a relay route (no DNS, no TLS offered)
    must not load dnspython, ssl, smtplib, email, dataclasses, the console or the
    check/simulate code."""
    import subprocess
    import sys

    from tests.conftest import REPO

    home = relay_home(make_home, sink.port)
    code = ("import sys\n"
            "from qremote.remote import run\n"
            "out = run(['example.com', 'a@b.org', 'x@example.com'], b'Subject: t\\n\\nhi\\n',"
            " sys.argv[1])\n"
            "print(out[:1] if out.startswith(b'r') else out)\n"
            "heavy = ('dns', 'ssl', 'smtplib', 'email', 'dataclasses', 'textual', 'rich',\n"
            "         'qconsole', 'qremote.control.check', 'qremote.planning.simulate',\n"
            "         'qremote.planning.probe')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy\n"
            "             or m.startswith(heavy)))\n")
    done = subprocess.run([sys.executable, "-I", "-c", code, str(home)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines() == ["b'r'", "[]"], done.stdout + done.stderr
    assert len(sink.received) == 1
