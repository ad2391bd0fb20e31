"""``qremote worker``: one long-lived process delivering for every ``qmail-remote``.

Life of the process:

1. :meth:`Server.open` makes sure the user deliveries run as (``qmailr``, or the owner of
   qmail's ``queue/lock/tcpto``) can reach the Python files it runs from (else it
   refuses to start), creates the unix socket (mode 0600, owned by that user), taking
   over a stale socket file but never a live worker's, imports what deliveries use,
   then drops privileges to that user (its groups, then gid, then uid; checked: root
   cannot be regained) and empties its environment, as qmail-start does.
2. :meth:`Server.serve` starts the delivery threads (small stack) and waits for
   signals. Each idle delivery thread waits in ``accept(2)`` on the listening socket,
   which the kernel hands each new connection to exactly one of them (no thread in
   between: a hand-off would cost a wake-up a delivery); the thread that takes the
   last idle place starts a new one first, so there are as many threads as
   deliveries in flight and one more. Each connection's peer credentials
   (``SO_PEERCRED``) are checked first: only root and the worker's own user are
   served, any other is closed unread. Then: read the request and its two
   descriptors, ack, deliver through the engine, write the whole report in one
   ``write(2)``, close.
3. SIGTERM (or SIGINT) drains: the listening socket is shut down first (new clients
   are refused and deliver in-process; the threads waiting in accept wake and end),
   deliveries already acked finish (for at most ``timeoutremote`` seconds), then the
   process exits 0. A second signal exits at once.

Whatever happens, a delivery is either not acked (the client delivers it in-process)
or acked and then reported by this process; if the process dies first, its copies of
the descriptors close unwritten and qmail-rspawn reads "no output": ``Z``, retried.

One line a delivery goes to standard output (for multilog), written in one
``write(2)`` so that lines from several threads never interleave.
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from qremote.delivery.report import clean
from qremote.errors import QremoteError
from qremote.worker import protocol
from qremote.worker.status import Delivery, Status

STACK_SIZE = 256 * 1024  # per delivery thread; only the pages touched cost memory
IDLE_THREAD = 60  # seconds: a delivery thread idle this long ends
REQUEST_TIMEOUT = 30  # seconds: a client sends its request at once; a stuck one is dropped
# The connection stays blocking, its timeouts kept by the kernel: Python's own
# (settimeout) would cost a poll before each read and write.
_REQUEST_TIMEVAL = struct.pack("@ll", REQUEST_TIMEOUT, 0)
GC_THRESHOLD = 20_000  # allocations between young collections (Python's default: 700)
DEFAULT_DRAIN = 1200.0  # qmail's timeoutremote, when the control file cannot be read
_STOP = 0  # written into the wakeup pipe by stop(); signals write their number


class DeliveryEngine(Protocol):
    """What the worker needs from the delivery engine (:class:`qremote.delivery.engine.Engine`)."""

    def deliver(self, argv: Sequence[bytes], message: int,
                progress: Callable[[str], None] | None = None) -> bytes: ...


class Account(NamedTuple):
    """The user deliveries run as."""

    name: str
    uid: int
    gid: int
    groups: list[int]


def account(name: str) -> Account:
    """The account called ``name`` (a user name, as in ``/etc/passwd``)."""
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise QremoteError(f"no user {name!r} on this system (qmail's qmailr; pass "
                           "--user NAME)") from None
    return Account(name, entry.pw_uid, entry.pw_gid,
                   sorted(set(os.getgrouplist(name, entry.pw_gid))))


def current_account() -> Account:
    """The account this process runs as."""
    import pwd

    uid = os.geteuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return Account(name, uid, os.getegid(), sorted(set(os.getgroups())))


def drop_privileges(to: Account) -> None:
    """Become ``to`` for good: its groups, gid and uid (real, effective and saved).

    Raises :class:`QremoteError` if anything is left of the old identity."""
    os.setgroups(to.groups)
    os.setgid(to.gid)
    os.setuid(to.uid)
    if os.getresuid() != (to.uid,) * 3 or os.getresgid() != (to.gid,) * 3:
        raise QremoteError(f"dropping privileges to {to.name} left uids "
                           f"{os.getresuid()} gids {os.getresgid()}")
    if to.uid != 0:
        try:
            os.setuid(0)
        except PermissionError:
            return
        raise QremoteError(f"after dropping to {to.name}, setuid(0) still succeeds")


def internal_error(exc: BaseException) -> bytes:
    """A ``Z`` report for an exception the engine let through (never a bounce)."""
    text = f"qremote worker internal error: {type(exc).__name__}: {exc} (#4.3.0)"
    return ("Z" + text.replace("\0", " ")[:900] + "\nroute=- local=- remote=- "
            "tls=none auth=none\0").encode("utf-8", "replace")


# Stages that start or end an attempt: one log line each (CONTRACT section 7).
ATTEMPT_STAGES = ("connect ", "reuse ", "failed ")


def run_engine(engine: DeliveryEngine, args: list[bytes], message_fd: int,
               delivery: Delivery, log: Callable[[str], None] | None = None) -> bytes:
    """The one call into the delivery engine: the reports of one delivery.

    The engine's progress goes to ``delivery`` (``qremote status`` shows the stage),
    and each attempt's start and failure to ``log``."""
    delivery.set_stage("delivering")

    def progress(stage: str) -> None:
        delivery.set_stage(stage)
        if log is not None and stage.startswith(ATTEMPT_STAGES):
            log(f"for delivery {delivery.id}: {stage}")

    try:
        return engine.deliver(args, message_fd, progress=progress)
    except BaseException as exc:  # the engine reports every failure; this is a last guard
        return internal_error(exc)


def write_report(fd: int, report: bytes) -> None:
    """Write the whole report into ``fd`` in one ``write(2)`` (atomic up to PIPE_BUF)."""
    data = protocol.fit_report(report)
    while data:  # more than once only for a report that could not be made to fit
        data = data[os.write(fd, data):]


def letter_of(report: bytes) -> str:
    """The message report's letter (K, Z or D), or ``?``."""
    records = report.split(b"\0")
    last = records[-2] if len(records) >= 2 else b""
    return chr(last[0]) if last[:1] in (b"K", b"Z", b"D") else "?"


def _summary(report: bytes) -> str:
    """The message report's first line and its detail line, for the log."""
    records = report.split(b"\0")
    message = records[-2] if len(records) >= 2 else report
    lines = message.decode("utf-8", "replace").split("\n")
    first = lines[0][1:][:300]
    return f"{lines[-1]}: {first}" if len(lines) > 1 else first


def _raise_fd_limit() -> None:
    """Raise the soft limit on open files to the hard one: each delivery in flight
    holds three (the message, the report pipe, the SMTP connection), and a soft limit
    of 1024 (systemd's default) would cap deliveries in flight near 340."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


def _warm_dns() -> None:
    """Parse a DNS answer of each type deliveries ask for (MX, A, AAAA, PTR, with CNAME,
    SOA and EDNS): dnspython imports its record types at their first use."""
    import dns.message
    import dns.rrset

    query = dns.message.make_query("example.com.", "MX", use_edns=0)
    answer = dns.message.make_response(query)
    for name, rdtype, text in (("example.com.", "MX", "10 mx.example.com."),
                               ("mx.example.com.", "A", "192.0.2.1"),
                               ("mx.example.com.", "AAAA", "2001:db8::1"),
                               ("www.example.com.", "CNAME", "mx.example.com."),
                               ("1.2.0.192.in-addr.arpa.", "PTR", "mx.example.com.")):
        answer.answer.append(dns.rrset.from_text(name, 300, "IN", rdtype, text))
    answer.authority.append(dns.rrset.from_text(
        "example.com.", 300, "IN", "SOA", "ns.example.com. h.example.com. 1 2 3 4 5"))
    dns.message.from_wire(answer.to_wire())


def _settle_garbage_collector() -> None:
    """Keep the cycle collector off what start-up made: the modules, the configuration
    and the warm caches live as long as the process, yet a full collection walked all of
    them again and again (8 % of a delivery's CPU, measured with perf). Freeze them out
    of its sight, and let it run less often: a delivery makes few cycles."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


def keep_to_one_cpu() -> str:
    """Keep this thread, and every thread it starts from now on, on one CPU of those
    allowed (the last: the first usually takes the most interrupts); the worker's log
    line saying where its delivery threads run (also when the process may use one CPU
    only, or the system refuses: a seccomp filter, systemd's
    ``SystemCallFilter=~@resources``).

    Why: the delivery threads run Python one at a time, under one interpreter lock.
    On several CPUs each hand-over of the lock wakes a thread on another CPU (an
    inter-processor interrupt, a trap under a hypervisor) while the CPU that let it go
    idles: at 200 deliveries in flight the worker spent 0.70 ms of CPU a delivery
    spread, 0.26 ms on one CPU, and delivered twice as many messages a second
    (bench/warm_path.py). System calls still run in parallel with the other CPUs'
    processes (the clients, qmail)."""
    try:
        allowed = os.sched_getaffinity(0)
    except (AttributeError, OSError) as exc:
        return f"worker: delivery threads on any CPU (cannot read the CPUs allowed: {exc})"
    cpu = max(allowed)
    if len(allowed) < 2:
        return f"worker: delivery threads on CPU {cpu} (the only one this process may use)"
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:
        return (f"worker: delivery threads on CPUs {_cpu_list(allowed)} (cannot keep "
                f"them to CPU {cpu}: {exc.strerror or exc}; they run slower spread)")
    return (f"worker: delivery threads on CPU {cpu} (they share one interpreter lock; "
            "--all-cpus spreads them)")


def _cpu_list(cpus: set[int]) -> str:
    """``0-3,6`` for {0, 1, 2, 3, 6}, as taskset and /proc write CPU lists."""
    ranges: list[list[int]] = []
    for cpu in sorted(cpus):
        if ranges and cpu == ranges[-1][-1] + 1:
            ranges[-1][1:] = [cpu]
        else:
            ranges.append([cpu])
    return ",".join("-".join(map(str, r)) for r in ranges)


def _stdout_line(text: str) -> None:
    try:
        # control bytes from a remote or an envelope never reach the log raw
        os.write(1, (clean(text.replace("\n", " ")) + "\n").encode("utf-8", "replace"))
    except OSError:
        pass  # the log reader is gone: deliveries go on


class Server:
    """The worker for the qmail home ``home``."""

    def __init__(self, home: Path, socket_path: Path | None = None,
                 engine: DeliveryEngine | None = None,
                 log: Callable[[str], None] = _stdout_line) -> None:
        self.home = Path(os.path.abspath(home))
        self.socket_path = Path(os.path.abspath(socket_path or
                                                protocol.default_socket(self.home)))
        if engine is None:
            from qremote.delivery.engine import Engine

            engine = Engine(self.home, warm=True)
        self.engine = engine
        self.status = Status(self.socket_path)
        self.status.pool = getattr(engine, "pool", None)  # the connection cache
        self.log = log
        self.listener: socket.socket | None = None
        self.allowed: set[int] = {0}
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._pool_lock = threading.Lock()
        self._idle = 0  # delivery threads waiting in accept, or about to
        self._closing = False  # the listening socket is shut down: threads end

    # -- start-up ----------------------------------------------------------------

    def open(self, user: str | None = None, clear_environment: bool = True) -> Account:
        """Create the socket, give it to ``user`` and become that user.

        ``user`` defaults, when started as root, to the user qmail-remote runs as (the
        owner of qmail's ``queue/lock/tcpto``, else ``qmailr``); else to the current
        user (a worker not started as root cannot switch users). Refuses to start when
        that user could not run deliveries (the Python files out of its reach). Then,
        with ``clear_environment``, the environment is emptied, as qmail-start empties
        qmail-remote's: the same reports either way."""
        from qremote.qmailuser import remote_user, tcpto_owner

        lock_dir = self.socket_path.parent
        if not lock_dir.is_dir():
            raise QremoteError(f"{lock_dir} is not a directory; is {self.home} the qmail "
                               "home? (pass --qmail-home DIR)")
        me = current_account()
        why = "--user"
        if user is not None:
            target = account(user)
        elif me.uid == 0:
            name, why = remote_user(self.home)
            target = account(name)
        else:
            target, why = me, "not started as root: the user that started it"
        if me.uid != 0 and target.uid != me.uid:
            raise QremoteError(f"only root can run the worker as {target.name}; this "
                               f"process runs as {me.name}. Start qremote worker as root: "
                               f"it creates its socket, then becomes {target.name}")
        if me.uid == 0 and target.uid != 0:
            self._refuse_unreachable(target)
        try:
            self._take_over_stale()
            self.listener = self._listen(target)
        except OSError as exc:
            raise QremoteError(self._listen_error(exc, me)) from None
        _raise_fd_limit()
        self._warm()
        if me.uid == 0 and target.uid != 0:
            drop_privileges(target)
        if clear_environment:
            os.environ.clear()  # qmail-start gives qmail-remote an empty environment
        self.allowed = {0, target.uid}
        self.log(f"worker: deliveries run as {target.name} (uid {target.uid}, gid "
                 f"{target.gid}): {why}")
        owner = tcpto_owner(self.home)
        if owner is not None and owner != target.uid:
            from qremote.qmailuser import user_name

            self.log(f"worker: warning: qmail-remote runs as {user_name(owner)} (the owner "
                     f"of {self.home}/queue/lock/tcpto), which cannot use this worker's "
                     f"socket (only root and {target.name} may): its deliveries go "
                     f"in-process. Start the worker with --user {user_name(owner)}")
        try:
            self.engine_config_check()
        except Exception as exc:  # the engine reports it on each delivery anyway
            self.log(f"worker: warning: the configuration cannot be read yet: {exc}")
        return target

    def _listen(self, target: Account) -> socket.socket:
        """The listening socket, born 0600 and given to ``target``."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with protocol.socket_address(self.socket_path) as address:
                old = os.umask(0o177)  # the socket is born 0600: no moment of exposure
                try:
                    listener.bind(address)
                finally:
                    os.umask(old)
                # never through a symbolic link someone swapped in meanwhile
                os.chown(address, target.uid, target.gid, follow_symlinks=False)
                if not stat.S_ISSOCK(os.lstat(address).st_mode):
                    raise OSError(errno.EEXIST, f"{self.socket_path} is not our socket")
            listener.listen(socket.SOMAXCONN)
            # blocking accept in each idle thread; after a minute idle it fails (EAGAIN)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                                struct.pack("@ll", IDLE_THREAD, 0))
        except BaseException:
            listener.close()
            raise
        return listener

    def _listen_error(self, exc: OSError, me: Account) -> str:
        """What to say when the socket cannot be made: not as root, start it as root."""
        why = exc.strerror or str(exc)
        if me.uid != 0 and exc.errno in (errno.EACCES, errno.EPERM):
            from qremote.qmailuser import explain

            where = explain(self.socket_path.parent, os.W_OK | os.X_OK, me.name) or why
            return (f"cannot create its socket {self.socket_path}: {where}. Start qremote "
                    f"worker as root: it creates the socket in {self.socket_path.parent} "
                    f"(where qmail's users may not write), then runs the deliveries as "
                    f"qmail-remote's user for good (not setuidgid, chpst -u or User=)")
        return f"cannot listen on {self.socket_path}: {why}"

    def _refuse_unreachable(self, target: Account) -> None:
        """Refuse to start when ``target`` cannot reach the Python files this process
        runs from: after the drop, any module imported late would fail, and every
        delivery would defer (the in-process qmail-remote would deliver). Asked as that
        user, by a child that has dropped to it."""
        import sys

        from qremote.install import _start_problems, library_paths, venv_fix
        from qremote.qmailuser import QmailUser, run_as

        user = QmailUser(target.name, target.uid, target.gid, tuple(target.groups))
        try:
            problems = run_as(user, _start_problems, library_paths(), target.name)
        except OSError as exc:
            problems = [["the check", str(exc), None]]
        if not problems:
            return
        lines = [f"cannot run deliveries as {target.name} (uid {target.uid}, gid "
                 f"{target.gid}): it cannot reach the Python files this worker runs from, "
                 "so every delivery would defer; not started (qmail-remote delivers "
                 "in-process meanwhile)"]
        lines += [f"  {what}: {why}" for what, why, _ in problems]
        lines.append("Fix: " + venv_fix(target.name, sys.executable, "worker"))
        raise QremoteError("\n".join(lines))

    def _take_over_stale(self) -> None:
        """Remove a socket file nobody listens on; refuse to start beside a live worker."""
        path = self.socket_path
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise QremoteError(f"{path} exists and is not a socket; remove it or pass "
                               "--socket PATH")
        try:
            probe = protocol.connect(path, timeout=5)
        except ConnectionRefusedError:
            with protocol.socket_address(path) as address:
                os.unlink(address)
            return
        except PermissionError:
            raise  # not root: said by open()
        except OSError as exc:
            raise QremoteError(f"cannot check {path}: {exc.strerror}") from None
        probe.close()
        raise QremoteError(f"a worker already listens on {path}")

    def _warm(self) -> None:
        """Import what deliveries use now, before the drop of privileges, not in the
        first delivery (the user may not reach every file of Python's)."""
        import importlib

        for name in ("qremote.delivery.deliver", "qremote.delivery.connections",
                     "qremote.delivery.message", "qremote.delivery.session",
                     "qremote.delivery.smtp", "qremote.delivery.tcpto",
                     "qremote.control.cache", "qremote.control.addresses",
                     "qremote.planning.dns", "qremote.planning.helo",
                     "qremote.planning.ipme", "qremote.planning.mx",
                     "qremote.planning.planner", "ssl", "hmac", "base64", "ipaddress",
                     "zlib", "array", "fcntl", "encodings.idna", "dns.resolver",
                     "dns.reversename", "dns.exception", "dns.name", "dns.nameserver"):
            try:
                importlib.import_module(name)
            except ImportError:
                pass
        try:
            _warm_dns()
        except Exception:  # a warm-up only: deliveries import what is missing
            pass

    def engine_config_check(self) -> None:
        """Read the configuration once at start-up (with the engine's own loader)."""
        config = getattr(self.engine, "config", None)
        if callable(config) and (self.home / "control").is_dir():
            config()

    # -- the accept loop -------------------------------------------------------------

    def serve(self, stack_size: int = STACK_SIZE, one_cpu: bool = False) -> int:
        """Accept and deliver until SIGTERM/SIGINT (or :meth:`stop`); drain; exit status.

        ``one_cpu``: keep every thread of the process on one CPU (:func:`keep_to_one_cpu`)."""
        if self.listener is None:
            raise QremoteError("Server.open() first")
        if one_cpu:
            self.log(keep_to_one_cpu())
        threading.stack_size(stack_size)
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: None)  # the wakeup fd does the work
            signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        self.log(f"worker: pid {os.getpid()} uid {os.getuid()} gid {os.getgid()} "
                 f"listening on {self.socket_path} for {self.home}")
        _settle_garbage_collector()
        with self._pool_lock:
            self._idle += 1
        self._start_thread()
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        try:
            while True:
                events = poller.poll(1000)  # at least once a second: close idle ones
                if events and self._stop_asked():
                    break
                if self.status.pool is not None:
                    self.status.pool.reap()
            return self._drain()
        finally:
            if in_main:
                signal.set_wakeup_fd(-1)

    def stop(self) -> None:
        """Start draining (from another thread; SIGTERM does the same)."""
        try:
            os.write(self._wake_w, bytes([_STOP]))
        except BlockingIOError:
            pass

    def _stop_asked(self) -> bool:
        """Read the wakeup pipe: True for SIGTERM, SIGINT or :meth:`stop`."""
        try:
            data = os.read(self._wake_r, 512)
        except BlockingIOError:
            return False
        return any(b in (_STOP, signal.SIGTERM, signal.SIGINT) for b in data)

    def _start_thread(self) -> None:
        """Start a delivery thread, counted idle by the caller beforehand."""
        try:
            threading.Thread(target=self._thread, daemon=True).start()
        except RuntimeError as exc:  # no more threads: the others accept meanwhile
            with self._pool_lock:
                self._idle -= 1
            self.status.count("errors")
            self.log(f"worker: cannot start a thread: {exc}")

    def _thread(self) -> None:
        """A delivery thread: accept a connection, deliver, and again; gone after a
        minute idle (while another waits), or once the listening socket is shut down.

        ``_idle`` counts the threads waiting in accept (or on their way to it); the one
        that takes the last idle place starts another first: a client never waits for
        a thread."""
        assert self.listener is not None
        listener = self.listener
        while True:
            try:
                conn, _ = listener.accept()
            except BlockingIOError:  # a minute without a connection (SO_RCVTIMEO)
                with self._pool_lock:
                    if self._idle > 1:
                        self._idle -= 1
                        return
                continue
            except OSError as exc:
                if self._closing:
                    with self._pool_lock:
                        self._idle -= 1
                    return
                # EMFILE and the like: say it, keep serving
                self.log(f"worker: accept failed: {exc.strerror}")
                time.sleep(0.1)
                continue
            with self._pool_lock:
                self._idle -= 1
                more = self._idle == 0
                if more:
                    self._idle += 1
            if more:
                self._start_thread()
            self._serve(conn)
            with self._pool_lock:
                self._idle += 1

    def _serve(self, conn: socket.socket) -> None:
        """One accepted connection: its peer checked, then its request handled."""
        try:
            pid, uid, _gid = protocol.peer_credentials(conn)
        except OSError:
            conn.close()
            return
        if uid not in self.allowed:
            conn.close()  # unread: the client delivers in-process, as itself
            self.status.count("refused")
            self.log(f"worker: refused a connection from uid {uid} pid {pid}")
            return
        self._handle(conn, pid)

    def _drain(self) -> int:
        """Shut the listening socket, let acked deliveries finish, return 0."""
        assert self.listener is not None
        self._closing = True
        try:  # first: from now on clients are refused and deliver in-process
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the threads in accept
        except OSError:
            self.listener.close()
        try:
            return self._wait_drained()
        finally:
            self.listener.close()  # connections still queued: not acked, in-process

    def _wait_drained(self) -> int:
        """Let acked deliveries finish (for at most ``timeoutremote``); return 0."""
        left = self.status.drain()
        deadline = self._drain_seconds()
        self.log(f"worker: draining: {left} deliveries in flight, waiting up to "
                 f"{deadline:g} s; new deliveries go in-process")
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        end = time.monotonic() + deadline
        while not self.status.wait_idle(0):
            remaining = end - time.monotonic()
            if remaining <= 0:
                self.log(f"worker: stopped with {len(self.status.in_flight)} deliveries "
                         "unfinished (qmail retries them)")
                return 0
            # wake up for a delivery that ends (checked often) or a second signal
            if poller.poll(min(remaining, 0.05) * 1000) and self._stop_asked():
                self.log(f"worker: second signal: stopped with "
                         f"{len(self.status.in_flight)} deliveries unfinished "
                         "(qmail retries them)")
                return 0
        self.log("worker: stopped (drained)")
        if self.status.pool is not None:
            self.status.pool.close_all()
        return 0

    def _drain_seconds(self) -> float:
        try:
            text = (self.home / "control" / "timeoutremote").read_text().split()
            return float(int(text[0])) if text else DEFAULT_DRAIN
        except (OSError, ValueError):
            return DEFAULT_DRAIN

    # -- one delivery ----------------------------------------------------------------

    def set_stage(self, delivery: Delivery, stage: str) -> None:
        """Record the stage of ``delivery`` (a seam: tests stop the worker here)."""
        delivery.set_stage(stage)

    def _handle(self, conn: socket.socket, client_pid: int) -> None:
        fds: list[int] = []
        delivery: Delivery | None = None
        letter: str | None = None
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _REQUEST_TIMEVAL)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _REQUEST_TIMEVAL)
            try:
                request = protocol.read_request(conn)
            except protocol.NoRequest:
                return  # a bare connect, as a second worker's check makes
            except (OSError, protocol.ProtocolError) as exc:
                if isinstance(exc, BlockingIOError):  # SO_RCVTIMEO ran out
                    exc = TimeoutError("timed out")
                self.status.count("errors")
                self.log(f"worker: dropped a request from pid {client_pid}: {exc}")
                return
            fds = request.fds
            if request.kind == protocol.STATUS:
                conn.sendall(protocol.ACK + json.dumps(self.status.snapshot()).encode())
                return
            delivery = self.status.begin(client_pid, request.args)
            if delivery is None:
                return  # draining: not acked, the client delivers in-process
            self.set_stage(delivery, "accepted")
            try:
                conn.sendall(protocol.ACK)
            except OSError:
                return  # the client is gone: not acked, not delivered
            conn.close()
            self.set_stage(delivery, "acked")
            message_fd, report_fd = fds
            report = run_engine(self.engine, request.args, message_fd, delivery,
                                self.log)
            letter = letter_of(report)
            self.set_stage(delivery, "reporting")
            try:
                write_report(report_fd, report)
            except OSError as exc:
                self.log(f"delivery {delivery.id}: the report could not be written "
                         f"({exc.strerror}): {_summary(report)}")
            else:
                age = time.monotonic() - delivery.started
                self.log(f"delivery {delivery.id}: {letter} {age:.3f}s {delivery.host} "
                         f"rcpts={delivery.recipients} {_summary(report)}")
        except Exception as exc:  # never let a thread die silently
            self.log(f"worker: internal error: {type(exc).__name__}: {exc}")
        finally:
            protocol.close_all(fds)
            conn.close()
            if delivery is not None:
                self.status.end(delivery, letter if letter != "?" else None)
