"""``qremote worker`` and its clients, end to end as qmail-rspawn runs them.

Every delivery here goes through :func:`tests.support.rspawn.spawn` (the queue file as
stdin, a pipe as stdout and stderr, read to EOF after the child is reaped) and is
judged by qmail-rspawn's own rules; the SMTP side is a real server on loopback.
"""

from __future__ import annotations

import array
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from qremote.client.build import PYCLIENT, build_client, c_literal, is_client, runtimes
from qremote.worker import protocol
from tests.conftest import dnsservers_file, run_cli
from tests.support.clients import KINDS, Clients, clients, relay_files, worker_home
from tests.support.delivery import deliver_process
from tests.support.listener import accept_number, thread_syscalls, wait_for
from tests.support.pausing import PausingServer
from tests.support.rspawn import Spawned, eof_soon, spawn
from tests.support.smtpsink import Sink, tls_contexts
from tests.support.workerproc import WorkerProcess, thread_cpus

__all__ = ["clients"]  # the fixture, imported for the tests below

MESSAGE = b"Subject: t\n\nhello\n"
ARGS = ["x.org", "a@b.org", "y@x.org"]


def deliver(clients: Clients, kind: str, message: bytes = MESSAGE,
            args: list[str] = ARGS) -> Spawned:
    argv, env = clients.command(kind, args)
    return spawn(argv, message, env)


@pytest.fixture
def server():
    srv = PausingServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def home(make_home, server, clients) -> Path:
    path = worker_home(make_home, **relay_files(server.port))
    clients.use(path)
    return path


@pytest.fixture
def worker(home):
    proc = WorkerProcess(home).start()
    yield proc
    proc.close()


@pytest.mark.parametrize("kind", KINDS)
def test_the_worker_delivers(clients, server, worker, kind: str) -> None:
    result = deliver(clients, kind)
    assert result.returncode == 0
    assert result.letter == "K", result
    assert result.output.startswith(b"r\0K127.0.0.1 accepted message.\n")
    assert server.messages == [b"Subject: t\r\n\r\nhello\r\n"]
    line = worker.wait_line(lambda line: line.startswith("delivery 1: K"))
    assert "route=r local=127.0.0.2" in line


@pytest.mark.parametrize("kind", KINDS)
def test_no_worker_delivers_in_process(clients, server, home, kind: str) -> None:
    result = deliver(clients, kind)
    assert (result.returncode, result.letter) == (0, "K"), result
    assert len(server.messages) == 1
    # a socket file nobody listens on (a crashed worker's): the same
    stale = socket.socket(socket.AF_UNIX)
    with protocol.socket_address(protocol.default_socket(home)) as address:
        stale.bind(address)
    stale.close()
    result = deliver(clients, kind)
    assert (result.returncode, result.letter) == (0, "K"), result
    assert len(server.messages) == 2


def test_a_config_change_is_used_without_restart(clients, server, home, worker) -> None:
    assert deliver(clients, "c").letter == "K"
    other = PausingServer().start()
    try:
        routes = home / "control" / "routes"
        routes.write_text(f"r;127.0.0.2;127.0.0.1:{other.port};;\n")
        assert deliver(clients, "c").letter == "K"
        assert (len(server.messages), len(other.messages)) == (1, 1)
    finally:
        other.stop()
    assert len(worker.wait_deliveries(2)) == 2  # both through the same worker
    assert worker.proc.poll() is None


def test_status_shows_deliveries_in_flight(clients, make_home, home) -> None:
    paused = PausingServer("mail").start()
    (home / "control" / "routes").write_text(f"r;127.0.0.2;127.0.0.1:{paused.port};;\n")
    (home / "control" / "reuseidle").write_text("60\n")
    proc = WorkerProcess(home).start()
    try:
        done = []
        thread = threading.Thread(target=lambda: done.append(deliver(clients, "c")))
        thread.start()
        paused.wait_paused()
        out = run_cli("status", "--json", home=home)
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert doc["pid"] == proc.proc.pid
        (flight,) = doc["in_flight"]
        assert flight["stage"] == "mail"  # the engine's stage: MAIL FROM sent
        assert flight["host"] == "x.org" and flight["recipients"] == 1
        assert flight["age"] >= 0
        assert doc["connections"] == [] and doc["reused"] == 0
        assert doc["deliveries"] == 0
        text = run_cli("status", home=home)
        assert text.returncode == 0
        assert "in flight 1" in text.stdout and " mail " in text.stdout
        paused.release()
        thread.join(60)
        assert done[0].letter == "K"
        proc.wait_line(lambda line: line.startswith("delivery 1:"))
        doc = json.loads(run_cli("status", "--json", home=home).stdout)
        assert doc["in_flight"] == [] and doc["deliveries"] == 1
        assert doc["results"] == {"K": 1, "Z": 0, "D": 0}
        # the connection stays cached for the next delivery, which reuses it
        again = deliver(clients, "c")
        assert again.letter == "K"
        doc = json.loads(run_cli("status", "--json", home=home).stdout)
        assert doc["reused"] == 1 and doc["opened"] == 1
        (cached,) = doc["connections"]
        assert cached["destination"] == f"127.0.0.2 -> 127.0.0.1:{paused.port}"
        assert cached["messages"] == 2
    finally:
        paused.stop()
        proc.close()


def test_status_without_worker(home) -> None:
    out = run_cli("status", home=home)
    assert out.returncode == 1
    assert "no worker is running" in out.stderr
    assert out.stdout == ""


def test_sigterm_drains(clients, home) -> None:
    paused = PausingServer("mail").start()
    (home / "control" / "routes").write_text(f"r;127.0.0.2;127.0.0.1:{paused.port};;\n")
    proc = WorkerProcess(home).start()
    try:
        first: list[Spawned] = []
        thread = threading.Thread(target=lambda: first.append(deliver(clients, "c")))
        thread.start()
        paused.wait_paused()
        proc.proc.send_signal(15)
        proc.wait_line(lambda line: "draining" in line)
        # meanwhile a new delivery goes in-process: it pauses at the same server, and
        # the worker's log never shows it
        second: list[Spawned] = []
        other = threading.Thread(target=lambda: second.append(deliver(clients, "c")))
        other.start()
        paused.wait_paused(2)
        assert proc.proc.poll() is None  # still draining: one delivery in flight
        paused.release()
        thread.join(60)
        other.join(60)
        assert proc.proc.wait(60) == 0
        assert first[0].letter == "K" and second[0].letter == "K"
        assert len(paused.messages) == 2
        proc.wait_line(lambda line: line == "<EOF>")  # the whole log, read to its end
        assert len(proc.deliveries()) == 1
        assert proc.lines[-1] == "<EOF>" and "stopped (drained)" in proc.lines[-2]
    finally:
        paused.stop()
        proc.close()


def test_delivery_threads_keep_to_one_cpu(clients, server, home) -> None:
    """The threads share one interpreter lock: handed from CPU to CPU it cost 0.70 ms
    of CPU a delivery at 200 in flight, 0.26 on one CPU. --all-cpus spreads them."""
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        pytest.skip("one CPU only")
    for options, expected in (((), {str(max(allowed))}), (("--all-cpus",), None)):
        proc = WorkerProcess(home, options=options).start()
        try:
            assert deliver(clients, "c").letter == "K"  # delivery threads exist now
            cpus = thread_cpus(proc.proc.pid)
            logged = [line for line in proc.lines if "delivery threads on CPU" in line]
        finally:
            proc.close()
        if expected is None:
            assert len(cpus) == 1 and cpus != {str(max(allowed))} and not logged
        else:
            assert cpus == expected, cpus
            assert logged == [f"worker: delivery threads on CPU {max(allowed)} (they share "
                              "one interpreter lock; --all-cpus spreads them)"]


def test_a_second_worker_refuses_to_start(home, worker) -> None:
    out = subprocess.run([sys.executable, "-m", "qremote.cli", "worker", "--qmail-home",
                          str(home), "--user", worker.user], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1
    assert "a worker already listens on" in out.stderr
    doc = json.loads(run_cli("status", "--json", home=home).stdout)
    assert doc["errors"] == 0  # its check (a bare connect) is not a bad request


def test_argv_bytes_travel_as_they_are(clients, server, home, worker) -> None:
    """Arguments that are not UTF-8: the worker's reports equal the in-process ones."""
    args = [b"x.org", b"a\xff@b.org", b"y\xfe@x.org"]
    argv, env = clients.command("c", [])
    via_worker = spawn([*argv, *args], MESSAGE, env)
    in_process = deliver_process(home, [os.fsdecode(a) for a in args], MESSAGE)
    assert via_worker.output == in_process.stdout
    assert len(worker.wait_deliveries(1)) == 1


def test_an_exception_in_the_engine_is_a_z(home) -> None:
    """The adapter's last guard, with the server in a thread (no signals): ``Z``."""
    from qremote.worker.server import Server

    class Broken:
        def deliver(self, argv, message, progress=None):
            raise RuntimeError("boom")

    lines: list[str] = []
    server = Server(home, engine=Broken(), log=lines.append)
    server.open(pwd.getpwuid(os.geteuid()).pw_name, clear_environment=False)
    thread = threading.Thread(target=server.serve, kwargs={"stack_size": 0})
    thread.start()
    try:
        read_end, write_end = os.pipe()
        with protocol.connect(protocol.default_socket(home), 30) as sock, \
                open(os.devnull, "rb") as message:
            protocol.send_request(sock, protocol.DELIVER, [b"x.org", b"a@b", b"c@x.org"],
                                  [message.fileno(), write_end])
            os.close(write_end)
            assert sock.recv(1) == protocol.ACK
        with os.fdopen(read_end, "rb") as pipe:
            report = pipe.read()
        assert report == (b"Zqremote worker internal error: RuntimeError: boom (#4.3.0)\n"
                          b"route=- local=- remote=- tls=none auth=none\0")
    finally:
        server.stop()
        thread.join(30)
    assert server.status.results["Z"] == 1
    assert lines[-1] == "worker: stopped (drained)"


def test_start_up_errors_say_what_to_fix(tmp_path, home) -> None:
    out = run_cli("worker", "--user", "no-such-user-qr", home=home)
    assert out.returncode == 1 and "no user 'no-such-user-qr'" in out.stderr
    out = run_cli("worker", "--qmail-home", str(tmp_path / "elsewhere"))
    assert out.returncode == 1 and "queue/lock is not a directory" in out.stderr
    (home / "queue" / "lock" / "qremote.sock").write_text("")
    out = run_cli("worker", "--user", pwd.getpwuid(os.geteuid()).pw_name, home=home)
    assert out.returncode == 1 and "exists and is not a socket" in out.stderr


def test_bad_requests_are_dropped_and_their_descriptors_closed(home, worker) -> None:
    path = protocol.default_socket(home)
    rcpt = [b"a", b"b", b"c"]
    cases = [  # (request, descriptors sent, cut short)
        (bytes([9]) + protocol.encode_request(protocol.DELIVER, rcpt)[1:], 2, False),
        (protocol.encode_request(b"Q", rcpt), 2, False),
        (protocol.encode_request(protocol.DELIVER, rcpt), 1, False),
        (protocol.encode_request(protocol.DELIVER, rcpt), 3, False),
        (protocol.encode_request(protocol.STATUS), 1, False),
        (protocol.encode_request(protocol.DELIVER, rcpt)[:-1], 2, True),
    ]
    for data, nfds, short in cases:
        read_end, write_end = os.pipe()
        sock = protocol.connect(path, timeout=30)
        with sock:
            fds = array.array("i", [write_end] * nfds).tobytes()
            assert sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)]) \
                == len(data)
            os.close(write_end)
            if short:  # the client gives up in the middle of its request
                sock.shutdown(socket.SHUT_WR)
            try:
                assert sock.recv(1) == b""  # closed without an ack
            except ConnectionResetError:
                pass
        assert eof_soon(read_end)  # the worker kept no copy of the pipe
        os.close(read_end)
    doc = json.loads(run_cli("status", "--json", home=home).stdout)
    assert doc["errors"] == len(cases) and doc["deliveries"] == 0


def test_delivery_threads_are_reused(clients, server, worker) -> None:
    number = accept_number()
    for n in range(1, 6):
        assert deliver(clients, "c").letter == "K"
        worker.wait_deliveries(n)
        # A delivery thread counts itself idle again only after it has closed the
        # client's descriptors and logged: a delivery that came before that would find
        # the other thread alone in accept, take the last idle place and rightly start
        # one more (4 threads). So wait until every thread but the main one (in poll)
        # is back in accept.
        threads = wait_for(lambda: _threads_if_all_back(worker.proc.pid, number),
                           what="every delivery thread back in accept")
        # the main thread, the thread that took the delivery, and the one it started
        # when it took the last idle place; never one more per delivery
        assert threads <= 3, (n, threads)


def _threads_if_all_back(pid: int, accept: str) -> int | None:
    """The number of threads of ``pid`` when all but one wait in accept, else None."""
    calls = thread_syscalls(pid)
    if not calls:
        pytest.skip("the worker's threads cannot be read in /proc here")
    waiting = sum(1 for call in calls.values() if call[0] == accept)
    return len(calls) if waiting == len(calls) - 1 else None


def test_the_open_files_limit_is_raised(home) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft <= 256 or hard <= 256:
        pytest.skip("the open files limit is already low here")
    proc = WorkerProcess(home, preexec=lambda: resource.setrlimit(
        resource.RLIMIT_NOFILE, (256, hard))).start()
    try:
        limits = Path(f"/proc/{proc.proc.pid}/limits").read_text()
        line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
        assert line.split()[3] == line.split()[4] != "256"  # soft raised to the hard limit
    finally:
        proc.close()


def test_many_deliveries_at_once(clients, server, worker) -> None:
    """40 at once, each its own message: each K is that message, received once by this
    test's server (never another delivery's, never a stale server's)."""
    results: dict[int, Spawned] = {}
    bodies = {i: f"Subject: delivery {i}\n\nhello {i}\n".encode() for i in range(40)}

    def one(i: int) -> None:
        results[i] = deliver(clients, "c", bodies[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    lines = worker.wait_deliveries(40)
    received = [m.replace(b"\r\n", b"\n") for m in server.messages]
    replies = sorted({line for r in results.values() for line in r.output.split(b"\n")
                      if line.startswith(b"Remote host said")})
    why = (f"server: {server.sessions} sessions, {server.accepted} accepted, "
           f"{len(received)} messages; the reports' replies: {replies}; worker log:\n"
           + "\n".join(worker.lines[-60:]))
    assert sorted(r.letter for r in results.values()) == ["K"] * 40, why
    assert sorted(received) == sorted(bodies.values()), why
    assert all(f"remote=127.0.0.1:{server.port}".encode() in r.output
               for r in results.values()), why
    assert len(lines) == 40, why


def test_tls_verify_in_a_delivery_thread_ignores_the_shells_environment(
        clients, make_home) -> None:
    """STARTTLS with tls=verify inside a worker thread (small stack), the worker started
    from a shell that exports SSL_CERT_FILE (the test CA): qmail-start gives
    qmail-remote an empty environment, so the worker empties its own. The certificate
    is checked against the system's trust store only, and fails as it does in-process
    without that variable (tests/test_delivery.py covers a verify that succeeds)."""
    context, ca_file = tls_contexts()
    sink = Sink(starttls=context).start()
    try:
        home = worker_home(make_home, routes=f"r;127.0.0.2;127.0.0.1:{sink.port};;;"
                           "tls=verify\n", routemap="*;*;r\n")
        clients.use(home)
        proc = WorkerProcess(home, env=dict(os.environ, SSL_CERT_FILE=ca_file)).start()
        try:
            result = deliver(clients, "c")
            assert len(proc.wait_deliveries(1)) == 1  # the worker delivered it ...
            assert result.letter == "Z", result  # ... and did not trust the test CA
            assert b"certificate verify failed" in result.output, result
            assert sink.received == []
            # qmail-remote in-process, with the empty environment qmail gives it
            alone = subprocess.run([sys.executable, "-I", "-m", "qremote.remote", *ARGS],
                                   input=MESSAGE, capture_output=True, timeout=120,
                                   env={"QMAIL_HOME": str(home)})
            assert result.output == alone.stdout
        finally:
            proc.close()
    finally:
        sink.stop()
        os.unlink(ca_file)


@pytest.mark.skipif(os.geteuid() != 0, reason="an MX listens on port 25: needs root")
def test_an_mx_route_in_a_delivery_thread(clients, make_home, dns_server) -> None:
    """dnspython's lookups inside a worker thread (small stack), an MX on port 25."""
    mx = PausingServer(host="127.0.0.133", port=25).start()
    try:
        dns_server.zone.add("x.org", "MX", (10, "mx1.x.org"))
        dns_server.zone.add("mx1.x.org", "A", "127.0.0.133")
        home = worker_home(make_home, routes="r;127.0.0.2;mx;;\n", routemap="*;*;r\n",
                           dnsservers=dnsservers_file(dns_server))
        clients.use(home)
        proc = WorkerProcess(home).start()
        try:
            result = deliver(clients, "c")
            assert result.letter == "K", result
            assert b"remote=127.0.0.133:25" in result.output
            assert len(proc.wait_deliveries(1)) == 1 and len(mx.messages) == 1
        finally:
            proc.close()
    finally:
        mx.stop()


def test_a_long_socket_path(make_home, server, tmp_path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    sock_path = deep / "worker.sock"
    assert len(str(sock_path)) > 108
    home = worker_home(make_home, **relay_files(server.port))
    built = build_client(home, sys.executable, tmp_path / "qr", socket=sock_path)
    assert built.path is not None, built.reason
    proc = WorkerProcess(home, socket=sock_path).start()
    try:
        for argv, env in (([str(built.path), *ARGS], {}),
                          ([sys.executable, "-I", "-S", str(PYCLIENT), *ARGS],
                           {"QMAIL_HOME": str(home), "QREMOTE_SOCKET": str(sock_path)})):
            assert spawn(argv, MESSAGE, env).letter == "K"
        assert len(proc.wait_deliveries(2)) == 2
        out = run_cli("status", "--socket", str(sock_path), home=home)
        assert out.returncode == 0 and "deliveries 2 (K 2" in out.stdout
    finally:
        proc.close()


def test_compiled_in_paths_may_hold_any_byte(make_home, server, tmp_path) -> None:
    """Spaces, quotes, a backslash, ?? and non-ASCII in the home: the fallback still
    finds it (the define is a safely quoted C literal)."""
    odd = tmp_path / 'q "mail" \\ ??= é'
    home = worker_home(make_home, **relay_files(server.port))
    home.rename(odd)
    built = build_client(odd, sys.executable, tmp_path / "qr")
    assert built.path is not None, built.reason
    result = spawn([str(built.path), *ARGS], MESSAGE, {})
    assert result.letter == "K", result
    assert len(server.messages) == 1
    assert c_literal("a\"b\\c?d\né") == '"a\\042b\\134c\\077d\\012\\303\\251"'


def test_exit_111_when_the_fallback_cannot_run(tmp_path, make_home) -> None:
    home = worker_home(make_home)
    built = build_client(home, tmp_path / "no-such-python", tmp_path / "qr")
    assert built.path is not None, built.reason
    assert is_client(built.path) and not is_client(Path(sys.executable))
    result = spawn([str(built.path), *ARGS], MESSAGE, {})
    assert (result.returncode, result.output, result.letter) == (111, b"", "Z")


def test_build_without_a_compiler(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CC", raising=False)
    built = build_client(tmp_path, "/usr/bin/python3", tmp_path / "qr")
    assert built.path is None and "no C compiler" in built.reason
    assert not (tmp_path / "qr").exists()
    relative = build_client(Path("var/qmail"), "/usr/bin/python3", tmp_path / "qr")
    assert relative.path is None and "absolute" in relative.reason


def test_the_client_starts_without_the_c_library_on_x86_64(clients: Clients) -> None:
    """The C library's start-up asks the processor about itself with CPUID, which traps
    under a hypervisor (0.5 ms a delivery on a virtual machine): on Linux x86-64 the
    client is built without it (both modes), the C-library build is kept for the rest.
    The tests of every kind above run both builds."""
    if "freestanding" not in runtimes():
        pytest.skip("the client is built without the C library only on Linux x86-64")
    assert clients.runtimes["c"] == clients.runtimes["relay"] == "freestanding"
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("no objdump to look inside the binaries")

    def cpuids(path: Path) -> int:
        text = subprocess.run([objdump, "-d", str(path)], capture_output=True, text=True,
                              check=True).stdout
        return sum(line.split("\t")[-1].startswith("cpuid") for line in text.splitlines())

    assert cpuids(clients.binaries["c"]) == cpuids(clients.binaries["relay"]) == 0
    if clients.runtimes["libc"] == "static":
        assert cpuids(clients.binaries["libc"]) > 0  # what the other build starts with


def test_runtimes_by_platform() -> None:
    assert runtimes("x86_64", "Linux") == ("freestanding", "static", "dynamic")
    assert runtimes("aarch64", "Linux") == ("static", "dynamic")
    assert runtimes("x86_64", "FreeBSD") == ("static", "dynamic")


def test_pyclient_imports_only_what_ships_inside_the_interpreter() -> None:
    import ast

    tree = ast.parse(PYCLIENT.read_text())
    top = {alias.name for node in tree.body if isinstance(node, ast.Import)
           for alias in node.names}
    assert top == {"_socket", "posix", "sys"}
    assert not any(isinstance(node, ast.ImportFrom) for node in tree.body)
    code = ("import sys; sys.argv = ['pyclient']; "
            f"exec(compile(open({str(PYCLIENT)!r}).read(), 'pyclient', 'exec'), "
            "{'__name__': 'pyclient'}); print(' '.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                         text=True, timeout=60)
    loaded = set(out.stdout.split())
    assert not loaded & {"socket", "os", "enum", "selectors", "site", "qremote"}, loaded
