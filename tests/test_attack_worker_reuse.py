"""Attacks on the worker's connection cache (CONTRACT section 7, issue 10).

Each test fails while its defect is there and says which promise breaks. The warm
engine (``Engine(home, warm=True)``) is the worker's own engine and connection cache;
the most serious case is also run end to end through a real worker and the Python
client, spawned as qmail-rspawn does.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from qremote.delivery.engine import Engine
from tests.support.attackworker import message_letter, relay_home, via_pyclient
from tests.support.delivery import detail, reports
from tests.support.scripted import DROP, STALL, Act, ScriptedSmtp
from tests.support.smtpsink import Sink, tls_contexts
from tests.support.workerproc import WorkerProcess

MakeHome = Callable[..., Path]
ARGS = [b"x.org", b"a@b.org", b"u@x.org"]
MESSAGE = b"Subject: t\n\nhi\n"

# A server whose reply to a message marks each of its two lines as the last one
# (seen in the wild: "250 ok" CRLF "250 queued as X" CRLF instead of "250-ok" ...).
# Read as qmail reads replies, the first line is the reply; the second is left over.
DOUBLED = b"250 2.0.0 ok\r\n250 2.0.0 queued as 4711\r\n"
REFUSED = b"554 5.7.1 message refused\r\n"


@pytest.mark.parametrize("extensions", [("PIPELINING", "CHUNKING"), ("PIPELINING",)],
                         ids=["bdat", "data"])
def test_a_reply_left_over_in_the_buffer_shifts_the_next_delivery(
        make_home: MakeHome, extensions: tuple[str, ...]) -> None:
    """Promise: ``K`` only after a 2xx to the final dot (or ``BDAT ... LAST``) of THIS
    message (CONTRACT section 4); the worker's reports are those of the in-process path
    (section 7).

    Evidence: the server's reply to message 1 is two lines each marked as last. The
    client reads the first and keeps the second in ``Client._buf``. ``looks_alive``
    checks only the socket (nothing there), so the connection is reused; message 2's
    pipelined replies are then read one step late: RSET gets the leftover, MAIL gets
    RSET's 250, RCPT gets MAIL's 250, and BDAT's result is RCPT's 250. With CHUNKING
    the server answers message 2 with 554 and the worker reports ``K`` (``Remote
    host said: 250 ok``, the RCPT's reply): the message is lost, no bounce. With DATA
    it reports ``Z ... failed on DATA command ... 250 ok`` while the server said 354.

    Right behaviour: a connection with unread bytes in its buffer is not reused (or
    not kept); message 2 goes on a fresh connection, and each report says what the
    server answered to that message.

    Fix: qremote/delivery/connections.py ``looks_alive`` (also return False when
    ``client._buf`` is not empty: expose it as ``Client.pending``), or refuse to keep
    it in ``engine._release``."""
    server = ScriptedSmtp(extensions=extensions, dot=[DOUBLED, REFUSED]).start()
    home = relay_home(make_home, server.port)
    worker = WorkerProcess(home).start()
    try:
        spawned = [via_pyclient(home, [a.decode() for a in ARGS]) for _ in range(2)]
    finally:
        worker.terminate()
        worker.close()
        server.stop()
    letters = [message_letter(s.output) for s in spawned]
    # What the server said to each message it received, session by session.
    answers = [(DOUBLED if i == 0 else REFUSED)
               for session in server.sessions for i, _ in enumerate(session.bodies)]
    expected = ["K" if a.startswith(b"2") else "D" for a in answers]
    assert len(answers) == 2 and letters == expected, (
        f"reports {[s.output for s in spawned]}; the server answered {answers}")


@pytest.mark.parametrize("second_mail", [
    Act(b"421 4.7.0 too many messages in this connection, reconnect\r\n", "drop"),
    DROP,
], ids=["421-then-close", "rset-ok-then-close"])
@pytest.mark.parametrize("extensions", [("PIPELINING",), ()], ids=["pipelining", "plain"])
def test_a_cached_connection_the_server_ends_at_mail_from_defers(
        make_home: MakeHome, second_mail: object, extensions: tuple[str, ...]) -> None:
    """Promise: a cached connection found dead before the transaction is replaced
    without failing the delivery; the worker reports what the in-process path
    reports (CONTRACT section 7).

    Evidence: servers limit the messages of one connection (Exim's
    smtp_accept_max_per_connection, KumoMTA's max_messages_per_connection, ...) by
    answering the next ``MAIL FROM`` with a transient error, typically ``421`` and a
    close; others accept ``RSET`` and then close. The worker's second delivery on
    that connection reports ``Z Connected to 127.0.0.1 but sender was rejected. ...
    421`` (or ``... connection died``): a needless deferral, repeated for every
    cached connection that reaches the server's limit. The in-process path, on a
    fresh connection, gets ``K``. Nothing of the message was accepted: the server
    refused (or never answered) MAIL FROM.

    Right behaviour: on a reused connection, a 421 or a lost connection before
    ``MAIL FROM`` was accepted is a stale connection: close it and deliver on a new
    one (as a 421 to ``RSET`` already is).

    Fix: qremote/delivery/session.py ``transaction`` (with ``reuse``: a 421 or
    ConnectionDied at the MAIL reply raises ``StaleConnection``; with CHUNKING the
    BDAT was refused with the transaction), handled in ``engine._reuse``."""
    server = ScriptedSmtp(extensions=extensions, mail=[b"250 ok\r\n", second_mail]).start()
    try:
        home = relay_home(make_home, server.port)
        cold = [Engine(home).deliver(ARGS, MESSAGE) for _ in range(2)]
        warm_engine = Engine(home, warm=True)
        warm = [warm_engine.deliver(ARGS, MESSAGE) for _ in range(2)]
    finally:
        server.stop()
    assert [message_letter(r) for r in cold] == ["K", "K"]
    assert [message_letter(r) for r in warm] == ["K", "K"], warm[1]


def test_a_new_timeoutremote_applies_to_cached_connections(make_home: MakeHome) -> None:
    """Promise: the worker picks up a control file change without a restart (CONTRACT
    section 7; README: "read again when a control file changes").

    Evidence: a connection is cached under timeoutremote 60; the operator lowers it to
    2. The next delivery reuses the cached connection, whose ``Client.timeout`` is
    still 60 (set when it was opened), and the server stalls after the message: the
    delivery waits the old 60 s instead of 2 (until reuselifetime, 300 s by default,
    every reused connection keeps the old bound, 1200 s with qmail's default).

    Right behaviour: a reused connection reads and writes with the current
    timeoutremote.

    Fix: qremote/delivery/engine.py ``_reuse`` (set ``cached.client.timeout =
    config.timeoutremote`` before the transaction)."""
    server = ScriptedSmtp(dot=[b"250 ok\r\n", STALL]).start()
    done: list[bytes] = []
    try:
        home = relay_home(make_home, server.port, timeoutremote="60\n")
        engine = Engine(home, warm=True)
        assert message_letter(engine.deliver(ARGS, MESSAGE)) == "K"
        (home / "control" / "timeoutremote").write_text("2\n")
        start = time.monotonic()
        thread = threading.Thread(target=lambda: done.append(engine.deliver(ARGS, MESSAGE)),
                                  daemon=True)
        thread.start()
        thread.join(15)
        waited = time.monotonic() - start
    finally:
        server.stop()  # ends the stall: the delivery finishes now if it had not
    assert done and waited < 15, (f"still waiting after {waited:.1f} s with "
                                  "timeoutremote 2")
    assert message_letter(done[0]) == "Z"


def test_an_attempt_failing_on_a_reused_tls_connection_says_tls(
        make_home: MakeHome) -> None:
    """Promise: the detail line describes the connection that decided the delivery,
    truthfully: TLS that was up is never ``tls=none`` (CONTRACT section 4); the
    worker's reports are the in-process path's, byte for byte (section 7).

    Evidence: a delivery with a UTF-8 recipient to a server without SMTPUTF8 fails
    its attempt on the connection (after STARTTLS) and ends ``Z`` with the attempt
    listed. In-process the detail line says ``tls=TLSv1.3``; on a reused connection
    the worker says ``tls=none``: ``engine._reuse`` lets the AttemptError go without
    the connection's TLS version and local address, which ``_attempt`` sets for a new
    connection (``exc.tls, exc.local = ...``). The same holds for a ``530`` to MAIL
    FROM on a reused connection.

    Right behaviour: the same bytes as in-process.

    Fix: qremote/delivery/engine.py ``_reuse`` (on AttemptError set ``exc.tls`` and
    ``exc.local`` from the cached connection, as ``_attempt`` does; ``exc.auth`` from
    ``cached.mech`` too)."""
    server_ctx, _ = tls_contexts()
    sink = Sink(starttls=server_ctx, pipelining=True).start()
    utf8 = [b"x.org", b"a@b.org", "j\u00fcrg@x.org".encode()]
    try:
        home = relay_home(make_home, sink.port)
        cold = Engine(home).deliver(utf8, MESSAGE)
        engine = Engine(home, warm=True)
        assert message_letter(engine.deliver(ARGS, MESSAGE)) == "K"  # cached, TLS up
        warm = engine.deliver(utf8, MESSAGE)
    finally:
        sink.stop()
    assert detail(reports(cold)[-1])["tls"].startswith("TLS")
    assert warm == cold


def test_a_same_size_edit_with_the_same_mtime_is_seen(make_home: MakeHome) -> None:
    """Promise: a control file change is picked up without a restart (CONTRACT
    section 7).

    Evidence: ``engine.control_stamp`` keys the parsed configuration on (size,
    mtime_ns, inode) only. A routes file rewritten in place with a password of the
    same length, its mtime equal to the old one, goes unseen: the worker keeps
    authenticating with the old credentials until some other change. An equal mtime
    is what a filesystem with 1 s (ext3, NFS) or 2 s (FAT) timestamps gives to two
    writes in the same second, and what ``touch -r``, ``cp -p``, ``tar x`` or a
    deployment that pins mtimes (SOURCE_DATE_EPOCH, Nix) give on purpose. Here the
    mtime is put back with ``os.utime``.

    Right behaviour: the new password is used for the next delivery.

    Fix: qremote/delivery/engine.py ``control_stamp`` (add ``st_ctime_ns``, which no
    one can set back; and, as git does for "racily clean" files, do not trust a stamp
    whose mtime is within a second or two of the moment it was taken)."""
    server_ctx, _ = tls_contexts()
    sink = Sink(starttls=server_ctx, pipelining=True,
                users={"olduser": "secret-1", "newuser": "secret-2"}).start()
    try:
        home = relay_home(make_home, sink.port, reuseidle="0\n",
                          routes=f"r;127.0.0.2;127.0.0.1:{sink.port};olduser;secret-1\n")
        engine = Engine(home, warm=True)
        assert message_letter(engine.deliver(ARGS, MESSAGE)) == "K"
        routes = home / "control" / "routes"
        before = os.stat(routes)
        with open(routes, "r+") as f:  # in place: same inode, same size
            f.write(f"r;127.0.0.2;127.0.0.1:{sink.port};newuser;secret-2\n")
        os.utime(routes, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert os.stat(routes).st_size == before.st_size
        assert message_letter(engine.deliver(ARGS, MESSAGE)) == "K"
    finally:
        sink.stop()
    assert [r.auth for r in sink.received] == ["olduser", "newuser"]


def test_a_refused_rset_delivers_the_pipelined_message_twice(make_home: MakeHome) -> None:
    """Promise: a cached connection that cannot be reused is replaced "before anything
    of the delivery was accepted" (README, Connections kept for reuse); the worker's
    outcome is the in-process path's (CONTRACT section 7).

    Evidence: on reuse ``transaction`` sends ``RSET`` pipelined with MAIL, RCPT and, with
    CHUNKING, ``BDAT n LAST`` and the whole message, in one write. A server that
    answers RSET with anything but 2xx (here ``502``) still runs the commands after
    it and accepts the message; ``_reset`` then raises ``StaleConnection`` ("nothing
    of this delivery reached the server"), the connection is closed, and the message
    goes again on a new connection: every message after the first on a connection is
    delivered twice, each reported ``K`` without "Possible duplicate". In-process: one
    copy each.

    Right behaviour: one copy. Either the pipelined transaction is read to its end
    whatever RSET said (its replies decide, as they do on a new connection), or the
    message content is not sent before RSET's 2xx (BDAT after the RSET reply).

    Fix: qremote/delivery/session.py ``_reset`` / ``transaction`` (with pipelining, a
    non-2xx RSET other than 421 is not a stale connection: read the batch's replies
    as usual)."""
    from tests.support.attackworker import RsetRefuser

    server = RsetRefuser()
    try:
        home = relay_home(make_home, server.port)
        engine = Engine(home, warm=True)
        letters = [message_letter(engine.deliver(ARGS, b"Subject: %d\n\nhi\n" % i))
                   for i in range(3)]
        assert engine.pool is not None
        engine.pool.close_all()  # QUIT: every session ends, and stop() waits for them
    finally:
        server.stop()
    assert letters == ["K", "K", "K"]
    subjects = [b.split(b"\r\n", 1)[0].decode() for b in server.bodies]
    assert subjects == ["Subject: 0", "Subject: 1", "Subject: 2"], subjects
