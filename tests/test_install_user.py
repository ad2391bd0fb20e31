"""``qremote install`` proves the wrapper as the user qmail-remote runs as, before it
replaces anything; ``uninstall`` undoes all of it.

Run for real: a throwaway qmailr-like user (``useradd``; root only), a child that drops
to it with an empty environment, and venvs as README describes them, one of them with
its interpreter behind a 0700 directory.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from qremote.delivery.tcpto import FILE as MEMORY
from qremote.install import is_wrapper
from qremote.qmailuser import QmailUser
from tests.support.delivery import detail, reports
from tests.support.qmailhome import ORIGINAL, installed_home
from tests.support.smtpsink import Sink
from tests.support.users import qremote_cli, run_as_user


def _qmail_home(where: Path, user: QmailUser, routes: str = "r;;127.0.0.1:9;;\n") -> Path:
    return installed_home(where, user, routes, locked=False)


def _unchanged(home: Path) -> None:
    """Nothing was replaced and nothing left behind."""
    binary = home / "bin" / "qmail-remote"
    assert binary.read_bytes() == ORIGINAL
    assert stat.S_IMODE(binary.stat().st_mode) == 0o711
    assert sorted(p.name for p in (home / "bin").iterdir()) == ["qmail-remote"]
    assert not (home / MEMORY).exists()


def _install(python: Path, home: Path, user: QmailUser, *extra: str):
    return qremote_cli(python, "--qmail-home", str(home), "install", "--user", user.name,
                       *extra)


def _deliver_as(user: QmailUser, home: Path) -> list[str]:
    """Run bin/qmail-remote as qmail-rspawn would: as the user, empty environment."""
    done = run_as_user(user, [str(home / "bin" / "qmail-remote"), "x.org", "a@b.org",
                              "y@x.org"], input=b"Subject: t\n\nhi\n", env={})
    assert done.returncode == 0, done
    return reports(done.stdout)


@pytest.mark.parametrize("kind", ["compiled", "script"])
def test_install_tests_the_wrapper_as_the_user_and_keeps_owner_and_mode(
        qmail_user: QmailUser, public_python: Path, public_dir: Path, kind: str) -> None:
    sink = Sink().start()
    try:
        home = _qmail_home(public_dir, qmail_user, f"r;;127.0.0.1:{sink.port};;\n")
        result = _install(public_python, home, qmail_user,
                          *(["--script"] if kind == "script" else []))
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert f"tested the new qmail-remote as {qmail_user.name} (uid {qmail_user.uid}" \
            in out
        assert "self-test passed" in out and "FAIL" not in out
        assert f"qmail home: {home} (set by the wrapper)" in out
        wrapper, orig = home / "bin" / "qmail-remote", home / "bin" / "qmail-remote.orig"
        assert orig.read_bytes() == ORIGINAL and is_wrapper(wrapper)
        st = wrapper.stat()
        # The original's owner and group; for a script, 0711 plus read (sh must read a
        # script to run it); the compiled client keeps 0711.
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (
            0, qmail_user.gid, 0o755 if kind == "script" else 0o711)
        assert wrapper.read_bytes().startswith(b"#!/bin/sh" if kind == "script"
                                               else b"\x7fELF")
        assert ("the compiled client" in out) == (kind == "compiled")
        st = orig.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, qmail_user.gid,
                                                                     0o711)
        memory = (home / MEMORY).stat()
        assert (memory.st_uid, stat.S_IMODE(memory.st_mode)) == (qmail_user.uid, 0o644)
        assert sorted(p.name for p in (home / "bin").iterdir()) == [
            "qmail-remote", "qmail-remote.orig"]  # no temporary file left
        # qmail-rspawn's view: the qmailr-like user, no environment at all.
        got = _deliver_as(qmail_user, home)
        assert got[-1].startswith("K"), got
        assert detail(got[-1])["remote"] == f"127.0.0.1:{sink.port}"
        assert len(sink.received) == 1
    finally:
        sink.stop()


@pytest.mark.parametrize("layout", ["interpreter-linked-into-0700", "venv-inside-0700"])
def test_install_refuses_an_interpreter_the_user_cannot_reach(
        layout: str, qmail_user: QmailUser, public_python: Path, public_dir: Path) -> None:
    private = public_dir / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    venv_of = public_python.parent.parent
    if layout == "venv-inside-0700":
        # e.g. python3 -m venv /root/venv
        venv = private / "venv"
        shutil.copytree(venv_of, venv, symlinks=True)
    else:
        # e.g. a venv in /opt made by pyenv's python, which lives in /root (mode 700)
        venv = public_dir / "venv"
        shutil.copytree(venv_of, venv, symlinks=True)
        base = os.path.realpath(venv / "bin" / "python3")
        (private / "python3").symlink_to(base)
        (venv / "bin" / "python3").unlink()
        (venv / "bin" / "python3").symlink_to(private / "python3")
    home = _qmail_home(public_dir, qmail_user)
    result = _install(venv / "bin" / "python", home, qmail_user)
    assert result.returncode == 1
    err = result.stderr
    assert f"the new qmail-remote cannot even start as {qmail_user.name}" in err
    assert f"{private} (mode 700, owner root:root)" in err
    assert f"{qmail_user.name} cannot enter" in err
    assert "Unable to run qmail-remote." in err
    assert "Fix: install qremote into a virtual environment" in err
    assert "nothing was replaced" in err
    assert "Traceback" not in err
    _unchanged(home)


def test_install_refuses_when_the_user_cannot_read_a_control_file(
        qmail_user: QmailUser, public_python: Path, public_dir: Path) -> None:
    home = _qmail_home(public_dir, qmail_user)
    routes = home / "control" / "routes"
    os.chown(routes, 0, 0)
    routes.chmod(0o600)
    result = _install(public_python, home, qmail_user)
    assert result.returncode == 1
    err = result.stderr
    assert f"FAIL  control/routes: {routes} is mode 600, owner root:root: " \
           f"{qmail_user.name} cannot read it" in err
    assert f"Fix: chgrp {qmail_user.group_name} {routes} and chmod 640 {routes}" in err
    assert "self-test FAILED: 1 problem(s)" in err and "nothing was replaced" in err
    _unchanged(home)
    # A control directory the user cannot enter: the same, said of the directory.
    routes.chmod(0o644)
    (home / "control").chmod(0o700)
    result = _install(public_python, home, qmail_user)
    assert result.returncode == 1
    assert f"{home / 'control'} is mode 700, owner root:root: {qmail_user.name} cannot " \
           "enter it" in result.stderr
    _unchanged(home)


def test_install_refuses_control_files_with_errors(
        qmail_user: QmailUser, public_python: Path, public_dir: Path) -> None:
    home = _qmail_home(public_dir, qmail_user, "r;;mx|relay.test;;\n")
    result = _install(public_python, home, qmail_user)
    assert result.returncode == 1
    assert "control files have errors, every delivery would defer" in result.stderr
    assert "run qremote check" in result.stderr
    _unchanged(home)


def test_install_names_a_missing_user(public_python: Path, public_dir: Path,
                                      qmail_user: QmailUser) -> None:
    home = _qmail_home(public_dir, qmail_user)
    result = qremote_cli(public_python, "--qmail-home", str(home), "install", "--user",
                         "qrt-no-such-user")
    assert result.returncode == 1
    assert "there is no user 'qrt-no-such-user' on this host" in result.stderr
    assert "pass --user NAME" in result.stderr
    _unchanged(home)


def test_wrapper_pins_the_qmail_home_and_quotes_paths(
        qmail_user: QmailUser, public_python: Path, public_dir: Path) -> None:
    # Paths with a quote, a space and a $: the shell must take them as they are.
    where = public_dir / "it's a $HOME"
    where.mkdir()
    where.chmod(0o755)
    venv = where / "ven'v `x`"
    shutil.copytree(public_python.parent.parent, venv, symlinks=True)
    sink = Sink().start()
    try:
        home = _qmail_home(where, qmail_user, f"r;;127.0.0.1:{sink.port};;\n")
        result = _install(venv / "bin" / "python", home, qmail_user)
        assert result.returncode == 0, result.stderr
        assert f"QMAIL_HOME={home}" in result.stdout
        # No QMAIL_HOME in the environment: the wrapper's own says where the control
        # files are (not /var/qmail).
        got = _deliver_as(qmail_user, home)
        assert got[-1].startswith("K"), got
        assert len(sink.received) == 1
    finally:
        sink.stop()


def test_reinstall_dry_run_and_uninstall(qmail_user: QmailUser, public_python: Path,
                                         public_dir: Path) -> None:
    home = _qmail_home(public_dir, qmail_user)
    target, orig = home / "bin" / "qmail-remote", home / "bin" / "qmail-remote.orig"
    dry = _install(public_python, home, qmail_user, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would keep {target} as {orig}" in dry.stdout
    assert f"would create {home / MEMORY}" in dry.stdout
    _unchanged(home)
    assert _install(public_python, home, qmail_user).returncode == 0
    dry = _install(public_python, home, qmail_user, "--dry-run")
    lines = dry.stdout.splitlines()
    assert f"{target} is already the qremote wrapper; {orig} keeps qmail's original" \
        in lines
    assert any(line.startswith(f"would rewrite {target} (root:") for line in lines)
    assert not any(line.startswith("would ") and "is already" in line for line in lines)
    # Again for real: the owner and mode come from qmail-remote.orig.
    result = _install(public_python, home, qmail_user)
    assert result.returncode == 0 and "rewrote" in result.stdout
    assert orig.read_bytes() == ORIGINAL
    assert stat.S_IMODE(target.stat().st_mode) == 0o711  # the compiled client
    # uninstall: the original back, with its owner and mode; the memory file gone.
    result = qremote_cli(public_python, "--qmail-home", str(home), "uninstall")
    assert result.returncode == 0, result.stderr
    assert f"removed {home / MEMORY}" in result.stdout
    _unchanged(home)
    assert target.stat().st_gid == qmail_user.gid
    # --keep-memory keeps it.
    assert _install(public_python, home, qmail_user).returncode == 0
    result = qremote_cli(public_python, "--qmail-home", str(home), "uninstall",
                         "--keep-memory")
    assert result.returncode == 0 and f"kept {home / MEMORY}" in result.stdout
    assert (home / MEMORY).exists() and target.read_bytes() == ORIGINAL


def test_self_test_only_with_exactly_that_argument(qmail_user: QmailUser,
                                                   public_python: Path,
                                                   public_dir: Path) -> None:
    home = _qmail_home(public_dir, qmail_user)
    assert _install(public_python, home, qmail_user).returncode == 0
    wrapper = str(home / "bin" / "qmail-remote")
    done = run_as_user(qmail_user, [wrapper, "--self-test"], env={})
    assert done.returncode == 0 and done.stdout.endswith(b"self-test passed\n")
    # qmail-rspawn always passes HOST SENDER RECIP: never a self-test, a delivery.
    done = run_as_user(qmail_user, [wrapper, "--self-test", "a@b.org", "c@d.org"],
                       input=b"hi\n", env={})
    assert done.returncode == 0 and b"self-test" not in done.stdout
    assert reports(done.stdout)[-1][0] in "ZD"
