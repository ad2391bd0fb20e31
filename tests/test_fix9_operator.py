"""Issue 9, the operator's share that tests/test_attack9_operator.py leaves out: what
each tool says about the user qmail-remote runs as, the failover memory, a worker that
outlives uninstall, and the console's banner.

Most need root (CI is root) for a throwaway qmailr-like user (``qmail_user``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import Static

from qremote.client.build import find_compiler
from qremote.qmailuser import QmailUser
from tests.conftest import REPO, run_cli
from tests.support.qmailhome import ORIGINAL, installed_home
from tests.support.users import qremote_cli
from tests.support.workerproc import WorkerProcess


def _home(where: Path, user: QmailUser, routes: str = "r;;127.0.0.1:9;;\n") -> Path:
    return installed_home(where, user, routes, tcpto=True)


def _unreadable_routes(home: Path) -> Path:
    routes = home / "control" / "routes"
    os.chown(routes, 0, 0)
    routes.chmod(0o600)
    return routes


# -- the user: found from qmail's own files, and named ---------------------------------


def test_check_names_the_user_it_checked_as(qmail_user: QmailUser,
                                            public_dir: Path) -> None:
    home = _home(public_dir, qmail_user)
    done = run_cli("check", home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (f"as seen by {qmail_user.name}, the user qmail-remote runs as (the owner of "
            f"{home / 'queue' / 'lock' / 'tcpto'})") in done.stderr
    done = run_cli("check", "--user", qmail_user.name, home=home)
    assert f"as seen by {qmail_user.name}, the user qmail-remote runs as (--user)" \
        in done.stderr
    # Without qmail's tcpto: qmailr, and check says where that name comes from.
    (home / "queue" / "lock" / "tcpto").unlink()
    done = run_cli("check", home=home)
    assert ("runs as (qmail's default name: there is no "
            f"{home / 'queue' / 'lock' / 'tcpto'}, which qmail gives its remote user)") \
        in done.stderr, done.stderr


def test_install_names_the_user_it_found(qmail_user: QmailUser, public_python: Path,
                                         public_dir: Path) -> None:
    home = _home(public_dir, qmail_user)
    done = qremote_cli(public_python, "--qmail-home", str(home), "install", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        f"qmail-remote runs as {qmail_user.name} (the owner of "
        f"{home / 'queue' / 'lock' / 'tcpto'}; --user NAME says otherwise)\n"), done.stdout
    assert f"would test the new qmail-remote as {qmail_user.name} (uid" in done.stdout


# -- simulate agrees with what qmail-remote, as its user, would do -----------------------


def test_simulate_as_root_says_what_qmailr_cannot_read(qmail_user: QmailUser,
                                                       public_dir: Path) -> None:
    home = _home(public_dir, qmail_user)
    ok = run_cli("simulate", "--no-dns", "a@b.org", "c@example.com", home=home)
    assert ok.returncode == 0 and "attempts" in ok.stdout, ok.stdout + ok.stderr
    routes = _unreadable_routes(home)
    done = run_cli("simulate", "--no-dns", "a@b.org", "c@example.com", home=home)
    assert done.returncode == 1, done.stdout
    assert "attempts" not in done.stdout, done.stdout
    assert (f"control/routes:0: error: qmail-remote runs as {qmail_user.name}, which "
            f"cannot read this file: {routes} is mode 600") in done.stderr
    assert "it would defer every delivery (#4.3.0)" in done.stderr


# -- check: the failover memory, and qmail's qmail-remote -------------------------------


def test_check_says_the_failover_memory_cannot_be_written(qmail_user: QmailUser,
                                                          public_dir: Path) -> None:
    home = _home(public_dir, qmail_user)
    assert run_cli("check", home=home).returncode == 0
    memory = home / "queue" / "lock" / "qremote-tcpto"
    os.chown(memory, 0, 0)
    done = run_cli("check", home=home)
    assert done.returncode == 1
    assert (f"control/: error: the failover memory: {memory} is mode 644, owner root:root: "
            f"{qmail_user.name} cannot write it") in done.stdout, done.stdout
    assert f"Fix: chown {qmail_user.name}:{qmail_user.group_name} {memory}" in done.stdout
    # Missing, where the user cannot create it: the fix is install's.
    memory.unlink()
    done = run_cli("check", home=home)
    assert done.returncode == 1
    assert (f"{memory} is missing, and {qmail_user.name} cannot create it in "
            f"{memory.parent} (mode 750") in done.stdout, done.stdout
    assert "Fix: qremote install creates it" in done.stdout
    # Missing where it may create it (qmail-remote does, at the first timeout): fine.
    os.chown(memory.parent, qmail_user.uid, qmail_user.gid)
    assert run_cli("check", home=home).returncode == 0


def test_check_warns_when_qmail_remote_is_qmails_own(qmail_user: QmailUser,
                                                     public_dir: Path) -> None:
    home = _home(public_dir, qmail_user)
    done = run_cli("check", home=home)
    target = home / "bin" / "qmail-remote"
    assert done.stdout == (
        f"control/: warning: {target} is not qremote's: qmail's own qmail-remote "
        "delivers, and ignores routes and routemap (and qremote worker). Fix: qremote "
        f"install (it keeps qmail's own as {target}.orig)\n")


# -- tcpto and tcpok ------------------------------------------------------------------


def test_tcpok_with_words_that_are_not_addresses(tmp_path: Path) -> None:
    home = tmp_path / "qmail"
    (home / "queue" / "lock").mkdir(parents=True)
    (home / "queue" / "lock" / "qremote-tcpto").touch()
    for words, what in ((["junk", "192.0.2.1", "25"], "LOCAL 'junk'"),
                        (["127.0.0.2", "*", "25"], "REMOTE '*'"),
                        (["127.0.0.2", "mx.example", "25"], "REMOTE 'mx.example'")):
        done = run_cli("tcpok", *words, home=home)
        assert done.returncode == 2, done
        assert done.stderr.startswith(f"qremote tcpok: {what} is not an IP address"), \
            done.stderr


def test_tcpto_on_a_home_without_queue_lock(tmp_path: Path) -> None:
    home = tmp_path / "qmail"
    (home / "control").mkdir(parents=True)
    for cmd in ("tcpto", "tcpok"):
        done = run_cli(cmd, home=home)
        assert done.returncode == 1, done
        assert done.stderr == (f"qremote {cmd}: {home / 'queue' / 'lock'} does not exist: "
                               f"is {home} the qmail home? (pass --qmail-home DIR or set "
                               "QMAIL_HOME)\n")
    (home / "queue" / "lock").mkdir(parents=True)
    done = run_cli("tcpok", home=home)
    assert done.returncode == 0 and "is missing: nothing to clear" in done.stderr
    done = run_cli("tcpok", "127.0.0.2", "192.0.2.1", "25", home=home)
    assert done.returncode == 1 and "is missing: nothing to clear" in done.stderr


# -- the worker -------------------------------------------------------------------------


def test_worker_for_another_user_than_qmail_remotes_says_it_will_not_be_used(
        qmail_user: QmailUser, public_dir: Path) -> None:
    home = _home(public_dir, qmail_user)
    worker = WorkerProcess(home).start()  # as root: not the owner of queue/lock/tcpto
    try:
        line = worker.wait_line(lambda line: "warning: qmail-remote runs as" in line)
    finally:
        worker.close()
    assert line == (f"worker: warning: qmail-remote runs as {qmail_user.name} (the owner "
                    f"of {home}/queue/lock/tcpto), which cannot use this worker's socket "
                    "(only root and root may): its deliveries go in-process. Start the "
                    f"worker with --user {qmail_user.name}")


def test_worker_names_its_user_and_why(qmail_user: QmailUser, public_python: Path,
                                       public_dir: Path) -> None:
    home = _home(public_dir, qmail_user)
    worker = WorkerProcess(home, python=public_python,
                           user=qmail_user.name).start()
    try:
        assert f"worker: deliveries run as {qmail_user.name} (uid {qmail_user.uid}" \
            in "\n".join(worker.lines)
        assert not any("warning" in line for line in worker.lines), worker.lines
    finally:
        worker.close()


def test_the_workers_warm_up_imports_the_dns_record_types() -> None:
    """dnspython imports a record type's module at its first use: after the drop of
    privileges that could be out of the user's reach. The warm-up parses each."""
    code = ("import sys; from qremote.worker.server import _warm_dns; _warm_dns(); "
            "need = ['dns.rdtypes.ANY.MX', 'dns.rdtypes.IN.A', 'dns.rdtypes.IN.AAAA', "
            "'dns.rdtypes.ANY.PTR', 'dns.rdtypes.ANY.CNAME', 'dns.rdtypes.ANY.SOA', "
            "'dns.rdtypes.ANY.OPT']; "
            "print([m for m in need if m not in sys.modules])")
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True,
                          text=True, cwd=REPO, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_uninstall_says_the_worker_keeps_running(tmp_path: Path) -> None:
    home = tmp_path / "qmail"
    (home / "bin").mkdir(parents=True)
    (home / "control").mkdir()
    (home / "queue" / "lock").mkdir(parents=True)
    (home / "bin" / "qmail-remote").write_bytes(ORIGINAL)
    (home / "bin" / "qmail-remote").chmod(0o711)
    me = ("--user", "root") if os.geteuid() == 0 else ("--user", os.environ["USER"])
    assert run_cli("--qmail-home", str(home), "install", "--script", *me).returncode == 0
    worker = WorkerProcess(home).start()
    try:
        done = run_cli("--qmail-home", str(home), "uninstall")
        assert done.returncode == 0, done.stderr
        assert (f"qremote worker (pid {worker.proc.pid}, on "
                f"{home / 'queue' / 'lock' / 'qremote.sock'}) keeps running: uninstall "
                "does not stop it") in done.stdout, done.stdout
        assert worker.proc.poll() is None
    finally:
        worker.close()
    assert "keeps running" not in run_cli("--qmail-home", str(home), "uninstall").stdout


# -- install ----------------------------------------------------------------------------


def test_install_never_gives_an_errno_as_an_exit_status(
        qmail_user: QmailUser, public_python: Path, public_dir: Path) -> None:
    private = public_dir / "private"
    private.mkdir(mode=0o700)
    home = _home(private, qmail_user)
    done = qremote_cli(public_python, "--qmail-home", str(home), "install", "--user",
                       qmail_user.name)
    assert done.returncode == 1
    assert "exit status Permission denied" not in done.stderr, done.stderr
    assert "(it could not be run: Permission denied)" in done.stderr, done.stderr
    assert (f"Fix: make {private} searchable: chmod o+x {private} (or chgrp "
            f"{qmail_user.group_name} {private} and chmod g+x {private})") in done.stderr


@pytest.mark.skipif(find_compiler() is None, reason="no C compiler: no compiled client")
def test_install_script_says_why_it_is_a_script(qmail_user: QmailUser,
                                                public_python: Path,
                                                public_dir: Path) -> None:
    home = _home(public_dir, qmail_user)
    done = qremote_cli(public_python, "--qmail-home", str(home), "install", "--script",
                       "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "with QMAIL_HOME=" in done.stdout and "(--script)" in done.stdout, done.stdout


# -- the console ------------------------------------------------------------------------


async def _banner(home: Path, calls: list[int], gid: int) -> tuple[str, str]:
    from qconsole.app import QConsole

    app = QConsole(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        first = str(app.query_one("#banner", Static).render())
        n = len(calls)
        app.watch_control()  # the 2-second watch: no child forked for it
        await pilot.pause()
        assert len(calls) == n
        routes = home / "control" / "routes"
        os.chown(routes, 0, gid)  # fixed: 640 root:qmail
        routes.chmod(0o640)
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert len(calls) == n + 1  # asked again on reload
        return first, str(app.query_one("#banner", Static).render())


def test_console_banner_says_what_qmailr_cannot_read(
        qmail_user: QmailUser, public_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import qremote.control.check as check

    calls: list[int] = []
    real = check.user_findings

    def counted(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(check, "user_findings", counted)
    home = _home(public_dir, qmail_user)
    _unreadable_routes(home)
    before, after = asyncio.run(_banner(home, calls, qmail_user.gid))
    assert (f"qmail-remote runs as {qmail_user.name}, which cannot read control/routes: "
            "every delivery defers (qremote check says why and how to fix it).") in before
    assert "cannot read" not in after, after
