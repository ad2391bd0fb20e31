"""``qremote install`` / ``uninstall``: put the drop-in in place of qmail's binary.

The wrapper at ``QMAIL_HOME/bin/qmail-remote`` sets the qmail home it was installed
into (qmail starts its programs with an empty environment, so ``QMAIL_HOME`` never
arrives otherwise), runs this installation's Python in isolated mode (``-I``), drops
stderr (qmail-rspawn would read it as a report) and exits 111 (qmail-rspawn:
temporary failure) when it cannot even start, so a broken install defers mail instead
of bouncing it.

Nothing is replaced before the new wrapper has proved that it works as the user
qmail-remote runs as: it is written beside the target under a temporary name and run
as ``qmail-remote --self-test`` (:mod:`qremote.selftest`) by a child that has dropped
to that user, with an empty environment. Only then is the original kept as
``qmail-remote.orig`` (a hard link: the name ``qmail-remote`` never goes missing) and
the wrapper renamed over it, with the original's owner and group.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from qremote.delivery.tcpto import FILE as MEMORY_FILE
from qremote.errors import QremoteError
from qremote.qmailuser import DEFAULT_USER, QmailUser, can_become, lookup, privileges
from qremote.selftest import HOME_LINE, PASSED

MARKER = "# qremote wrapper"
TMP_NAME = ".qmail-remote.qremote-new"
SELF_TEST_TIMEOUT = 120


class InstallError(QremoteError):
    """Install or uninstall refused; nothing was changed. ``str()`` says why and how to
    fix it."""


def wrapper_text(python: str, home: str) -> str:
    """The wrapper script for the interpreter at ``python`` and the qmail home ``home``
    (both absolute paths; any byte the shell treats specially is quoted), for hosts
    without a C compiler: the Python client hands the delivery to the worker when one
    runs, else delivers in-process."""
    from qremote.client.build import PYCLIENT

    py = shlex.quote(python)
    # qmail-remote itself always exits 0, so any other status means it could not
    # start: 111 makes qmail-rspawn defer. stderr would be read as a report: dropped.
    return f"""#!/bin/sh
{MARKER}: runs qremote's qmail-remote; exit 111 (defer) if it cannot start.
QMAIL_HOME={shlex.quote(home)}
export QMAIL_HOME
[ -x {py} ] || exit 111
{py} -I -S {shlex.quote(str(PYCLIENT))} "$@" 2>/dev/null || exit 111
"""


def is_wrapper(path: Path) -> bool:
    """True when ``path`` is what this module installs: the compiled client, or the
    wrapper script."""
    from qremote.client.build import is_client

    try:
        with open(path, "rb") as fh:
            if MARKER.encode() in fh.read(4096):
                return True
    except OSError:
        return False
    return is_client(path)


def script_mode(mode: int) -> int:
    """The wrapper's mode from the original's: the same permissions, plus read wherever
    there is execute (``/bin/sh`` must read a script to run it: qmail's 0711 gives 0755);
    no set-id bits."""
    mode = stat.S_IMODE(mode) & 0o777
    for x, r in ((0o100, 0o400), (0o010, 0o040), (0o001, 0o004)):
        if mode & x:
            mode |= r
    return mode


def _owner(uid: int, gid: int) -> str:
    from qremote.qmailuser import group_name, user_name

    return f"{user_name(uid)}:{group_name(gid)}"


def _user(name: str) -> QmailUser:
    user = lookup(name)
    if user is None:
        raise InstallError(
            f"there is no user {name!r} on this host. qmail-remote runs as qmail's remote "
            f"user ({DEFAULT_USER} in a standard build, the 7th line of qmail's conf-users): "
            "is qmail installed? If that user has another name here, pass --user NAME")
    if not can_become(user):
        raise InstallError(
            f"run qremote install as root: it replaces a file of qmail and first tests the "
            f"new qmail-remote as {user.name}")
    return user


class _Plan:
    """What install would do, worked out before anything is written."""

    def __init__(self, home: Path, python: str, user: QmailUser,
                 compiled: bool = True) -> None:
        self.home = home
        self.python = python
        self.user = user
        self.bin_dir = home / "bin"
        self.target = self.bin_dir / "qmail-remote"
        self.orig = self.bin_dir / "qmail-remote.orig"
        self.memory = home / MEMORY_FILE
        if not self.bin_dir.is_dir():
            raise InstallError(f"{self.bin_dir} is not a directory: is {home} the qmail "
                               "home? Pass --qmail-home DIR")
        self.installed = is_wrapper(self.target)
        if self.target.exists() and not self.installed and self.orig.exists():
            raise InstallError(
                f"{self.target} is not the qremote wrapper, and {self.orig} exists too: "
                "qmail was probably installed again over the wrapper. Keep the newer of "
                f"the two: if that is {self.target}, remove {self.orig}; then run "
                "qremote install again")
        reference = self.target if self.target.exists() and not self.installed else (
            self.orig if self.orig.exists() else self.target)
        try:
            st = reference.stat()
        except FileNotFoundError:
            raise InstallError(f"{self.target} does not exist: is qmail installed in "
                               f"{home}? Pass --qmail-home DIR") from None
        self.reference = reference
        self.uid, self.gid = st.st_uid, st.st_gid
        self.ref_mode = stat.S_IMODE(st.st_mode)
        self.mode = script_mode(st.st_mode)
        self.text = wrapper_text(python, str(home))
        from qremote.client.build import find_compiler

        # The compiled client where the system has a C compiler (qmail was built with
        # it); else the script. Decided when written: see _write_wrapper.
        self.compiler = find_compiler() if compiled else None
        self.compiled_reason = ("--script" if not compiled else
                                "" if self.compiler else "no C compiler here")

    def _why_script(self) -> str:
        """Why the script and not the compiled client: asked for, or none could be built."""
        if self.compiled_reason == "--script":
            return "--script"
        return f"{self.compiled_reason}: no compiled client"

    def describe(self, dry_run: bool) -> list[str]:
        would = "would " if dry_run else ""
        lines = []
        if self.installed:
            lines.append(f"{self.target} is already the qremote wrapper"
                         + (f"; {self.orig} keeps qmail's original" if self.orig.exists()
                            else ""))
        elif not self.target.exists():
            lines.append(f"{self.target} is missing; {self.orig} keeps qmail's original")
        elif not dry_run:
            lines.append(f"kept {self.target} as {self.orig}")
        else:
            lines.append(f"would keep {self.target} as {self.orig}")
        verb = ("rewrite" if self.installed else "write") if dry_run else (
            "rewrote" if self.installed else "wrote")
        owner = _owner(self.uid, self.gid)
        if self.compiler:
            lines.append(f"{would}{verb} {self.target} ({owner}, mode {self.ref_mode:o}: "
                         f"the owner and mode of {self.reference.name}): the compiled "
                         f"client (built with {self.compiler}), which hands each delivery "
                         "to qremote worker when it runs, else runs "
                         f"{self.python} -I -m qremote.remote with QMAIL_HOME={self.home}")
        else:
            lines.append(f"{would}{verb} {self.target} ({owner}, mode {self.mode:o}: the "
                         f"owner and mode of {self.reference.name} ({self.ref_mode:o}), "
                         "readable where executable since a script must be read to run): "
                         f"runs {self.python} -I -S with qremote's Python client, which "
                         "hands each delivery to qremote worker when it runs, else "
                         f"delivers in-process, with QMAIL_HOME={self.home} "
                         f"({self._why_script()})")
        return lines


def _write_wrapper(plan: _Plan, path: Path) -> None:
    """Write the new qmail-remote to ``path``: the compiled client when it builds
    (else the script), with its final owner and mode before it can be run."""
    path.unlink(missing_ok=True)
    if plan.compiler:
        from qremote.client.build import build_client

        built = build_client(plan.home, plan.python, path, cc=plan.compiler)
        if built.path is not None:
            try:
                os.chown(path, plan.uid, plan.gid)
            except PermissionError:
                pass  # not root: the client stays ours
            os.chmod(path, plan.ref_mode)
            return
        plan.compiler, plan.compiled_reason = None, built.reason
        path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
    try:
        try:
            os.fchown(fd, plan.uid, plan.gid)
        except PermissionError:
            pass  # not root: the wrapper stays ours
        os.fchmod(fd, plan.mode)
        os.write(fd, plan.text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_memory(plan: _Plan) -> bool:
    """Create the failover memory file, owned by the user (as qmail's tcpto is);
    returns True when it was created here."""
    if plan.memory.exists() or not plan.memory.parent.is_dir():
        return False
    fd = os.open(plan.memory, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if os.geteuid() != plan.user.uid:
            os.fchown(fd, plan.user.uid, plan.user.gid)
        os.fchmod(fd, 0o644)
    finally:
        os.close(fd)
    return True


def run_self_test(wrapper: Path, user: QmailUser) -> tuple[int, str, str]:
    """Run ``wrapper --self-test`` as ``user`` with an empty environment, as
    qmail-start would; (status, stdout, stderr). Raises OSError when it cannot start."""
    done = subprocess.run([str(wrapper), "--self-test"], env={}, cwd="/",
                          stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=SELF_TEST_TIMEOUT, **privileges(user))
    return (done.returncode, done.stdout.decode("utf-8", "replace"),
            done.stderr.decode("utf-8", "replace"))


def library_paths() -> list[tuple[str, str, int]]:
    """(what, path, need) of the Python files this process runs qremote from: the
    standard library, qremote and dnspython (directories to read and enter)."""
    import dns

    import qremote

    return [("Python's standard library", os.path.dirname(os.__file__), os.R_OK | os.X_OK),
            ("qremote", os.path.dirname(qremote.__file__), os.R_OK | os.X_OK),
            ("dnspython", os.path.dirname(dns.__file__), os.R_OK | os.X_OK)]


def _start_paths(python: str, wrapper: Path, compiled: bool = False,
                 ) -> list[tuple[str, str, int]]:
    """(what, path, need) that the user must reach for the wrapper to start: a compiled
    wrapper needs execute only (qmail's own qmail-remote is 0711), a script read too."""
    paths = [("the wrapper", str(wrapper), os.X_OK if compiled else os.R_OK | os.X_OK),
             ("the interpreter", python, os.X_OK)]
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        paths += library_paths()
    return paths


def _start_problems(paths: list[tuple[str, str, int]], who: str) -> list[list]:
    """Run as the user: [what, why, the directory it cannot enter or None] for each of
    ``paths`` that it cannot use."""
    from qremote.qmailuser import blocked_dir, explain

    out = []
    for what, path, need in paths:
        why = explain(path, need, who)
        if why:
            out.append([what, why, blocked_dir(path)])
    return out


def venv_fix(who: str, python: str, then: str) -> str:
    """The fix for a Python (interpreter or libraries) that ``who`` cannot reach."""
    return (f"install qremote into a virtual environment that {who} can use, made from "
            "a Python outside any private directory (not under /root or a home directory "
            f"of mode 700; {python} leads to {os.path.realpath(python)}), e.g. "
            "`/usr/bin/python3 -m venv /opt/qremote && /opt/qremote/bin/pip install "
            f"/path/to/qremote`, then run `/opt/qremote/bin/qremote {then}`")


def _fixes(plan: _Plan, problems: list[list]) -> list[str]:
    """One fix a cause: a directory of the qmail home on the wrapper's way needs a
    mode; the wrapper itself, the mode of qmail's qmail-remote; Python, a venv."""
    from qremote.qmailuser import search_fix

    group = plan.user.group_name
    fixes = []
    for what, _why, blocked in problems:
        if what == "the check":
            continue
        if what == "the wrapper" and blocked:
            fixes.append(search_fix(blocked, group) + f" (qmail-rspawn runs {plan.target}"
                         f" as {plan.user.name}), then run qremote install again")
        elif what == "the wrapper":
            fixes.append(f"the new qmail-remote takes the mode of {plan.reference} "
                         f"({plan.ref_mode:o}): chmod 711 {plan.reference} (qmail's "
                         "own mode), then run qremote install again")
        else:
            fixes.append(venv_fix(plan.user.name, plan.python, "install"))
    return list(dict.fromkeys(fixes))


def _cannot_start(plan: _Plan, wrapper: Path, status: int | str, stderr: str) -> str:
    """The message when the wrapper printed no self-test at all, with the cause and fix.
    ``status``: the exit status, or why it could not be run at all (an errno's text)."""
    from qremote.qmailuser import run_as

    who = plan.user.name
    try:
        problems = run_as(plan.user, _start_problems,
                          _start_paths(plan.python, wrapper, plan.compiler is not None),
                          who)
    except OSError as exc:
        problems = [["the check", str(exc), None]]
    how = (f"exit status {status}, no output" if isinstance(status, int)
           else f"it could not be run: {status}")
    lines = [f"the new qmail-remote cannot even start as {plan.user.describe()} "
             f"({how}): qmail would defer every delivery with "
             "'Unable to run qmail-remote.'"]
    lines += [f"  {what}: {why}" for what, why, _ in problems]
    if stderr.strip():
        lines.append(f"  the shell said: {stderr.strip()}")
    lines += [f"Fix: {fix}" for fix in _fixes(plan, problems)]
    if not problems:
        cmd = (f"env - QMAIL_HOME={shlex.quote(str(plan.home))} {shlex.quote(plan.python)} "
               "-I -m qremote.remote --self-test")
        lines.append(f"To see the error: su -s /bin/sh {who} -c {shlex.quote(cmd)}")
    return "\n".join(lines)


def _check_new_wrapper(plan: _Plan, wrapper: Path) -> list[str]:
    """Run the self-test; its lines when it passed, else InstallError with the fix."""
    try:
        status, out, err = run_self_test(wrapper, plan.user)
    except subprocess.TimeoutExpired:
        raise InstallError(f"the self-test of the new qmail-remote did not finish within "
                           f"{SELF_TEST_TIMEOUT} s as {plan.user.name}") from None
    except OSError as exc:
        raise InstallError(_cannot_start(plan, wrapper, exc.strerror or str(exc), "")
                           ) from None
    lines = out.splitlines()
    if not any(line.startswith(("ok", "FAIL")) for line in lines):
        raise InstallError(_cannot_start(plan, wrapper, status, err))
    problems = []
    homes = [line for line in lines if HOME_LINE in line]
    if homes and not any(f"{HOME_LINE}{plan.home} " in line for line in homes):
        problems.append(f"the wrapper did not set the qmail home {plan.home}")
    if status != 0 or PASSED not in lines or problems:
        raise InstallError(
            f"the new qmail-remote does not work as {plan.user.describe()}:\n"
            + "\n".join(f"  {line}" for line in lines + problems))
    return lines


def install(home: Path, dry_run: bool = False, python: str | None = None,
            user: str = DEFAULT_USER, compiled: bool = True) -> list[str]:
    """Install the new qmail-remote once it has passed its self-test as ``user``: the
    compiled client where a C compiler exists (``compiled``), else the script; returns
    what was done (with ``dry_run``, what would be done, and nothing is written).
    Raises InstallError, with nothing replaced, when it cannot be done."""
    home = Path(os.path.abspath(home))
    qmail_user = _user(user)
    plan = _Plan(home, python or sys.executable, qmail_user, compiled)
    memory_owner = _owner(qmail_user.uid, qmail_user.gid)
    if dry_run:
        lines = [f"would test the new qmail-remote as {qmail_user.describe()} with an "
                 "empty environment, and stop if it fails; then:"]
        lines += plan.describe(dry_run=True)
        if not plan.memory.exists() and plan.memory.parent.is_dir():
            lines.append(f"would create {plan.memory} ({memory_owner}, mode 644) for the "
                         "failover memory")
        return lines
    tmp = plan.bin_dir / TMP_NAME
    created = _create_memory(plan)
    try:
        _write_wrapper(plan, tmp)
        tested = _check_new_wrapper(plan, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if created:
            plan.memory.unlink(missing_ok=True)
        raise
    lines = [f"tested the new qmail-remote as {qmail_user.describe()} with an empty "
             "environment:"]
    lines += [f"  {line}" for line in tested]
    if not plan.installed and plan.target.exists():
        _keep_original(plan.target, plan.orig)
    os.replace(tmp, plan.target)
    lines += plan.describe(dry_run=False)
    if created:
        lines.append(f"created {plan.memory} ({memory_owner}, mode 644) for the failover "
                     "memory")
    return lines


def _keep_original(target: Path, orig: Path) -> None:
    """``orig`` becomes a second name of ``target`` (same owner and mode)."""
    try:
        os.link(target, orig)
    except OSError:
        shutil.copy2(target, orig)
        st = target.stat()
        try:
            os.chown(orig, st.st_uid, st.st_gid)
        except PermissionError:
            pass


def uninstall(home: Path, dry_run: bool = False, keep_memory: bool = False) -> list[str]:
    """Put ``qmail-remote.orig`` back (its owner and mode with it) and remove the
    failover memory file install created, unless ``keep_memory``; returns the steps."""
    home = Path(os.path.abspath(home))
    bin_dir = home / "bin"
    target, orig = bin_dir / "qmail-remote", bin_dir / "qmail-remote.orig"
    memory = home / MEMORY_FILE
    if target.exists() and not is_wrapper(target):
        return [f"{target} is not the qremote wrapper; nothing to do"]
    if not orig.exists():
        raise InstallError(f"{orig} is missing: cannot restore qmail's qmail-remote "
                           f"(reinstall qmail, or copy its qmail-remote to {orig})")
    st = orig.stat()
    would = "would " if dry_run else ""
    steps = [f"{would}put {orig} back as {target} "
             f"({_owner(st.st_uid, st.st_gid)}, mode {stat.S_IMODE(st.st_mode):o})"]
    if not dry_run:
        os.replace(orig, target)
    if memory.exists():
        if keep_memory:
            steps.append(f"{'would keep' if dry_run else 'kept'} {memory} (--keep-memory)")
        else:
            steps.append(f"{would}{'remove' if dry_run else 'removed'} {memory} (the "
                         "failover memory; --keep-memory keeps it)")
            if not dry_run:
                memory.unlink()
    return steps + _worker_note(home, dry_run)


def _worker_note(home: Path, dry_run: bool) -> list[str]:
    """What to do about a worker still running: qmail's own qmail-remote never hands
    it a delivery, but it keeps running (and its socket stays) until it is stopped."""
    from qremote.worker.protocol import default_socket
    from qremote.worker.status import WorkerUnavailable, query

    sock = default_socket(home)
    try:
        doc = query(sock, timeout=5)
    except WorkerUnavailable:
        return []
    pid = doc.get("pid", "?")
    after = "would keep" if dry_run else "keeps"
    return [f"qremote worker (pid {pid}, on {sock}) {after} running: uninstall does not "
            "stop it, and qmail's own qmail-remote never hands it a delivery. Stop it "
            "where it was started: svc -d /service/qremote-worker (daemontools), sv stop "
            "qremote-worker (runit) or systemctl stop qremote-worker (systemd), and remove "
            f"that service so that it does not start again (else: kill {pid})"]
