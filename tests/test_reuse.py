"""The worker's engine: connections kept and reused, RSET, limits, dead connections."""

from __future__ import annotations

import socket
from pathlib import Path

from qremote.delivery.connections import Pool
from qremote.delivery.engine import Engine
from tests.support.delivery import detail, reports
from tests.support.listener import LoopbackServer
from tests.support.smtpsink import Sink


def _home(make_home, port: int, **files: str) -> Path:
    return make_home(routes=f"r;127.0.0.2;127.0.0.1:{port};;\n", routemap="*;*;r\n",
                     timeoutremote="5\n", **files)


def _send(engine: Engine, n: int) -> list[str]:
    return [reports(engine.deliver([b"x.org", b"a@b.org", f"u{i}@x.org".encode()],
                                   b"Subject: t\n\nhi\n"))[-1] for i in range(n)]


def test_one_connection_many_messages(make_home) -> None:
    sink = Sink(pipelining=True).start()
    try:
        engine = Engine(_home(make_home, sink.port), warm=True)
        outs = _send(engine, 5)
        assert [o[0] for o in outs] == ["K"] * 5
        assert sink.ehlos == 1 and len(sink.received) == 5  # seen by the server
        assert [r.rcpt_tos for r in sink.received] == [[f"u{i}@x.org"] for i in range(5)]
        assert engine.pool is not None and (engine.pool.created, engine.pool.reused) == (1, 4)
        assert {detail(o)["remote"] for o in outs} == {f"127.0.0.1:{sink.port}"}
        # The in-process path keeps nothing: one connection each.
        cold = Engine(_home(make_home, sink.port))
        _send(cold, 2)
        assert sink.ehlos == 3
    finally:
        sink.stop()


def test_limits_from_control_files(make_home) -> None:
    sink = Sink().start()
    try:
        home = _home(make_home, sink.port, reusemessages="2\n")
        engine = Engine(home, warm=True)
        _send(engine, 5)
        assert sink.ehlos == 3  # 2 + 2 + 1 messages
        (home / "control" / "reuseidle").write_text("0\n")  # picked up at once
        _send(engine, 2)
        assert sink.ehlos == 5
    finally:
        sink.stop()


def test_a_server_that_closed_the_idle_connection(make_home) -> None:
    """aiosmtpd drops a connection idle for more than its timeout: the cached one is
    found dead before MAIL FROM and replaced, the delivery does not fail."""
    sink = Sink(timeout=0.3).start()
    try:
        engine = Engine(_home(make_home, sink.port, reuseidle="60\n"), warm=True)
        assert _send(engine, 1)[0][0] == "K"
        assert engine.pool is not None
        (cached,) = [c for stack in engine.pool._idle.values() for c in stack]
        assert _peer_closes(cached.client.sock, within=10)
        out = _send(engine, 1)[0]
        assert out[0] == "K" and "Failed attempts" not in out
        assert sink.ehlos == 2 and len(sink.received) == 2
    finally:
        sink.stop()


def _peer_closes(sock: socket.socket, within: float) -> bool:
    """Wait until the server's side of ``sock`` has something (its close) to read."""
    import select

    return bool(select.select([sock], [], [], within)[0])


class RsetKiller(LoopbackServer):
    """Answers one transaction, then closes on RSET without a reply: a connection
    that looks alive in the cache but dies at its reuse."""

    def __init__(self) -> None:
        self.messages = 0
        super().__init__(backlog=4)

    def session(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        conn.sendall(b"220 rset-killer\r\n")
        while line := reader.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                conn.sendall(b"250-killer\r\n250 PIPELINING\r\n")
            elif verb == b"RSET":
                return  # gone, without a word
            elif verb == b"DATA":
                conn.sendall(b"354 go\r\n")
                while reader.readline() not in (b".\r\n", b""):
                    pass
                self.messages += 1
                conn.sendall(b"250 ok\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")


def test_a_cached_connection_dead_at_rset_is_replaced(make_home) -> None:
    server = RsetKiller()
    try:
        engine = Engine(_home(make_home, server.port, reuseidle="60\n"), warm=True)
        outs = _send(engine, 3)
        assert [o[0] for o in outs] == ["K"] * 3
        assert "Failed attempts" not in outs[1]
        assert server.messages == 3 and server.connections == 3
        assert engine.pool is not None and engine.pool.stale == 2
    finally:
        server.stop()


def test_pool_limits_are_enforced() -> None:
    """Idle time, lifetime and messages: an excluded connection gets QUIT and is
    closed; a peer that said anything (here EOF) is never reused."""
    from qremote.delivery.connections import Cached, Key
    from qremote.delivery.smtp import Client

    now = [0.0]
    pool = Pool(idle=2, lifetime=5, messages=3, clock=lambda: now[0])
    key = Key("127.0.0.2", "127.0.0.1", 25, False, "may", "127.0.0.1", "", "", "h", False)

    def cached() -> tuple[Cached, socket.socket]:
        ours, theirs = socket.socketpair()
        return Cached(Client(ours, 1), {}, "none", "127.0.0.2", now[0]), theirs

    c, peer = cached()
    pool.give(key, c)
    now[0] = 1.5
    assert pool.take(key) is c  # within the idle time
    pool.give(key, c)
    now[0] = 4.0  # idle 2.5 s
    assert pool.take(key) is None and peer.recv(100) == b"QUIT\r\n"
    c, peer = cached()
    for _ in range(8):  # used every second: never idle, but the lifetime ends
        pool.give(key, c)
        now[0] += 1
        taken = pool.take(key)
        if taken is None:
            break
        c.messages = 0  # only the lifetime counts here
    assert taken is None and now[0] - c.created > 5
    c, peer = cached()
    for _ in range(3):
        pool.give(key, c)
        c = pool.take(key) or c
    assert c.messages == 3 and pool.take(key) is None  # the third give closed it
    c, peer = cached()
    pool.give(key, c)
    peer.close()  # the server went away
    assert pool.take(key) is None


def test_the_warm_engine_keeps_dns_answers(make_home, dns_server) -> None:
    """The worker's engine shares dnspython's cache between deliveries (answers kept for
    their TTL): the second delivery asks the DNS server nothing; a cold engine asks
    again every time. A change of control/dnsservers starts a new cache."""
    import os

    import pytest

    from tests.conftest import dnsservers_file

    if os.geteuid() != 0:
        pytest.skip("binds port 25: needs root")
    z = dns_server.zone
    z.add("cached.test", "MX", (10, "mx.cached.test"))
    z.add("mx.cached.test", "A", "127.0.0.41")
    sink = Sink(host="127.0.0.41", port=25).start()
    try:
        home = make_home(routes="r;127.0.0.2;mx;;\n", routemap="*;*;r\n",
                         dnsservers=dnsservers_file(dns_server))
        warm = Engine(home, warm=True)
        deliver = [b"cached.test", b"a@b.org", b"x@cached.test"]
        assert reports(warm.deliver(deliver, b"m\n"))[-1][0] == "K"
        asked = len(z.queries)
        assert asked >= 2  # MX, A (and perhaps a PTR)
        assert reports(warm.deliver(deliver, b"m\n"))[-1][0] == "K"
        assert len(z.queries) == asked
        cold = Engine(home)
        assert reports(cold.deliver(deliver, b"m\n"))[-1][0] == "K"
        assert len(z.queries) > asked
    finally:
        sink.stop()
