"""A real qmail (notqmail from ../shared/reference), built, installed and running, with
qremote installed in place of its qmail-remote.

The whole of qmail is built as an operator builds it (``make setup check``, one job at a
time) with its own ``conf-qmail`` (a qmail home under a 0755 directory in /tmp, so that
qmail's users can reach it), ``conf-users`` and ``conf-groups``. qmail compiles the user
and group NAMES in and looks them up when its programs start, so the build uses names of
its own (``qmtXXXXX-qmailr`` ...), created with ``useradd`` for the session and deleted
at the end: a real qmail's accounts on the host are never touched.

qremote is installed as README says: a venv made from the system's Python in a 0755
directory (:func:`tests.support.users.make_venv`), then ``qremote install --user`` that
qmailr, which tests the wrapper as that user before it replaces ``bin/qmail-remote``.

qmail then runs as on a server: ``qmail-start ./Maildir/`` with an empty environment but
``PATH=QMAIL_HOME/bin:...``, in a session of its own; qmail-send logs to its standard
output, which goes to a file (:attr:`RealQmail.log`) that the tests read with deadlines.
Mail is put in the queue with qmail's own ``qmail-queue``. qmail-send is stopped with
SIGTERM, as svc -d does, and every process of its session must then end.

Needs root, ``cc``, ``make`` and useradd; without them :func:`unavailable` says why, and
the fixture skips.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support import reference
from tests.support.users import make_public_dir

# conf-users, in qmail's order (the 4th, the owner of the binaries, stays root).
USER_ROLES = ("alias", "qmaild", "qmaill", "root", "qmailp", "qmailq", "qmailr", "qmails")
# conf-groups: the qmail group, then nofiles.
GROUP_ROLES = ("qmail", "nofiles")
# Which group each user gets (INSTALL.ids.md).
USER_GROUP = {"alias": "nofiles", "qmaild": "nofiles", "qmaill": "nofiles",
              "qmailp": "nofiles", "qmailq": "qmail", "qmailr": "qmail", "qmails": "qmail"}
SBIN_TOOLS = ("useradd", "userdel", "groupadd", "groupdel")
BUILD_TIMEOUT = 900


def _sbin(tool: str) -> str | None:
    for path in (f"/usr/sbin/{tool}", f"/sbin/{tool}", shutil.which(tool)):
        if path and os.access(path, os.X_OK):
            return path
    return None


def unavailable() -> str | None:
    """Why a real qmail cannot be built and run here, or None when it can."""
    if not reference.TARBALL.is_file():
        return (f"qmail's source is not here ({reference.TARBALL} is missing): the real "
                "qmail test needs ../shared/reference beside the checkout")
    for tool in ("make", "cc"):
        if shutil.which(tool) is None:
            return f"building qmail for the real qmail test needs '{tool}', and it is missing"
    if os.geteuid() != 0:
        return ("the real qmail test needs root (qmail-start drops to qmail's users; CI "
                "runs as root)")
    for tool in SBIN_TOOLS:
        if _sbin(tool) is None:
            return f"the real qmail test needs '{tool}' to create qmail's users"
    return None


class Accounts:
    """qmail's users and groups under names of this session; removes only those it
    created."""

    def __init__(self, home: Path, prefix: str | None = None) -> None:
        self.prefix = prefix or f"qmt{uuid.uuid4().hex[:5]}-"
        self.home = home
        self.users = {role: (self.prefix + role if role != "root" else "root")
                      for role in USER_ROLES}
        self.groups = {role: self.prefix + role for role in GROUP_ROLES}
        self.created_users: list[str] = []
        self.created_groups: list[str] = []

    def conf_users(self) -> str:
        return "".join(f"{self.users[role]}\n" for role in USER_ROLES)

    def conf_groups(self) -> str:
        return "".join(f"{self.groups[role]}\n" for role in GROUP_ROLES)

    def create(self) -> None:
        """groupadd and useradd as INSTALL.ids.md says, for each one missing."""
        import grp
        import pwd

        for name in self.groups.values():
            try:
                grp.getgrnam(name)
            except KeyError:
                _run([_sbin("groupadd"), "--system", name])
                self.created_groups.append(name)
        for role, group in USER_GROUP.items():
            name = self.users[role]
            try:
                pwd.getpwnam(name)
                continue
            except KeyError:
                pass
            home = self.home / "alias" if role == "alias" else self.home
            _run([_sbin("useradd"), "--system", "--no-create-home", "--no-user-group",
                  "--gid", self.groups[group], "--home-dir", str(home),
                  "--shell", "/usr/sbin/nologin", name])
            self.created_users.append(name)

    def remove(self) -> None:
        """userdel and groupdel what :meth:`create` created."""
        for name in reversed(self.created_users):
            subprocess.run([_sbin("userdel"), name], capture_output=True)
        for name in reversed(self.created_groups):
            subprocess.run([_sbin("groupdel"), name], capture_output=True)
        self.created_users.clear()
        self.created_groups.clear()

    def uid(self, role: str) -> int:
        import pwd

        return pwd.getpwnam(self.users[role]).pw_uid

    def gid(self, role: str) -> int:
        import grp

        return grp.getgrnam(self.groups[role]).gr_gid


def _run(args: list[str | None], **kwargs) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run([str(a) for a in args], capture_output=True, **kwargs)
    if done.returncode != 0:
        out = (done.stdout + done.stderr).decode(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(str(a) for a in args)} failed "
                           f"(exit {done.returncode}):\n{out}")
    return done


def build(root: Path, accounts: Accounts, home: Path) -> float:
    """Extract notqmail under ``root`` and ``make setup check`` it for ``home`` and
    ``accounts``' names (users must exist: setup gives files to them). Returns the
    seconds it took."""
    started = time.monotonic()
    with tarfile.open(reference.TARBALL) as tar:
        tar.extractall(root, filter="data")
    (src,) = [p for p in root.iterdir() if p.name.startswith("notqmail")]
    (src / "conf-qmail").write_text(f"{home}\n")
    (src / "conf-users").write_text(accounts.conf_users())
    (src / "conf-groups").write_text(accounts.conf_groups())
    # Man pages are not the point: NROFF=true spares the need for groff.
    _run(["make", "-j1", "NROFF=true", "setup", "check"], cwd=src, timeout=BUILD_TIMEOUT,
         env={**os.environ, "MAKEFLAGS": ""})
    return time.monotonic() - started


@dataclass
class Delivery:
    """One delivery as qmail-send logs it (``starting delivery N`` / ``delivery N:``)."""

    number: int
    msg: int
    channel: str  # local or remote
    recipient: str
    result: str | None  # success, deferral, failure; None while in progress
    raw: str  # the report as logged (spaces are _, line breaks /)
    pos: int  # where its "starting delivery" line is in the log (msg numbers are
    # inode numbers: a later message may have the same)

    @property
    def lines(self) -> list[str]:
        """The report's lines, as far as qmail-send's log lets one tell (``_`` back to
        spaces)."""
        return [line.replace("_", " ") for line in self.raw.rstrip("/").split("/")]


_START = re.compile(r"^starting delivery (\d+): msg (\d+) to (local|remote) (\S+)$")
_DONE = re.compile(r"^delivery (\d+): (success|deferral|failure): (.*)$")


def logsafe(text: str) -> str:
    """``text`` as qmail-send writes it into its log (qsutil.c's logsafe)."""
    out = []
    for ch in text:
        if ch == "\n":
            out.append("/")
        elif ch == "%" or ord(ch) < 33 or ord(ch) > 126:
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


class RealQmail:
    """A built and installed qmail at ``home``; :meth:`start` runs it."""

    def __init__(self, root: Path, home: Path, accounts: Accounts) -> None:
        self.root = root
        self.home = home
        self.accounts = accounts
        self.log = root / "qmail-send.log"
        self.proc: subprocess.Popen[bytes] | None = None

    # -- files ------------------------------------------------------------------

    def write_control(self, name: str, text: str, mode: int = 0o644,
                      group: int | None = None) -> Path:
        """Write ``control/NAME`` (a new inode, renamed into place), root-owned."""
        path = self.home / "control" / name
        tmp = path.with_name(f".{name}.new")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            os.fchown(fh.fileno(), 0, 0 if group is None else group)
            os.fchmod(fh.fileno(), mode)
            fh.write(text)
        os.replace(tmp, path)
        return path

    def maildir(self) -> Path:
        """The Maildir where mail for any local address ends (the alias user's)."""
        return self.home / "alias" / "Maildir"

    def setup_alias(self) -> None:
        """Every local address (no such user) goes to ~alias/Maildir/: bounces land
        there."""
        uid, gid = self.accounts.uid("alias"), self.accounts.gid("nofiles")
        alias = self.home / "alias"
        for sub in ("", "tmp", "new", "cur"):
            path = self.maildir() / sub
            path.mkdir(mode=0o700, exist_ok=True)
            os.chown(path, uid, gid)
        dot = alias / ".qmail-default"
        dot.write_text("./Maildir/\n")
        os.chown(dot, uid, gid)
        dot.chmod(0o644)

    # -- running ----------------------------------------------------------------

    def start(self, timeout: float = 60) -> None:
        """``qmail-start ./Maildir/`` as qmail's rc script runs it; returns once
        qmail-send has logged its first status line."""
        with open(self.log, "ab") as logfile:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [str(self.home / "bin" / "qmail-start"), "./Maildir/"],
                stdin=subprocess.DEVNULL, stdout=logfile, stderr=logfile, cwd="/",
                env={"PATH": f"{self.home}/bin:/usr/local/bin:/usr/bin:/bin"},
                start_new_session=True)
        self.wait_log(lambda text: "status: local 0/" in text, timeout,
                      "qmail-send's first status line")

    @property
    def pid(self) -> int:
        """qmail-send's pid (qmail-start execs it)."""
        assert self.proc is not None
        return self.proc.pid

    def run_now(self) -> None:
        """SIGALRM: qmail-send retries every message in the queue now."""
        os.kill(self.pid, signal.SIGALRM)

    def stop(self, timeout: float = 60) -> list[str]:
        """SIGTERM to qmail-send; wait for it and for every process of its session
        (lspawn, rspawn, clean, deliveries). Returns what was still running at the
        deadline and had to be killed (nothing, normally)."""
        if self.proc is None:
            return []
        pgid = self.proc.pid
        leftover: list[str] = []
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                leftover.append(f"qmail-send (pid {self.proc.pid}) ignored SIGTERM")
        deadline = time.monotonic() + timeout
        while (alive := session_processes(pgid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive:
            leftover += [f"pid {pid} ({user}): {cmd}" for pid, cmd, user in alive]
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        return leftover

    # -- the queue ----------------------------------------------------------------

    def queue(self, sender: str, recipients: list[str], message: bytes) -> None:
        """Put a message in the queue with qmail-queue (envelope on fd 1, as qmail's
        programs do)."""
        envelope = (b"F" + sender.encode() + b"\0"
                    + b"".join(b"T" + r.encode() + b"\0" for r in recipients) + b"\0")
        read_end, write_end = os.pipe()
        try:
            os.write(write_end, envelope)  # a few hundred bytes: fits the pipe
            os.close(write_end)
            write_end = -1
            done = subprocess.run([str(self.home / "bin" / "qmail-queue")], input=message,
                                  stdout=read_end, stderr=subprocess.PIPE, env={},
                                  cwd="/", timeout=60)
        finally:
            os.close(read_end)
            if write_end != -1:
                os.close(write_end)
        if done.returncode != 0:
            raise RuntimeError(f"qmail-queue failed with exit {done.returncode}: "
                               f"{done.stderr.decode(errors='replace')}")

    def qstat(self) -> tuple[int, int]:
        """qmail-qstat: (messages in queue, not yet preprocessed)."""
        out = _run([self.home / "bin" / "qmail-qstat"], env={"PATH": "/usr/bin:/bin"},
                   timeout=30).stdout.decode()
        counts = re.findall(r": (\d+)$", out, re.M)
        return int(counts[0]), int(counts[1])

    def wait_empty(self, timeout: float = 60) -> None:
        """Wait until the queue is empty, telling qmail-send about once a second to
        retry what is left now."""
        last_nudge = 0.0

        def empty(_text: str) -> bool:
            nonlocal last_nudge
            if self.qstat() == (0, 0):
                return True
            if time.monotonic() - last_nudge > 1:
                last_nudge = time.monotonic()
                self.run_now()
            return False

        self.wait_log(empty, timeout, "an empty queue")

    def qread(self) -> str:
        """qmail-qread's listing of the queue."""
        return _run([self.home / "bin" / "qmail-qread"], env={}, cwd="/",
                    timeout=30).stdout.decode(errors="replace")

    # -- the log --------------------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def deliveries(self, text: str | None = None) -> list[Delivery]:
        """Every delivery in the log, in the order they started."""
        found: dict[int, Delivery] = {}
        pos = 0
        for line in (self.log_text() if text is None else text).splitlines(keepends=True):
            here, pos = pos, pos + len(line)
            line = line.rstrip("\n")
            if m := _START.match(line):
                num = int(m[1])
                found[num] = Delivery(num, int(m[2]), m[3], m[4], None, "", here)
            elif (m := _DONE.match(line)) and int(m[1]) in found:
                found[int(m[1])].result = m[2]
                found[int(m[1])].raw = m[3]
        return list(found.values())

    def wait_end(self, delivery: Delivery, timeout: float = 60) -> None:
        """Wait until qmail-send is done with the message of ``delivery``
        (``end msg``)."""
        line = f"\nend msg {delivery.msg}\n"
        self.wait_log(lambda text: text.find(line, delivery.pos) != -1, timeout,
                      f"end msg {delivery.msg}")

    def wait_log(self, ready: Callable[[str], object], timeout: float, what: str):
        """Wait until ``ready(log text)`` is truthy; returns it. On the deadline, or if
        qmail-send died, fails with the log's tail."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            result = ready(text)
            if result:
                return result
            dead = self.proc is not None and self.proc.poll() is not None
            if dead or time.monotonic() > deadline:
                why = "qmail-send exited" if dead else f"no sign after {timeout:.0f} s"
                tail = "\n".join(text.splitlines()[-40:])
                raise AssertionError(f"waiting for {what}: {why}; qmail-send's log "
                                     f"({self.log}) ends with:\n{tail}")
            time.sleep(0.05)

    def wait_deliveries(self, recipient: str, results: set[str], count: int = 1,
                        timeout: float = 60, nudge: bool = False) -> list[Delivery]:
        """Wait until ``count`` deliveries to ``recipient`` ended with one of
        ``results``; returns every delivery to it so far. With ``nudge``, SIGALRM is
        sent to qmail-send about once a second meanwhile (retry now)."""
        last_nudge = 0.0

        def ready(text: str) -> list[Delivery] | None:
            nonlocal last_nudge
            mine = [d for d in self.deliveries(text) if d.recipient == recipient]
            if sum(d.result in results for d in mine) >= count:
                return mine
            if nudge and time.monotonic() - last_nudge > 1:
                last_nudge = time.monotonic()
                self.run_now()
            return None

        return self.wait_log(ready, timeout, f"{count} deliveries to {recipient} ending "
                                             f"in {'/'.join(sorted(results))}")


def session_processes(sid: int) -> list[tuple[int, str, str]]:
    """Processes (not zombies) whose session is ``sid``: pid, command line and the name
    of the user it runs as."""
    import pwd

    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...: comm may hold spaces and ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] == "Z" or int(fields[3]) != sid:
            continue
        uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M)[1])
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        found.append((int(entry), cmd.decode(errors="replace").strip(), user))
    return found


def make_root() -> Path:
    """A short 0755 directory under /tmp that qmail's users can reach."""
    return make_public_dir("qmt-")
