"""The worker as root: it drops to its user for good, and serves only root and that
user (peer credentials), whatever the socket's mode. Needs root (CI is root) to
create the test accounts; skipped otherwise."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from qremote.client.build import build_client
from qremote.worker import protocol
from qremote.worker.status import WorkerUnavailable, query
from tests.conftest import run_cli
from tests.support.pausing import PausingServer
from tests.support.rspawn import spawn
from tests.support.workerproc import WorkerProcess

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("useradd") is None,
                                reason="creating test users needs root and useradd")

USER, GROUP = "qrtest-qmailr", "qrtest-qmail"  # like qmailr, in group qmail
ARGS = ["x.org", "a@b.org", "y@x.org"]
MESSAGE = b"Subject: t\n\nhello\n"


@pytest.fixture(scope="module")
def account() -> Iterator[pwd.struct_passwd]:
    """A user with its own primary group and the supplementary group GROUP."""
    subprocess.run(["userdel", USER], capture_output=True)
    subprocess.run(["groupdel", GROUP], capture_output=True)
    subprocess.run(["groupadd", GROUP], check=True, capture_output=True)
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                    "--shell", "/usr/sbin/nologin", "--groups", GROUP, USER],
                   check=True, capture_output=True)
    try:
        yield pwd.getpwnam(USER)
    finally:
        subprocess.run(["userdel", USER], capture_output=True)
        subprocess.run(["groupdel", GROUP], capture_output=True)


@pytest.fixture
def world(account) -> Iterator[tuple[Path, Path, PausingServer]]:
    """A qmail home others may traverse, laid out like qmail's: control/routes 0640
    root:GROUP, queue/lock 0750 root:GROUP; a client binary; an SMTP server."""
    server = PausingServer().start()
    top = Path(tempfile.mkdtemp(prefix="qrworker-", dir="/tmp"))
    os.chmod(top, 0o755)
    gid = grp.getgrnam(GROUP).gr_gid
    home = top / "qmail"
    control = home / "control"
    control.mkdir(parents=True)
    os.chmod(home, 0o755)
    os.chmod(control, 0o755)
    files = {"me": "relay.example.org\n", "dnsservers": "127.0.0.1:9\n",
             "routes": f"r;127.0.0.2;127.0.0.1:{server.port};;\n", "routemap": "*;*;r\n"}
    for name, text in files.items():
        (control / name).write_text(text)
        os.chmod(control / name, 0o644)
    os.chown(control / "routes", 0, gid)
    os.chmod(control / "routes", 0o640)  # readable through the supplementary group only
    lock = home / "queue" / "lock"
    lock.mkdir(parents=True)
    os.chmod(home / "queue", 0o755)
    os.chown(lock, 0, gid)
    os.chmod(lock, 0o750)
    built = build_client(home, sys.executable, top / "qmail-remote")
    if built.path is None:
        pytest.skip(built.reason)
    os.chmod(top / "qmail-remote", 0o755)
    try:
        yield home, built.path, server
    finally:
        server.stop()
        shutil.rmtree(top)


def _proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def _as_user(uid: int, job) -> int:
    """Run ``job`` in a child process as ``uid``; its return value is the exit status."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            os.setgroups([])
            os.setgid(pwd.getpwuid(uid).pw_gid)
            os.setuid(uid)
            code = job()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _status_refused(sock: Path) -> int:
    try:
        query(sock)
    except WorkerUnavailable as exc:
        return 0 if "refused" in str(exc) else 2
    return 1


def test_drops_to_its_user_for_good(account, world, public_python) -> None:
    home, client, server = world
    # from a venv the user can reach (README; else the worker refuses to start)
    worker = WorkerProcess(home, user=USER, python=public_python).start()
    try:
        status = _proc_status(worker.proc.pid)
        uid, gid = str(account.pw_uid), str(account.pw_gid)
        assert status["Uid"].split() == [uid] * 4  # real, effective, saved, fs
        assert status["Gid"].split() == [gid] * 4
        expected = sorted({account.pw_gid, grp.getgrnam(GROUP).gr_gid})
        assert sorted(int(g) for g in status["Groups"].split()) == expected
        for caps in ("CapEff", "CapPrm"):
            assert int(status[caps], 16) == 0  # setuid(0) is impossible
        sock = protocol.default_socket(home)
        st = os.stat(sock)
        assert (st.st_uid, st.st_gid) == (account.pw_uid, account.pw_gid)
        assert stat.S_IMODE(st.st_mode) == 0o600
        # root's client and the user's own client are both served; routes (0640
        # root:GROUP) is read through the supplementary group
        assert spawn([str(client), *ARGS], MESSAGE, {}).letter == "K"
        result = spawn([str(client), *ARGS], MESSAGE, {}, user=account.pw_uid,
                       groups=expected)
        assert result.letter == "K", result
        assert len(worker.wait_deliveries(2)) == 2 and len(server.messages) == 2
    finally:
        worker.close()


def test_another_user_is_refused(account, world, public_python) -> None:
    home, client, _server = world
    worker = WorkerProcess(home, user=USER, python=public_python).start()
    try:
        sock = protocol.default_socket(home)
        os.chmod(sock, 0o666)  # let the connect through: the peer check must refuse
        os.chmod(sock.parent, 0o755)
        nobody = pwd.getpwnam("nobody").pw_uid
        result = spawn([str(client), *ARGS], MESSAGE, {}, user=nobody,
                       groups=[pwd.getpwnam("nobody").pw_gid])
        worker.wait_line(lambda line: f"refused a connection from uid {nobody}" in line)
        # the client then delivers in-process as itself (exit 111, a Z, where this
        # Python is out of reach for that user): never through the worker, never D
        assert (result.returncode, result.letter) in ((0, "K"), (111, "Z")), result
        assert worker.deliveries() == []
        doc = json.loads(run_cli("status", "--json", home=home).stdout)
        assert doc["refused"] == 1 and doc["deliveries"] == 0
        # status is refused to that user too
        assert _as_user(nobody, lambda: _status_refused(sock)) == 0
    finally:
        worker.close()
