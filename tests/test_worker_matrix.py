"""The worker's reports are byte for byte those of the in-process ``qmail-remote``
(``python -I -m qremote.remote``) across the fault matrix of test_fault_matrix.py:
every stage x every fault, plus a refused connect.

Each case has its own recipient domain, routed by the routemap to its own scripted
server, so one worker and one configuration serve the whole matrix, and the cases
(both paths of each) run at the same time."""

from __future__ import annotations

import threading

from tests.support.clients import clients, worker_home
from tests.support.delivery import deliver_process
from tests.support.rspawn import spawn
from tests.support.smtpsink import ScriptedServer, free_port
from tests.support.workerproc import WorkerProcess
from tests.test_fault_matrix import EXPECTED, NO_CONN

__all__ = ["clients"]

MESSAGE = b"Subject: t\n\nbody\n"


def test_reports_identical_to_in_process(clients, make_home) -> None:
    cases: list[tuple[str, str]] = [*sorted(EXPECTED), ("connect", "refused")]
    servers: list[ScriptedServer] = []
    routes, routemap = [], []
    for i, (stage, fault) in enumerate(cases):
        extensions, creds = ["8BITMIME"], ";"
        if stage == "starttls":
            extensions.append("STARTTLS")
        if stage == "auth":
            extensions.append("AUTH CRAM-MD5")
            creds = "user;secret"
        if stage == "connect":
            port = free_port()
        else:
            server = ScriptedServer(stage, fault, extensions=extensions).start()
            servers.append(server)
            port = server.port
        routes.append(f"r{i};127.0.0.2;127.0.0.1:{port};{creds}\n")
        routemap.append(f"*;c{i}.test;r{i}\n")
    home = worker_home(make_home, routes="".join(routes), routemap="".join(routemap),
                       timeoutconnect="1\n", timeoutremote="1\n")
    clients.use(home)
    worker = WorkerProcess(home).start()
    outputs: dict[tuple[int, str], bytes] = {}

    def one(i: int, path: str) -> None:
        args = [f"c{i}.test", "a@b.org", f"y@c{i}.test"]
        if path == "in-process":
            result = deliver_process(home, args, MESSAGE)
            assert result.returncode == 0 and result.stderr == b""
            outputs[(i, path)] = result.stdout
        else:
            argv, env = clients.command("c", args)
            spawned = spawn(argv, MESSAGE, env)
            assert spawned.returncode == 0
            outputs[(i, path)] = spawned.output

    try:
        threads = [threading.Thread(target=one, args=(i, path))
                   for i in range(len(cases)) for path in ("in-process", "worker")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        # the worker did deliver each one (its log has a line a delivery)
        assert len(worker.wait_deliveries(len(cases))) == len(cases)
    finally:
        worker.close()
        for server in servers:
            server.stop()
    assert len(outputs) == 2 * len(cases)
    different = [cases[i] for i in range(len(cases))
                 if outputs[(i, "in-process")] != outputs[(i, "worker")]]
    assert different == [], [(c, outputs[(cases.index(c), "in-process")],
                               outputs[(cases.index(c), "worker")]) for c in different]
    for i, case in enumerate(cases):  # and each case did exercise its fault
        expected = EXPECTED[case][1] if case in EXPECTED else NO_CONN
        message_report = outputs[(i, "worker")].split(b"\0")[-2].decode()
        assert message_report.startswith(expected), (case, message_report)
