"""Attacks on the compiled client built without the C library (qremote/client/
freestanding.h), run as qmail-rspawn and an operator's machine run it, compared byte
for byte with the build of the same source on the C library.

The fallback is watched through a stand-in for the interpreter (compiled in as the
client's Python): a script that records its argv, environment and descriptors, then
writes and exits as the test says. The hand-over is watched with the real worker and
a real SMTP server on loopback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from qremote.client.build import build_client, find_compiler, runtimes
from tests.support.clients import KINDS, Clients, clients, relay_files, worker_home
from tests.support.pausing import PausingServer
from tests.support.rspawn import rspawn_report, spawn
from tests.support.workerproc import WorkerProcess

__all__ = ["clients"]  # the fixture

pytestmark = pytest.mark.skipif("freestanding" not in runtimes(),
                                reason="the client is built without the C library only "
                                       "on Linux x86-64")

ARGS = ["x.org", "a@b.org", "y@x.org"]
MESSAGE = b"Subject: t\n\nhello\n"

# The stand-in interpreter: records, then writes plan["write"] ([fd, text]...) and
# exits with plan["exit"] or kills itself with plan["signal"].
RECORDER = r'''#!PYTHON -S
import fcntl, json, os
here = os.path.dirname(os.path.abspath(__file__))
record = {"argv": open("/proc/self/cmdline", "rb").read().hex(),
          "environ": open("/proc/self/environ", "rb").read().hex(), "fds": {},
          "cwd": os.readlink("/proc/self/cwd")}
for fd in range(8):
    try:
        record["fds"][fd] = [os.readlink(f"/proc/self/fd/{fd}"),
                             fcntl.fcntl(fd, fcntl.F_GETFL)]
    except OSError:
        pass
try:
    record["stdin"] = os.read(0, 1 << 16).hex()
except OSError as exc:
    record["stdin"] = exc.strerror
with open(os.path.join(here, "record.json"), "w") as fh:
    json.dump(record, fh)
plan = json.load(open(os.path.join(here, "plan.json")))
for fd, text in plan.get("write", []):
    try:
        os.write(fd, text.encode("latin-1"))
    except OSError:
        pass
if plan.get("signal"):
    os.kill(os.getpid(), plan["signal"])
os._exit(plan.get("exit", 0))
'''

BUILDS = {"c": (False, "freestanding"), "libc": (False, "static"),
          "relay": (True, "freestanding"), "relay-libc": (True, "static")}
PAIRS = (("c", "libc"), ("relay", "relay-libc"))


class Outcome(NamedTuple):
    returncode: int
    stdout: bytes
    stderr: bytes
    record: dict | None  # what the stand-in interpreter saw, None when it never ran


class Fallback:
    """The four builds with the stand-in interpreter compiled in, and no worker."""

    def __init__(self, top: Path) -> None:
        self.dir = top
        self.home = top / "home"
        self.home.mkdir()
        self.python = top / "python"
        self.python.write_text(RECORDER.replace("PYTHON", sys.executable))
        self.python.chmod(0o755)
        self.binaries: dict[str, Path] = {}
        for kind, (relay, only) in BUILDS.items():
            built = build_client(self.home, self.python, top / f"qr-{kind}",
                                 socket=top / "no-worker.sock", relay=relay, only=only)
            if built.path is None:
                pytest.skip(f"no {only} build here: {built.reason}")
            self.binaries[kind] = built.path

    def run(self, kind: str, args: list[str], env: dict[str, str] | None = None,
            plan: dict | None = None, preexec: Callable[[], None] | None = None,
            binary: Path | None = None, cwd: Path | None = None) -> Outcome:
        (self.dir / "plan.json").write_text(json.dumps(plan or {"write": [[1, "Kok\0"]]}))
        record = self.dir / "record.json"
        record.unlink(missing_ok=True)
        path = binary or self.binaries[kind]
        done = subprocess.run([str(path), *args], input=MESSAGE, capture_output=True,
                              env=env or {}, preexec_fn=preexec, timeout=60,
                              cwd=cwd or self.dir)
        seen = None
        if record.exists():  # pipe numbers differ from run to run
            seen = json.loads(re.sub(r"(pipe|socket):\[\d+\]", r"\1", record.read_text()))
        return Outcome(done.returncode, done.stdout, done.stderr, seen)


@pytest.fixture(scope="module")
def fallback(tmp_path_factory: pytest.TempPathFactory) -> Fallback:
    return Fallback(tmp_path_factory.mktemp("fallback"))


def environ_of(outcome: Outcome) -> list[bytes]:
    assert outcome.record is not None, outcome
    return bytes.fromhex(outcome.record["environ"]).split(b"\0")[:-1]


def closing(*fds: int) -> Callable[[], None]:
    """A preexec function that closes ``fds`` in the child before it runs the client."""
    def close() -> None:
        for fd in fds:
            os.close(fd)
    return close


def ignoring_sigchld() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)


def as_qmail_rspawn() -> None:
    """spawn.c forks with SIGCHLD blocked and SIGPIPE ignored; both survive exec."""
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})


# name -> (args, env, plan, preexec)
CASES: dict[str, tuple] = {
    "three args": (ARGS, None, None, None),
    "no args": ([], None, None, None),
    "one arg": (["x.org"], None, None, None),
    "two args": (["x.org", "a@b.org"], None, None, None),
    "self-test": (["--self-test"], None, None, None),
    "any bytes": (["\x01\xff é", "a b\tc\n", "", "-I", "--self-test"], None, None, None),
    "65536 args": (["a"] * 65536, None, None, None),
    "argv over 1 MiB": (["x.org", "a@b.org", *[f"{i}@" + "y" * 120_000 for i in range(9)]],
                        None, None, None),
    "QMAIL_HOME elsewhere": (ARGS, {"A": "1", "QMAIL_HOME": "/elsewhere", "B": "2"},
                             None, None),
    "huge environment": (ARGS, {f"V{i}": "v" * 200 for i in range(4000)}, None, None),
    "no PATH": (ARGS, {"HOME": "/"}, None, None),
    "python exits 1 after a K": (ARGS, None, {"write": [[1, "Kok\0"]], "exit": 1}, None),
    "python exits 100": (ARGS, None, {"exit": 100}, None),
    "python exits 111": (ARGS, None, {"exit": 111}, None),
    "python killed": (ARGS, None, {"write": [[1, "r\0"]], "signal": 9}, None),
    "python writes to stderr": (ARGS, None, {"write": [[2, "noise"], [1, "Kok\0"]]}, None),
    "stdin closed": (ARGS, None, None, closing(0)),
    "stdout closed": (ARGS, None, None, closing(1)),
    "stderr closed": (ARGS, None, None, closing(2)),
    "SIGCHLD ignored": (ARGS, None, None, ignoring_sigchld),
    "as qmail-rspawn starts it": (ARGS, None, None, as_qmail_rspawn),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_fallback_is_byte_identical_and_as_promised(fallback: Fallback,
                                                         case: str) -> None:
    """Promise: the client without the C library behaves exactly as the one built on
    it (stdout, stderr, exit status, and the interpreter's argv, environment and
    descriptors), and as README says: ``PYTHON -I -m qremote.remote ARGS`` with
    QMAIL_HOME set to the compiled-in home, once, stderr on /dev/null, exit 0 when
    the interpreter exits 0 and 111 otherwise (qmail-rspawn: Z, never D).

    Found: (1) with SIGCHLD ignored by whoever started it (the disposition survives
    exec) ``waitpid`` fails once the interpreter is reaped by the kernel: a delivery
    done and reported K became exit 111, qmail-rspawn's "Z Unable to run" and a second
    delivery later. (2) With fd 2 closed, /dev/null opened with O_CLOEXEC landed on 2
    and ``dup2(2, 2)`` kept the flag: the interpreter ran with no fd 2, and its next
    file or socket would take it. (3) The freestanding ``setenv`` put QMAIL_HOME last,
    the C library's in place of the old one.
    Fix: qmail-remote.c ``fallback`` (SIGCHLD to SIG_DFL; /dev/null without O_CLOEXEC),
    freestanding.h ``setenv``."""
    args, env, plan, preexec = CASES[case]
    for ours, theirs in PAIRS:
        got = fallback.run(ours, args, env, plan, preexec)
        assert got == fallback.run(theirs, args, env, plan, preexec), (ours, case)
        assert got.stderr == b""
        wanted = 0 if (plan or {}).get("exit", 0) == 0 and not (plan or {}).get("signal") \
            else 111
        assert got.returncode == wanted, got
        assert rspawn_report(got.returncode, got.stdout)[:1] in (b"K", b"Z"), got
        record = got.record
        assert record is not None
        argv = bytes.fromhex(record["argv"]).split(b"\0")[:-1]
        assert argv[3:] == [b"-I", b"-m", b"qremote.remote", *map(os.fsencode, args)]
        environ = environ_of(got)
        homes = [e for e in environ if e.startswith(b"QMAIL_HOME=")]
        assert homes == [b"QMAIL_HOME=" + os.fsencode(fallback.home)], environ[:5]
        expected_env = [f"{k}={v}".encode() for k, v in (env or {}).items()
                        if k != "QMAIL_HOME"]
        assert [e for e in environ if not e.startswith(b"QMAIL_HOME=")] == expected_env
        assert record["fds"]["2"][0] == "/dev/null", record["fds"]
        if case == "stdin closed":
            assert "0" not in record["fds"]
        elif case != "stdout closed":
            assert bytes.fromhex(record["stdin"]) == MESSAGE


def test_a_python_that_does_not_exist_is_exit_111_and_silent(tmp_path: Path) -> None:
    for only in ("freestanding", "static"):
        built = build_client(tmp_path, tmp_path / "no-python", tmp_path / f"qr-{only}",
                             socket=tmp_path / "none.sock", only=only)
        assert built.path is not None, built.reason
        done = subprocess.run([str(built.path), *ARGS], input=MESSAGE, capture_output=True,
                              env={}, timeout=30)
        assert (done.returncode, done.stdout, done.stderr) == (111, b"", b"")


# What a compiler may add on its own (a wrapper script, distribution defaults): each
# is appended after build_client's options, so it wins over them.
APPENDED = ["-O0", "-Os", "-O3 -mavx2", "-fPIE -pie", "-D_FORTIFY_SOURCE=2 -O2",
            "-fstack-protector-strong", "-fstack-protector-all", "-fPIE -static-pie", "-mx32"]


def compilers() -> list[str]:
    return [cc for cc in ("gcc", "clang") if shutil.which(cc)]


@pytest.mark.parametrize("cc", compilers())
@pytest.mark.parametrize("flags", APPENDED)
def test_a_compiler_adding_options_never_yields_a_broken_client(
        fallback: Fallback, tmp_path: Path, cc: str, flags: str) -> None:
    """Promise: build_client makes a client that works, or falls back to the next
    runtime (static, dynamic), or reports that it cannot: never a broken binary.

    Found: with ``-fstack-protector-strong`` added after ``-fno-stack-protector``
    (a compiler wrapper), gcc's freestanding build linked and died of SIGSEGV at its
    first instruction (the canary is read from %fs, which only the C library sets
    up): qmail-rspawn's "qmail-remote crashed", Z for every delivery, forever. With
    ``-fPIE -static-pie`` it linked as a position-independent program that nothing
    relocates: execve of the interpreter failed with EFAULT, exit 111 for every
    delivery. With ``-mx32``, a program of another ABI.
    Fix: freestanding.h refuses the stack protector and x32 (#error: the next runtime
    is tried); build.py ``runs_here`` keeps a freestanding build only when it is a
    fixed-address x86-64 executable. (-O3 -mavx2 also shows that the stack is aligned
    as the ABI says in the fallback's path.)"""
    if "avx2" in flags and "avx2" not in Path("/proc/cpuinfo").read_text():
        pytest.skip("no AVX2 on this processor")
    wrapper = tmp_path / "cc"
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which(cc)} "$@" {flags}\n')
    wrapper.chmod(0o755)
    built = build_client(fallback.home, fallback.python, tmp_path / "qr",
                         socket=tmp_path / "none.sock", cc=str(wrapper))
    if built.path is None:
        return  # said why; the installer uses the Python client
    try:
        got = fallback.run("c", ARGS, binary=built.path)
    except OSError as exc:  # cannot even start here
        pytest.fail(f"{built.reason} build with {flags!r} does not run: {exc}")
    assert (got.returncode, got.stdout) == (0, b"Kok\0"), (built.reason, got)


def test_cc_may_carry_options(fallback: Fallback, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Promise: ``CC`` is taken as make takes it, a compiler and its options.

    Found: ``CC="gcc -D_FORTIFY_SOURCE=2 -O2"`` was looked up as one program name:
    "no C compiler found", and install fell back to the Python client.
    Fix: build.py ``compiler_argv`` (shlex) in find_compiler and compile_command."""
    if not shutil.which("gcc"):
        pytest.skip("no gcc")
    monkeypatch.setenv("CC", "gcc -D_FORTIFY_SOURCE=2 -O2")
    cc = find_compiler()
    assert cc is not None and cc.endswith(" -D_FORTIFY_SOURCE=2 -O2"), cc
    built = build_client(fallback.home, fallback.python, tmp_path / "qr",
                         socket=tmp_path / "none.sock", cc=cc)
    assert built.path is not None and built.reason == "freestanding", built.reason
    assert fallback.run("c", ARGS, binary=built.path)[:2] == (0, b"Kok\0")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("closed", [0, 1])
def test_a_closed_stdin_or_stdout_never_travels_to_the_worker(
        clients: Clients, make_home, tmp_path: Path, kind: str,
        closed: int) -> None:
    """Promise: the worker is handed the queue file and qmail-rspawn's pipe, nothing
    else; a message is delivered as it is or not at all.

    Found: with stdin closed the client's socket to the worker took fd 0 and travelled
    as the message: the worker read its own ack (or nothing) and delivered a message
    of "A" (or an empty one), reported K; the queue file's content was lost. With
    stdout closed the socket travelled as the report descriptor. Every client (C in
    both modes and builds, Python).
    Fix: qmail-remote.c ``connect_worker`` and pyclient.py ``connect``: a socket that
    took fd 0 or 1 is closed and the delivery goes in-process (where a closed stdin
    is a Z: "Unable to read message")."""
    server = PausingServer().start()
    home = worker_home(make_home, **relay_files(server.port))
    clients.use(home)
    worker = WorkerProcess(home).start()
    try:
        argv, env = clients.command(kind, ARGS)
        queue_file = tmp_path / "message"
        queue_file.write_bytes(MESSAGE)
        with open(queue_file, "rb") as stdin:
            done = subprocess.run(argv, stdin=stdin, capture_output=True, env=env,
                                  preexec_fn=closing(closed), timeout=60)
    finally:
        server.stop()
        worker.close()
    assert done.returncode == 0 and done.stderr == b""
    assert worker.deliveries() == [], worker.deliveries()
    if closed == 0:
        assert server.messages == [], server.messages
        assert rspawn_report(0, done.stdout)[:1] == b"Z", done.stdout
    else:
        assert server.messages == [MESSAGE.replace(b"\n", b"\r\n")]


def _sized(n_args: int, total: int) -> list[str]:
    """HOST SENDER RECIP... (``n_args`` in all) whose request is ``total`` bytes."""
    args = ["x.org", "a@b.org"]
    room = total - 4 - 4 * n_args - sum(map(len, args))
    each, extra = divmod(room, n_args - 2)
    for i in range(n_args - 2):
        local = f"r{i}-"
        size = each + (1 if i < extra else 0) - len(local) - len("@x.org")
        args.append(local + "l" * size + "@x.org")
    return args


MAX_REQUEST = 1 << 20
HANDED = {  # name -> (args, handed to the worker when one runs)
    "no args": ([], True),
    "one arg": (["x.org"], True),
    "two args": (["x.org", "a@b.org"], True),
    "three args": (ARGS, True),
    "recipient with any bytes": (["x.org", "a@b.org", "\x01\xff é\t@x.org", "y@x.org"], True),
    "request of exactly 1 MiB": (_sized(10, MAX_REQUEST), True),
    "request of 1 MiB and a byte": (_sized(10, MAX_REQUEST + 1), False),
}


@pytest.mark.parametrize("case", list(HANDED))
def test_every_build_gives_the_same_bytes(clients: Clients, make_home, case: str) -> None:
    """Promise: the freestanding client, the one on the C library and the relaying one
    give qmail-rspawn the same bytes and exit status, and the SMTP server the same
    envelope and message, in-process (no worker, or a request over MAX_REQUEST) and
    through the worker (a request up to MAX_REQUEST): the same bytes both ways."""
    from tests.support.smtpsink import Sink

    args, handed = HANDED[case]
    sink = Sink().start()
    home = worker_home(make_home, **relay_files(sink.port))
    clients.use(home)
    seen = {}
    worker = None
    try:
        for mode in ("in-process", "worker"):
            if mode == "worker":
                worker = WorkerProcess(home).start()
            for kind in ("c", "libc", "relay"):
                before = len(sink.received)
                argv, env = clients.command(kind, args)
                result = spawn(argv, MESSAGE, env)
                got = [(r.mail_from, r.rcpt_tos, r.content) for r in sink.received[before:]]
                seen[mode, kind] = (result.returncode, result.output, got)
        assert worker is not None
        deliveries = worker.wait_deliveries(3) if handed else worker.deliveries()
    finally:
        sink.stop()
        if worker:
            worker.close()
    first = seen["in-process", "c"]
    assert all(other == first for other in seen.values()), seen
    assert first[0] == 0
    if case == "three args":
        assert first[1].startswith(b"r\0K127.0.0.1 accepted message.\n")
        assert first[2] == [("a@b.org", ["y@x.org"], MESSAGE.replace(b"\n", b"\r\n"))]
    assert len(deliveries) == (3 if handed else 0), deliveries


class ScriptedWorker:
    """A worker of this user at the fallback's socket that acks (or answers ``ack``)
    each request and writes ``chunks`` into its report descriptor, then closes."""

    def __init__(self, path: Path, chunks: list[bytes], ack: bytes = b"A") -> None:
        import socket
        import threading

        self.chunks, self.ack = chunks, ack
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.path = path
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        from qremote.worker import protocol

        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            request = protocol.read_request(conn)
            try:
                conn.sendall(self.ack)
                conn.close()
                for chunk in self.chunks:
                    os.write(request.fds[1], chunk)
            except BrokenPipeError:
                pass  # the client has gone in-process: nobody reads this pipe
            finally:
                protocol.close_all(request.fds)

    def close(self) -> None:
        from tests.support.listener import close_listener

        close_listener(self.sock, self.thread)
        self.path.unlink(missing_ok=True)


VANISHED = (b"Zqremote worker vanished before it finished the delivery; it will be tried "
            b"again. (#4.3.0)\nroute=- local=- remote=- tls=none auth=none\0")
HUGE = b"r" + b"x" * ((1 << 20) - 2)  # with its NUL: the longest record relayed
# name -> (what the worker writes, what qmail-rspawn must read)
RELAYED = {
    "a whole report": ([b"r\0Kok\nroute=r\0"], b"r\0Kok\nroute=r\0"),
    "in bytes one by one": ([bytes([b]) for b in b"r\0h no\0Kok\0"], b"r\0h no\0Kok\0"),
    "nothing": ([], VANISHED),
    "recipients only": ([b"r\0h no\0"], b"r\0h no\0" + VANISHED),
    "a report cut short": ([b"r\0Kaccepted"], b"r\0" + VANISHED),
    "bytes after the K": ([b"Kok\0junk", b"more\0"], b"Kok\0"),
    "the longest record": ([HUGE + b"\0Zlater\0"], HUGE + b"\0Zlater\0"),
    "a record too long": ([HUGE + b"y\0Kok\0"], b"Kok\0"),
    "a record too long, unended": ([HUGE * 2], VANISHED),
}


@pytest.mark.parametrize("case", list(RELAYED))
def test_relay_mode_copies_the_same_bytes_in_both_builds(fallback: Fallback,
                                                         case: str) -> None:
    """Promise (relay mode): complete reports are copied up to the K, Z or D; an
    incomplete end is dropped and a Z added, so qmail-rspawn never reads a D the
    worker did not write; a record longer than 1 MiB is skipped. The freestanding
    build (its malloc, realloc and memcpy) copies exactly what the C library's does."""
    chunks, wanted = RELAYED[case]
    outputs = []
    for kind in ("relay", "relay-libc"):
        worker = ScriptedWorker(fallback.dir / "no-worker.sock", chunks)
        try:
            outputs.append(fallback.run(kind, ARGS))
        finally:
            worker.close()
    assert outputs[0] == outputs[1]
    got = outputs[0]
    assert (got.returncode, got.stdout, got.stderr, got.record) == (0, wanted, b"", None)
    assert rspawn_report(0, got.stdout)[:1] in (b"K", b"Z")


@pytest.mark.parametrize("kind", list(BUILDS))
def test_anything_but_the_ack_means_in_process(fallback: Fallback, kind: str) -> None:
    """A listener that answers another byte than the ack has not taken the delivery:
    the client runs the fallback, and what the listener wrote is not relayed."""
    worker = ScriptedWorker(fallback.dir / "no-worker.sock", [b"Kforged\0"], ack=b"N")
    try:
        got = fallback.run(kind, ARGS)
    finally:
        worker.close()
    assert got.record is not None and got.returncode == 0
    assert got.stdout == (b"Kok\0" if kind.startswith("relay") else b"Kforged\0Kok\0")


@pytest.mark.parametrize("socket_state", ["missing", "stale", "no directory"])
def test_a_long_socket_path_leaves_the_working_directory_alone(
        fallback: Fallback, tmp_path: Path, socket_state: str) -> None:
    """A socket path longer than sun_path is reached from its directory (chdir); the
    fallback must still run where the client was started, in both builds, also when
    that directory has been removed."""
    deep = tmp_path / ("d" * 70) / ("e" * 70)
    if socket_state != "no directory":
        deep.mkdir(parents=True)
    sock_path = deep / "qremote.sock"
    if socket_state == "stale":
        import socket

        dir_fd = os.open(deep, os.O_PATH)
        try:
            with socket.socket(socket.AF_UNIX) as listener:  # bound, never listening
                listener.bind(f"/proc/self/fd/{dir_fd}/qremote.sock")
        finally:
            os.close(dir_fd)
        assert sock_path.exists()
    assert len(os.fsencode(sock_path)) > 108
    start = tmp_path / "start"
    start.mkdir()
    outcomes = {}
    for only in ("freestanding", "static"):
        built = build_client(fallback.home, fallback.python, tmp_path / f"qr-{only}",
                             socket=sock_path, only=only)
        assert built.path is not None, built.reason
        got = fallback.run("c", ARGS, binary=built.path, cwd=start)
        assert got.record is not None and got.record["cwd"] == str(start), got
        assert got[:3] == (0, b"Kok\0", b"")
        gone = tmp_path / "gone"
        gone.mkdir()
        removed = fallback.run("c", ARGS, binary=built.path, cwd=gone,
                               preexec=lambda: gone.rmdir())  # noqa: B023 (run at once)
        assert removed.record is not None
        assert removed.record["cwd"] == f"{gone} (deleted)", removed.record["cwd"]
        outcomes[only] = (got, removed)
    assert outcomes["freestanding"] == outcomes["static"]


@pytest.mark.parametrize("kind", list(BUILDS))
def test_the_self_test_never_asks_the_worker(fallback: Fallback, kind: str) -> None:
    """``qmail-remote --self-test`` (install's test of this very program) runs the
    fallback even when a worker listens: what it proves is the in-process path."""
    worker = ScriptedWorker(fallback.dir / "no-worker.sock", [b"Kforged\0"])
    try:
        got = fallback.run(kind, ["--self-test"])
    finally:
        worker.close()
    assert got.record is not None and (got.returncode, got.stdout) == (0, b"Kok\0")


@pytest.mark.parametrize("kind", ["relay", "relay-libc"])
def test_relay_mode_survives_a_reader_gone(fallback: Fallback, kind: str) -> None:
    """Relay mode writes into qmail-rspawn's pipe: with its reader gone the write fails
    (EPIPE, SIGPIPE ignored) and the client still reads the worker to its end and
    exits 0, instead of dying of SIGPIPE."""
    worker = ScriptedWorker(fallback.dir / "no-worker.sock", [b"r\0", b"Kok\0"])
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([str(fallback.binaries[kind]), *ARGS], input=MESSAGE,
                              stdout=write_end, stderr=write_end, env={}, timeout=60)
    finally:
        os.close(write_end)
        worker.close()
    assert done.returncode == 0
