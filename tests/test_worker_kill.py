"""A worker killed (SIGKILL) at every stage of a delivery never loses a message and
never causes a bounce: qmail-rspawn, emulated, reads ``Z`` (retry) for every delivery
the worker had acknowledged, and a delivery it had not acknowledged is delivered
in-process by the client. ``K`` only when the 2xx after the dot was received and
the report written."""

from __future__ import annotations

import threading

import pytest

from tests.support.clients import KINDS, clients, relay_files, worker_home
from tests.support.pausing import PausingServer
from tests.support.rspawn import Spawned, spawn
from tests.support.workerproc import WorkerProcess

__all__ = ["clients"]

MESSAGE = b"Subject: t\n\nhello\n"
BIG = b"Subject: big\n\n" + b"x" * 998 + b"\n" * 4000  # blocks the sender mid-body
ARGS = ["x.org", "a@b.org", "y@x.org"]

# stage -> (who stops there, qmail-rspawn's letter, messages the server has read)
STAGES = {
    "accepted": ("worker", "K", 1),  # fds held, not acked: the client goes in-process
    "acked": ("worker", "Z", 0),  # acked, no SMTP connection yet
    "mail": ("server", "Z", 0),  # in the middle of the SMTP dialogue
    "body": ("server", "Z", 0),  # while the body is being sent
    "dot": ("server", "Z", 1),  # the final dot sent, no reply yet: possible duplicate
    "reporting": ("worker", "Z", 1),  # 250 after the dot received, report not written
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stage", list(STAGES))
def test_killed_at_each_stage(clients, make_home, stage: str, kind: str) -> None:
    who, letter, messages = STAGES[stage]
    server = PausingServer(stage if who == "server" else None).start()
    home = worker_home(make_home, **relay_files(server.port))
    clients.use(home)
    worker = WorkerProcess(home, pause_at=stage if who == "worker" else None).start()
    try:
        argv, env = clients.command(kind, ARGS)
        message = BIG * 1000 if stage == "body" else MESSAGE
        result: list[Spawned] = []
        thread = threading.Thread(target=lambda: result.append(spawn(argv, message, env)))
        thread.start()
        if who == "worker":
            worker.wait_stopped()
        else:
            server.wait_paused()
        worker.kill()
        server.release()
        thread.join(120)
    finally:
        server.stop()
        worker.close()
    (spawned,) = result
    assert spawned.returncode == 0
    assert spawned.letter == letter, spawned
    assert len(server.messages) == messages
    if letter == "K":  # delivered by the client itself, after a 250 to the dot
        assert server.accepted == 1
        assert spawned.output.startswith(b"r\0K127.0.0.1 accepted message.\n")
    elif kind == "relay":  # the relaying client says what happened
        assert spawned.output.startswith(b"Zqremote worker vanished")
        assert spawned.output.endswith(b"\nroute=- local=- remote=- tls=none auth=none\0")
    else:  # the worker's copy of the pipe closed unwritten
        assert spawned.output == b""
        assert spawned.report == b"Zqmail-remote produced no output.\n"
    assert worker.deliveries() == []


def test_a_restarted_worker_takes_over(clients, make_home) -> None:
    server = PausingServer().start()
    home = worker_home(make_home, **relay_files(server.port))
    clients.use(home)
    try:
        first = WorkerProcess(home).start()
        first.kill()  # its socket file stays behind
        second = WorkerProcess(home).start()
        try:
            argv, env = clients.command("c", ARGS)
            assert spawn(argv, MESSAGE, env).letter == "K"
            assert len(second.wait_deliveries(1)) == 1
        finally:
            second.close()
            first.close()
    finally:
        server.stop()
