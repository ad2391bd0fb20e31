"""Attacks on qmail-remote's clients (CONTRACT section 7, issue 10): whom they hand a
delivery to. Needs root (CI is root) to run a listener as another user."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.attackworker import FORGED, NOBODY, ForeignListener, foreign_python
from tests.support.clients import KINDS, Clients, clients  # noqa: F401 (a fixture)
from tests.support.rspawn import spawn
from tests.support.smtpsink import Sink
from tests.support.users import make_public_dir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runs a listener as nobody")

ARGS = ["x.org", "a@b.org", "y@x.org"]
MESSAGE = b"Subject: t\n\nhello\n"


@pytest.fixture
def open_home() -> Iterator[tuple[Path, Sink]]:
    """A qmail home whose socket directory another user can write (the precondition:
    a misconfigured ``queue/lock``, or ``--socket`` in a shared directory), and a real
    SMTP server the route goes to."""
    sink = Sink().start()
    top = make_public_dir("qrattack-")
    home = top / "qmail"
    (home / "control").mkdir(parents=True)
    for name, text in {"me": "relay.example.org\n", "dnsservers": "127.0.0.1:9\n",
                       "routes": f"r;127.0.0.2;127.0.0.1:{sink.port};;\n",
                       "routemap": "*;*;r\n"}.items():
        (home / "control" / name).write_text(text)
    lock = home / "queue" / "lock"
    lock.mkdir(parents=True)
    for d in (home, home / "control", home / "queue"):
        os.chmod(d, 0o755)
    os.chmod(lock, 0o1777)
    try:
        yield home, sink
    finally:
        sink.stop()
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.parametrize("kind", KINDS)
def test_a_client_hands_the_delivery_to_a_listener_of_another_user(
        open_home: tuple[Path, Sink], clients: Clients, kind: str) -> None:  # noqa: F811
    """Promise: only root and qmailr take part in the hand-over (CONTRACT section 7:
    "only that user and root may connect (peer credentials are checked)"); a message
    is never lost.

    Evidence: with no worker running, a process of another user (here ``nobody``)
    listens on the socket path. The C client (both modes) and the Python client
    connect, send the request with the queue file and qmail-rspawn's pipe, and take
    its ack: the listener reads the message, writes ``K`` into the pipe and
    qmail-send records the message as delivered; the real server never sees it. The
    worker checks its peers (SO_PEERCRED) but the clients never check theirs: the
    socket's owner and the listener's credentials are both available.

    Right behaviour: a client hands over only to a listener running as root or as
    its own user (SO_PEERCRED on the connected socket, uid 0 or getuid()), and
    otherwise delivers in-process, as it does when no worker answers.

    Fix: qremote/client/qmail-remote.c ``connect_worker`` and
    qremote/client/pyclient.py ``connect`` (``getsockopt(SO_PEERCRED)`` after
    ``connect``, close and return "no worker" when the uid is another)."""
    home, sink = open_home
    python = foreign_python()
    if python is None:
        pytest.skip("no Python that nobody can run")
    clients.use(home)
    socket_path = home / "queue" / "lock" / "qremote.sock"
    listener = ForeignListener(python, socket_path)
    try:
        assert ForeignListener.owner(socket_path) == NOBODY
        argv, env = clients.command(kind, ARGS)
        spawned = spawn(argv, MESSAGE, env=env)
    finally:
        heard = listener.stop()
    assert FORGED not in spawned.output, (
        f"the {kind} client took a K from uid {NOBODY}'s listener: {heard}")
    assert spawned.letter == "K" and len(sink.received) == 1
