"""Issue 9, tried as an operator would on a real qmail: what the tools print must be
true, and their fixes must be the right ones.

Each test here reproduces, on a small scale and for real (a qmailr-like user from
``useradd``, venvs as README describes them, the worker as a process, clients spawned
as qmail-rspawn spawns them), something seen on a qmail built from source:

- a worker started from a venv that qmailr cannot read listens, and then defers every
  delivery with ``ModuleNotFoundError`` (mail that the in-process path delivers);
- a worker keeps the environment of the shell that started it: with ``SSL_CERT_FILE``
  exported, ``tls=verify`` succeeds through the worker and fails in-process;
- ``install`` blames the compiled client (mode 0711) for not being readable, says "no C
  compiler here" for ``--script`` on a host with one, and prescribes a new venv when
  the qmail home is what qmailr cannot enter;
- ``simulate`` plans a delivery for a qmail home without ``control/``, where
  qmail-remote defers (#4.3.0);
- ``check`` says nothing when the failover memory is missing (qmailr cannot create it:
  the memory silently stops working), reports an error with a wrong fix when run by an
  unrelated user, and says "install ca-certificates" when they are installed but out
  of qmailr's reach;
- the worker started as qmailr itself (``setuidgid``) prints a bare errno;
- ``tcpto`` on a qmail home that does not exist says the memory is empty.

Most need root (CI is root); skipped otherwise by the ``qmail_user`` fixture.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from qremote.client.build import build_client, find_compiler
from qremote.qmailuser import QmailUser
from tests.conftest import run_cli
from tests.support.delivery import deliver_process, reports
from tests.support.qmailhome import ORIGINAL, installed_home
from tests.support.rspawn import Spawned, spawn
from tests.support.smtpsink import Sink, tls_contexts
from tests.support.users import qremote_cli, run_as_user

ARGS = ["x.org", "a@b.org", "y@x.org"]
MESSAGE = b"Subject: t\n\nhello\n"


def _home(where: Path, user: QmailUser, routes: str = "r;;127.0.0.1:9;;\n") -> Path:
    return installed_home(where, user, routes)


def _memory(home: Path, user: QmailUser) -> None:
    """queue/lock/qremote-tcpto as install creates it."""
    memory = home / "queue" / "lock" / "qremote-tcpto"
    memory.touch()
    os.chown(memory, user.uid, user.gid)
    memory.chmod(0o644)


def _client(home: Path, python: Path, where: Path) -> Path:
    """The compiled client for ``home`` and ``python`` (skips without a compiler)."""
    built = build_client(home, python, where / "qmail-remote")
    if built.path is None:
        pytest.skip(built.reason)
    os.chmod(built.path, 0o755)
    return built.path


def _as_qmailr(client: Path, user: QmailUser) -> Spawned:
    """The client run as qmail-rspawn runs it: as the user, empty environment."""
    return spawn([str(client), *ARGS], MESSAGE, {}, user=user.uid,
                 groups=list(user.groups))


class _Worker:
    """``PYTHON -m qremote.cli worker`` started as root (README: "Start it as root"),
    with the environment of the shell that starts it."""

    def __init__(self, python: Path, home: Path, user: str,
                 env: dict[str, str] | None = None) -> None:
        self.argv = [str(python), "-m", "qremote.cli", "worker", "--qmail-home", str(home),
                     "--user", user]
        self.env = env if env is not None else {"PATH": "/usr/bin:/bin"}
        self.lines: list[str] = []
        self.listening = threading.Event()
        self.ended = threading.Event()

    def start(self) -> _Worker:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=self.env, cwd="/")
        threading.Thread(target=self._read, daemon=True).start()
        # Either it listens, or it refused to start (then clients deliver in-process).
        for _ in range(600):
            if self.listening.wait(0.1) or self.ended.is_set():
                break
        return self

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if "listening on" in line:
                self.listening.set()
        self.ended.set()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self.ended.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def private_dir(public_dir: Path) -> Path:
    """A 0700 root directory inside ``public_dir`` (like /root, or a pyenv's home)."""
    path = public_dir / "private"
    path.mkdir(mode=0o700)
    path.chmod(0o700)
    return path


# -- the worker ------------------------------------------------------------------------


def test_worker_from_a_venv_qmailr_cannot_read_never_defers_what_in_process_delivers(
        qmail_user: QmailUser, public_python: Path, public_dir: Path,
        private_dir: Path) -> None:
    """Seen: ``/root/venv/bin/qremote worker`` (or a pyenv Python's) logged only "warning:
    the configuration cannot be read yet: No module named 'qremote.control.cache'",
    listened, and every delivery was ``Z qremote worker internal error:
    ModuleNotFoundError`` (#4.3.0); ``qremote status`` said nothing was wrong. Without
    that worker the same mail went out in-process. A worker that cannot run as its
    user must not take deliveries (refuse to start, saying why), or must work."""
    sink = Sink().start()
    worker = None
    try:
        home = _home(public_dir, qmail_user, f"r;;127.0.0.1:{sink.port};;\n")
        _memory(home, qmail_user)
        # README: run qremote check after editing (it writes control/routes.cache).
        done = qremote_cli(public_python, "--qmail-home", str(home), "check", "--user",
                           qmail_user.name)
        assert done.returncode == 0, done.stdout + done.stderr
        assert (home / "control" / "routes.cache").exists()
        client = _client(home, public_python, public_dir)
        assert _as_qmailr(client, qmail_user).letter == "K"  # in-process: delivered
        venv = private_dir / "venv"
        shutil.copytree(public_python.parent.parent, venv, symlinks=True)
        worker = _Worker(venv / "bin" / "python", home, qmail_user.name).start()
        got = _as_qmailr(client, qmail_user)
        assert got.letter == "K", (got.report, worker.lines)
        assert len(sink.received) == 2
    finally:
        if worker is not None:
            worker.stop()
        sink.stop()


def test_worker_reports_what_qmail_remote_reports_whatever_the_shell_exported(
        qmail_user: QmailUser, public_python: Path, public_dir: Path) -> None:
    """Seen: the worker started from a root shell with ``SSL_CERT_FILE`` exported
    delivered a ``tls=verify`` route (K) that qmail-remote in-process defers (qmail-start
    clears the environment, as check and the self-test say). README promises the same
    reports either way; the worker must not depend on the starting shell's
    environment."""
    server_ctx, cafile = tls_contexts()
    os.chmod(cafile, 0o644)
    sink = Sink(starttls=server_ctx).start()
    worker = None
    try:
        home = _home(public_dir, qmail_user, f"v;;127.0.0.1:{sink.port};;;tls=verify\n")
        _memory(home, qmail_user)
        client = _client(home, public_python, public_dir)
        alone = _as_qmailr(client, qmail_user)  # no worker: qmail-remote in-process
        worker = _Worker(public_python, home, qmail_user.name,
                         env={"PATH": "/usr/bin:/bin", "SSL_CERT_FILE": cafile}).start()
        assert worker.listening.is_set(), worker.lines
        through = _as_qmailr(client, qmail_user)
        assert alone.letter == "Z", alone.report  # a CA only the shell knows of
        # The worker took the delivery (its log line follows the report) ...
        for _ in range(100):
            if any(line.startswith("delivery 1: ") for line in worker.lines):
                break
            worker.ended.wait(0.1)
        assert any(line.startswith("delivery 1: ") for line in worker.lines), worker.lines
        # ... and reported what qmail-remote reports without it.
        assert through.letter == alone.letter, (alone.report, through.report)
    finally:
        if worker is not None:
            worker.stop()
        sink.stop()
        os.unlink(cafile)


@pytest.mark.parametrize("stale", [False, True], ids=["no-socket", "stale-socket"])
def test_worker_started_as_qmailr_says_to_start_it_as_root(
        qmail_user: QmailUser, public_python: Path, public_dir: Path, stale: bool) -> None:
    """Seen: ``setuidgid qmailr qremote worker`` (which README warns against) printed
    ``qremote worker: [Errno 13] Permission denied: '.../qremote.sock'`` (a stale socket
    left by a killed worker) or ``cannot listen on ...: Permission denied``: neither
    says what to do. It should say to start it as root."""
    home = _home(public_dir, qmail_user)
    if stale:
        path = home / "queue" / "lock" / "qremote.sock"
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(path))  # nobody listens: what a SIGKILL-ed worker leaves
        os.chown(path, qmail_user.uid, qmail_user.gid)
        path.chmod(0o600)
    done = run_as_user(qmail_user, [str(public_python), "-m", "qremote.cli", "worker",
                                    "--qmail-home", str(home)],
                       env={"PATH": "/usr/bin:/bin"}, timeout=60)
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert "Traceback" not in err
    assert "[Errno" not in err, err
    assert "as root" in err, err


# -- install --------------------------------------------------------------------------


def test_install_does_not_blame_the_compiled_clients_mode(
        qmail_user: QmailUser, public_python: Path, public_dir: Path,
        private_dir: Path) -> None:
    """Seen, for a venv under /root: ``the wrapper: .../.qmail-remote.qremote-new is mode
    711, owner root:qmail: qmailr cannot read it``. A compiled program needs execute
    only (qmail's own qmail-remote is 0711): that line sends the operator after a
    cause that is not one."""
    if find_compiler() is None:
        pytest.skip("no C compiler: install writes the script, which must be readable")
    venv = private_dir / "venv"
    shutil.copytree(public_python.parent.parent, venv, symlinks=True)
    home = _home(public_dir, qmail_user)
    done = qremote_cli(venv / "bin" / "python", "--qmail-home", str(home), "install",
                       "--user", qmail_user.name)
    assert done.returncode == 1
    assert "cannot even start" in done.stderr  # the real cause is named ...
    assert f"{private_dir} (mode 700" in done.stderr
    wrapper_lines = [line for line in done.stderr.splitlines()
                     if line.strip().startswith("the wrapper:")]
    assert wrapper_lines == [], done.stderr  # ... and no false one


def test_install_script_does_not_say_there_is_no_compiler(
        qmail_user: QmailUser, public_python: Path, public_dir: Path) -> None:
    """Seen: ``install --script`` on a host with cc: "... (no C compiler here: no
    compiled client)". The operator asked for the script; there is a compiler."""
    if find_compiler() is None:
        pytest.skip("no C compiler here: the message would be true")
    home = _home(public_dir, qmail_user)
    for extra in (["--dry-run"], []):
        done = qremote_cli(public_python, "--qmail-home", str(home), "install", "--user",
                           qmail_user.name, "--script", *extra)
        assert done.returncode == 0, done.stderr
        assert "no C compiler here" not in done.stdout, done.stdout


def test_install_fix_for_a_qmail_home_qmailr_cannot_enter_is_not_a_new_venv(
        qmail_user: QmailUser, public_python: Path, private_dir: Path) -> None:
    """Seen with the qmail home at mode 700: the cause was right ("qmailr cannot enter
    /var/qmail ... on the way to bin/.qmail-remote.qremote-new") but the only fix given
    was "install qremote into a virtual environment that qmailr can use ...", with a
    venv qmailr can use. The fix is the qmail home's mode."""
    home = _home(private_dir, qmail_user)
    done = qremote_cli(public_python, "--qmail-home", str(home), "install", "--user",
                       qmail_user.name)
    assert done.returncode == 1
    err = done.stderr
    assert f"cannot enter {private_dir}" in err  # the cause: right today
    fixes = [line for line in err.splitlines() if line.startswith("Fix:")]
    assert fixes, err
    assert not any("virtual environment" in line for line in fixes), err
    assert any(str(private_dir) in line and "chmod" in line for line in fixes), err
    assert (home / "bin" / "qmail-remote").read_bytes() == ORIGINAL


# -- simulate ---------------------------------------------------------------------------


def test_simulate_agrees_with_qmail_remote_on_a_home_without_control(
        tmp_path: Path) -> None:
    """Seen: ``qremote --qmail-home /typo simulate a@b c@d`` planned an MX delivery
    (exit 0) where qmail-remote says ``Zqmail home /typo has no control directory``."""
    home = tmp_path / "typo"
    done = deliver_process(home, ["example.com", "a@b.org", "c@example.com"], MESSAGE)
    report = reports(done.stdout)[-1]
    assert report.startswith("Z") and "(#4.3.0)" in report  # qmail-remote defers
    sim = run_cli("simulate", "--no-dns", "a@b.org", "c@example.com", home=home)
    assert sim.returncode == 1, sim.stdout
    assert "control" in sim.stdout + sim.stderr
    assert "attempts" not in sim.stdout, sim.stdout


# -- check ------------------------------------------------------------------------------


def test_check_says_the_failover_memory_cannot_work(qmail_user: QmailUser,
                                                    public_dir: Path) -> None:
    """Seen: with queue/lock/qremote-tcpto missing (removed by hand, or by uninstall
    before a plain ``pip install -U``), qmailr cannot create it (queue/lock is
    qmailq's): connect timeouts are never remembered, every delivery waits out the
    dead primary again. ``check`` said ``0 error(s), 0 warning(s)`` and ``tcpto`` "is
    empty: no pair is skipped"; only the self-test knew."""
    home = _home(public_dir, qmail_user)
    done = run_cli("check", "--user", qmail_user.name, home=home)
    out = done.stdout + done.stderr
    assert "qremote-tcpto" in out, out


def test_check_by_an_unrelated_user_does_not_report_a_wrong_error(
        qmail_user: QmailUser, public_python: Path, public_dir: Path) -> None:
    """Seen: ``qremote check`` run by an operator's own account (not root, not qmailr)
    on a routes file at the recommended 640 root:qmail printed ``control/routes:0:
    error: cannot read ...: permission denied; make it readable by the user qmail-remote
    runs as`` and exited 1, though qmailr reads it: a false error whose fix (make it
    readable) tempts a chmod 644 of the passwords. What it could not check is a
    warning (it says so already: run it as root)."""
    home = _home(public_dir, qmail_user)
    nobody = pwd.getpwnam("nobody")
    user = QmailUser("nobody", nobody.pw_uid, nobody.pw_gid, (nobody.pw_gid,))
    done = qremote_cli(public_python, "--qmail-home", str(home), "check", "--user",
                       qmail_user.name, user=user)
    assert "run qremote check as root" in done.stdout  # the warning, right today
    assert "control/routes:0: error" not in done.stdout, done.stdout


def test_check_tls_verify_fix_when_the_certificates_are_there_but_out_of_reach(
        qmail_user: QmailUser, public_dir: Path, private_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Seen with /etc/ssl/certs at mode 700: ``... cannot load any: /usr/lib/ssl/cert.pem
    is a symbolic link into /etc/ssl/certs (mode 700 ...) ... Fix: install the CA
    certificates (Debian: apt-get install ca-certificates)``: they are installed; the
    fix is the directory's mode. (OpenSSL's built-in locations are replaced here by
    a CA file and directory inside a 0700 directory.)"""
    import qremote.qmailuser
    from qremote.control.check import user_findings
    from qremote.control.config import load_config

    _ctx, cafile = tls_contexts()
    try:
        shutil.copy(cafile, private_dir / "cert.pem")
    finally:
        os.unlink(cafile)
    (private_dir / "certs").mkdir()
    monkeypatch.setattr(qremote.qmailuser, "default_ca_locations",
                        lambda: (str(private_dir / "cert.pem"), str(private_dir / "certs")))
    home = _home(public_dir, qmail_user, "v;;127.0.0.1:9;;;tls=verify\n")
    findings = user_findings(load_config(home), qmail_user.name)
    text = "\n".join(f.format() for f in findings)
    assert f"cannot enter {private_dir}" in text, text  # the cause: right today
    assert "apt-get install ca-certificates" not in text, text
    assert "chmod" in text, text


def test_check_without_user_finds_qmails_remote_user_by_itself(
        qmail_user: QmailUser, public_dir: Path) -> None:
    """Seen on a qmail whose conf-users names the remote user otherwise (here the
    throwaway user; many packages use other names): ``qremote check`` with no ``--user``
    warned "there is no user 'qmailr' ...; checked what root can read instead" and
    exited 0 with routes at 600 root:root, while every delivery deferred. qmail itself
    says who its remote user is: queue/lock/tcpto (qmail-remote's own failover memory,
    made by qmail's install) belongs to it."""
    home = _home(public_dir, qmail_user)
    tcpto = home / "queue" / "lock" / "tcpto"
    tcpto.write_bytes(b"\0" * 1024)
    os.chown(tcpto, qmail_user.uid, qmail_user.gid)
    _memory(home, qmail_user)
    routes = home / "control" / "routes"
    os.chown(routes, 0, 0)
    routes.chmod(0o600)
    done = run_cli("check", home=home)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "control/routes:0: error" in done.stdout, done.stdout


def test_check_says_when_qmail_remote_is_not_qremote(qmail_user: QmailUser,
                                                     public_dir: Path) -> None:
    """Seen after qmail was installed again over the wrapper (``make setup check``
    copies its own qmail-remote; ``qmail-remote.orig`` stays): ``check`` said ``0
    error(s), 0 warning(s)`` and ``status`` showed the worker, while qmail's own
    qmail-remote ignored routes and routemap: mail for a routed domain that has no MX
    bounced (``Sorry, I couldn't find any host named ... (#5.1.2)``)."""
    home = _home(public_dir, qmail_user)
    (home / "bin" / "qmail-remote.orig").write_bytes(ORIGINAL)
    _memory(home, qmail_user)
    done = run_cli("check", "--user", qmail_user.name, home=home)
    out = done.stdout + done.stderr
    assert "qmail-remote" in out and "install" in out, out


# -- tcpto -------------------------------------------------------------------------------


def test_tcpto_on_a_qmail_home_that_does_not_exist_says_so(tmp_path: Path) -> None:
    """Seen: ``qremote --qmail-home /var/qmial tcpto`` (a typo) said "the failover
    memory (...) is empty: no pair is skipped" and ``tcpok`` "was already empty", exit
    0, while the real memory skips pairs."""
    home = tmp_path / "typo"
    for cmd in ("tcpto", "tcpok"):
        done = run_cli(cmd, home=home)
        assert done.returncode != 0, (cmd, done.stdout)
        assert "empty" not in done.stdout, (cmd, done.stdout)
