"""Issue 8: the ways mail was lost or forged, each closed, against real servers."""

from __future__ import annotations

import json
import os
import random
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from qremote.control.config import load_config
from qremote.planning.dns import DnsLookup
from qremote.planning.mx import AMBIGUOUS_MX
from qremote.planning.planner import plan
from tests.conftest import REPO, dnsservers_file, run_cli
from tests.support.delivery import deliver, deliver_process, detail, reports
from tests.support.listener import LoopbackServer, close_listener
from tests.support.smtpsink import Sink, tls_contexts


def relay(make_home, port: int, creds: str = ";", options: str = "", **files: str) -> Path:
    return make_home(routes=f"r;127.0.0.2;127.0.0.1:{port};{creds}{options}\n",
                     routemap="*;*;r\n", timeoutconnect="2\n", timeoutremote="5\n", **files)


class DiscardServer(LoopbackServer):
    """Takes any message as fast as it can and throws it away (big-message tests)."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        super().__init__(backlog=4, threaded=False)

    def session(self, conn: socket.socket) -> None:
        conn.sendall(b"220 discard ESMTP\r\n")
        buf = b""
        while True:
            while b"\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            line, _, buf = buf.partition(b"\n")
            verb = line[:4].upper()
            if verb == b"EHLO":
                conn.sendall(b"250-discard\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go\r\n")
                size, tail = 0, buf
                while not tail.endswith(b"\r\n.\r\n") and b"\r\n.\r\n" not in tail[-8:]:
                    chunk = conn.recv(1 << 20)
                    if not chunk:
                        return
                    size += len(chunk)
                    tail = tail[-8:] + chunk
                self.sizes.append(size)
                buf = b""
                conn.sendall(b"250 thrown away\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")


def test_memory_stays_bounded_for_a_big_message(make_home, tmp_path: Path) -> None:
    """A 64 MB queue file: the process's peak RSS stays far below the message size
    (it read it whole, and copied it twice, before)."""
    server = DiscardServer()
    try:
        home = relay(make_home, server.port)
        queue_file = tmp_path / "msg"
        with open(queue_file, "wb") as fh:
            for _ in range(64):
                fh.write((b"x" * 1023 + b"\n") * 1024)
        env = {"QMAIL_HOME": str(home)}
        with open(queue_file, "rb") as stdin:
            done = subprocess.run(
                [sys.executable, "-I", "-c",
                 "import sys\n"
                 "from qremote.remote import run\n"
                 "out = run([b'x.org', b'a@b.org', b'y@x.org'], 0)\n"
                 "status = open('/proc/self/status').read()\n"  # ru_maxrss: the parent's
                 "rss = status.split('VmHWM:')[1].split()[0]\n"
                 "sys.stdout.buffer.write(out + rss.encode())\n"],
                stdin=stdin, capture_output=True, env=env, cwd=REPO, timeout=120)
        out, _, rss_kb = done.stdout.rpartition(b"\0")
        assert out.split(b"\0")[-1].startswith(b"K127.0.0.1 accepted message."), done
        assert server.sizes == [64 * 1024 * 1025 + 3]  # CRLF each line, then .CRLF
        assert int(rss_kb) < 32 * 1024, f"peak RSS {int(rss_kb) // 1024} MB"
    finally:
        server.stop()


class SlowReader:
    """Reads a message steadily but slowly: 64 KiB every ``period`` seconds."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.sock = socket.socket()
        # A small receive window, set before accept: little data waits in buffers.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            reader = conn.makefile("rb", buffering=0)
            conn.sendall(b"220 slow\r\n")
            for reply in (b"250 slow\r\n", b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n"):
                reader.readline()
                conn.sendall(reply)
            tail = b""
            while not tail.endswith(b"\r\n.\r\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    return
                self.received += len(chunk)
                tail = (tail + chunk)[-5:]
                time.sleep(self.period)
            conn.sendall(b"250 got it slowly\r\n")
            reader.readline()

    def stop(self) -> None:
        close_listener(self.sock, self._thread)


def test_a_slow_but_steady_server_receives_any_size(make_home) -> None:
    """timeoutremote bounds each write, not the whole body (it bounded the body)."""
    server = SlowReader(period=0.015)  # about 4 MiB/s
    try:
        home = make_home(routes=f"r;127.0.0.2;127.0.0.1:{server.port};;\n",
                         routemap="*;*;r\n", timeoutremote="2\n")
        # 16 MiB: about 4 s at this rate. Up to 4 MB wait in the kernel's buffers after
        # the last write, so the reply to the dot comes within the 2 s too.
        message = (b"z" * 1023 + b"\n") * 16384
        start = time.monotonic()
        out = deliver(home, "x.org", "a@b.org", ["y@x.org"], message)
        assert time.monotonic() - start > 3  # far more than timeoutremote
        assert out[-1].startswith("K127.0.0.1 accepted message."), out
    finally:
        server.stop()


def test_tls13_client_certificate_refusal_falls_back_to_plaintext(make_home) -> None:
    """A server that wants a client certificate says so after our side of the TLS
    1.3 handshake: the first read fails. Under tls=may that is a failed handshake."""
    server_ctx, _ = tls_contexts()
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_verify_locations(cadata=ssl.get_server_certificate  # any CA will do
                                     and _throwaway_ca())
    sink = Sink(starttls=server_ctx).start()
    try:
        out = deliver(relay(make_home, sink.port), "x.org", "a@b.org", ["y@x.org"])
        assert out[-1][0] == "K", out
        assert detail(out[-1])["tls"] == "none" and not sink.received[0].tls
        assert "Failed attempts:" in out[-1] and "continued in plaintext" in out[-1]
        out = deliver(relay(make_home, sink.port, options=";tls=encrypt"), "x.org",
                      "a@b.org", ["y@x.org"])
        assert out[-1][0] == "Z" and len(sink.received) == 1
    finally:
        sink.stop()


def _throwaway_ca() -> str:
    import trustme

    return trustme.CA().cert_pem.bytes().decode()


def test_credentials_are_never_sent_unauthenticated(make_home) -> None:
    """A route with USER/PASS to a server without AUTH: that attempt fails and the
    next one (here a server with AUTH) takes the message."""
    no_auth = Sink().start()
    with_auth = Sink(users={"u": "pw"}).start()
    try:
        home = make_home(routes=f"r;127.0.0.2;127.0.0.1:{no_auth.port}&"
                                f"127.0.0.1:{with_auth.port};u;pw\n", routemap="*;*;r\n")
        out = deliver(home, "x.org", "a@b.org", ["y@x.org"])
        assert out[-1][0] == "K" and detail(out[-1])["auth"] == "CRAM-MD5"
        assert no_auth.received == [] and len(with_auth.received) == 1
        assert f"127.0.0.1:{no_auth.port} from 127.0.0.2: the route has credentials " \
               "but the server offers no AUTH" in out[-1]
        home = make_home(routes=f"r;127.0.0.2;127.0.0.1:{no_auth.port};u;pw\n",
                         routemap="*;*;r\n")
        out = deliver(home, "x.org", "a@b.org", ["y@x.org"])
        assert out[-1].startswith("ZSorry, I wasn't able to establish an SMTP connection.")
        assert no_auth.received == []
    finally:
        no_auth.stop()
        with_auth.stop()


def test_mx_that_is_this_host(make_home, dns_server) -> None:
    """qmail's ipme rule: 127.0.0.1 is an interface address, 127.0.0.5 is not."""
    z = dns_server.zone
    z.add("best.test", "MX", (10, "me.best.test"))
    z.add("best.test", "MX", (20, "other.best.test"))
    z.add("me.best.test", "A", "127.0.0.1")
    z.add("other.best.test", "A", "127.0.0.5")
    z.add("backup.test", "MX", (10, "primary.backup.test"))
    z.add("backup.test", "MX", (20, "me.best.test"))
    z.add("backup.test", "MX", (30, "third.backup.test"))
    z.add("primary.backup.test", "A", "127.0.0.6")
    z.add("third.backup.test", "A", "127.0.0.7")
    z.add("implicit.test", "A", "127.0.0.1")
    home = make_home(routes="r;;mx;;\n", routemap="*;*;r\n",
                     dnsservers=dnsservers_file(dns_server))
    config = load_config(home)
    me = frozenset({"127.0.0.1", "0.0.0.0"})

    def planned(host: str):
        return plan(config, host, "a@b.org", [f"x@{host}"], DnsLookup(config.dnsservers),
                    random.Random(1), me=lambda: me)

    for host in ("best.test", "implicit.test", "[127.0.0.1]"):
        p = planned(host)
        assert (p.error, p.permanent) == (AMBIGUOUS_MX, True), host
    p = planned("backup.test")  # this host at 20: 20 and 30 dropped
    assert [a.address for a in p.attempts] == ["127.0.0.6"]
    # Through the real engine: this host's own addresses, D with qmail's text.
    out = deliver(home, "best.test", "a@b.org", ["x@best.test"])
    assert out[-1].startswith("D" + AMBIGUOUS_MX), out


def test_absurd_timeouts_are_check_errors_and_a_clear_z(make_home) -> None:
    home = make_home(routes="r;;127.0.0.1:9;;\n", routemap="*;*;r\n",
                     timeoutremote="1" + "0" * 30 + "\n", timeoutconnect="9" * 5000 + "\n")
    result = run_cli("check", home=home)
    assert result.returncode == 1
    assert "control/timeoutremote:1: error:" in result.stdout
    assert "control/timeoutconnect:1: error:" in result.stdout
    done = deliver_process(home, ["x.org", "a@b.org", "y@x.org"], b"hi\n")
    (last,) = reports(done.stdout)
    assert last.startswith("ZControl files have errors: control/timeoutconnect:1: error")
    assert "internal error" not in last and done.stderr == b""


def test_non_utf8_argv_is_delivered_as_bytes(make_home) -> None:
    sink = Sink(smtputf8=True).start()
    try:
        home = relay(make_home, sink.port)
        done = deliver_process(home, [b"x.org", b"\xe9t\xe9@b.org", b"y@x.org"], b"hi\n")
        out = reports(done.stdout)
        assert out[-1].startswith("K127.0.0.1 accepted message."), out
        assert done.stderr == b""
    finally:
        sink.stop()


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_cache_falls_back_to_the_text(make_home, damage: str) -> None:
    home = make_home(routes="a;;127.0.0.1:2525;;\n", routemap="*;*;a\n")
    assert run_cli("check", home=home).returncode == 0
    cache = home / "control" / "routes.cache"
    data = bytearray(cache.read_bytes())
    if damage == "truncate":
        data = data[:len(data) // 2]
    else:
        i = data.index((2525).to_bytes(4, "little"))  # marshal's int: the port
        data[i] ^= 0x01  # 2524: a route that silently changed its port
    st = cache.stat()
    cache.write_bytes(bytes(data))
    os.utime(cache, ns=(st.st_atime_ns, st.st_mtime_ns))
    config = load_config(home, use_cache=True)
    assert config.routes.routes["a"].remotes[0].port == 2525
    assert config.routes.source.exists  # parsed from the text, not the cache


def test_simulate_says_mx_is_me_too(make_home, dns_server) -> None:
    dns_server.zone.add("best.test", "MX", (10, "me.best.test"))
    dns_server.zone.add("me.best.test", "A", "127.0.0.1")
    home = make_home(dnsservers=dnsservers_file(dns_server))
    result = run_cli("simulate", "--json", "a@b.org", "x@best.test", home=home)
    (d,) = json.loads(result.stdout)["deliveries"]
    assert d["error"] == AMBIGUOUS_MX and d["attempts"] == [] and result.returncode == 1


def test_the_detail_line_tells_the_truth_about_tls(make_home) -> None:
    """Issue 9: TLS was up when the last attempt failed (AUTH refused inside TLS):
    the detail line says so, and the failed attempt is named."""
    server_ctx, _ = tls_contexts()
    sink = Sink(starttls=server_ctx, users={"u": "right"}).start()
    try:
        home = relay(make_home, sink.port, creds="u;wrong")
        out = deliver(home, "x.org", "a@b.org", ["y@x.org"])
        assert out[-1].startswith("ZSorry, I wasn't able to establish an SMTP connection.")
        lines = out[-1].split("\n")
        assert lines[-2].startswith(f"Failed attempts: 127.0.0.1:{sink.port} from "
                                    "127.0.0.2: authentication failed: AUTH CRAM-MD5: 535")
        assert detail(out[-1])["tls"].startswith("TLSv1")
        assert "wrong" not in out[-1]
    finally:
        sink.stop()
