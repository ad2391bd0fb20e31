"""``qremote check`` sees what the user qmail-remote runs as sees.

Root reads every file; qmailr may not. These run for real with a throwaway qmailr-like
user (root only): ``check --user NAME`` asks the kernel in a child that has dropped to
that user.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from qremote.qmailuser import (
    QmailUser,
    default_ca_locations,
    lookup,
    run_as,
    trust_store_problem,
)
from tests.conftest import run_cli
from tests.support.users import qremote_cli


def _home(where: Path, user: QmailUser, routes: str = "r;;127.0.0.1:2525;u;pw\n") -> Path:
    control = where / "qmail" / "control"
    control.mkdir(parents=True)
    for d in (where / "qmail", control):
        d.chmod(0o755)
    (control / "me").write_text("relay.example.org\n")
    (control / "dnsservers").write_text("127.0.0.1:9\n")
    (control / "routemap").write_text("*;*;r\n")
    (control / "routes").write_text(routes)
    os.chown(control / "routes", 0, user.gid)
    for name, mode in (("me", 0o644), ("dnsservers", 0o644), ("routemap", 0o644),
                       ("routes", 0o640)):
        (control / name).chmod(mode)
    return where / "qmail"


def _check(home: Path, user: str):
    return run_cli("--qmail-home", str(home), "check", "--user", user)


def test_files_the_user_cannot_read_are_errors(qmail_user: QmailUser,
                                               public_dir: Path) -> None:
    home = _home(public_dir, qmail_user)
    result = _check(home, qmail_user.name)
    assert result.returncode == 0 and result.stdout == "", result.stdout
    # routes 600 root:root: root reads it, qmailr does not.
    routes = home / "control" / "routes"
    os.chown(routes, 0, 0)
    routes.chmod(0o600)
    result = _check(home, qmail_user.name)
    assert result.returncode == 1
    assert result.stdout == (
        f"control/routes:0: error: qmail-remote runs as {qmail_user.name}, which cannot "
        f"read this file: {routes} is mode 600, owner root:root: {qmail_user.name} cannot "
        f"read it; every delivery would defer. Fix: chgrp {qmail_user.group_name} {routes} "
        f"and chmod 640 {routes} (it holds passwords: not 644)\n")
    assert "1 error(s)" in result.stderr
    # A directory on the way that the user cannot enter: every file in it is an error.
    os.chown(routes, 0, qmail_user.gid)
    routes.chmod(0o640)
    control = home / "control"
    control.chmod(0o750)
    result = _check(home, qmail_user.name)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "control/me", "control/routes", "control/routemap", "control/dnsservers"]
    assert all(f"{qmail_user.name} cannot enter {control} (mode 750, owner root:root)"
               in line and f"chmod o+x {control}" in line for line in lines), lines


def test_no_such_user_is_a_warning(public_dir: Path, qmail_user: QmailUser) -> None:
    home = _home(public_dir, qmail_user)
    result = _check(home, "qrt-no-such-user")
    assert result.returncode == 0
    assert result.stdout.startswith(
        "control/: warning: there is no user 'qrt-no-such-user' on this host")
    assert "checked what root can read instead" in result.stdout


def test_check_run_by_another_user_says_so(qmail_user: QmailUser, public_python: Path,
                                           public_dir: Path) -> None:
    if lookup("nobody") is None:
        pytest.skip("no user nobody")
    home = _home(public_dir, qmail_user)
    result = qremote_cli(public_python, "--qmail-home", str(home), "check", "--user",
                         "nobody", user=qmail_user)
    assert result.returncode == 0, result.stdout
    assert result.stdout == (
        "control/: warning: run qremote check as root (or as nobody) to check that "
        "nobody, the user qmail-remote runs as, can read every control file; checked "
        f"what {qmail_user.name} can read instead\n")


def test_unsearchable_qmail_home_is_a_message(qmail_user: QmailUser, public_python: Path,
                                              public_dir: Path) -> None:
    private = public_dir / "private"
    private.mkdir()
    private.chmod(0o700)
    home = _home(private, qmail_user)
    result = qremote_cli(public_python, "--qmail-home", str(home), "check",
                         user=qmail_user)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == (
        f"control/: error: cannot read {home / 'control'}: {qmail_user.name} cannot enter "
        f"{private} (mode 700, owner root:root), on the way to {home / 'control'}; run "
        "qremote check as root (or as a user who can read the control files)\n")


def test_trust_store_as_the_user(qmail_user: QmailUser, public_dir: Path) -> None:
    # OpenSSL's built-in locations, as qmail-remote sees them with an empty environment.
    cafile, capath = default_ca_locations()
    if trust_store_problem(cafile, capath) is not None:
        pytest.skip("this machine has no CA certificates (ca-certificates)")
    assert run_as(qmail_user, trust_store_problem, cafile, capath, qmail_user.name) is None
    # A CA file only root can read, and a directory without certificates.
    pem = public_dir / "ca.pem"
    shutil.copyfile(os.path.realpath(cafile), pem)
    pem.chmod(0o600)
    empty = public_dir / "certs"
    empty.mkdir()
    empty.chmod(0o755)
    problem = run_as(qmail_user, trust_store_problem, str(pem), str(empty),
                     qmail_user.name)
    assert problem == (f"{pem} is mode 600, owner root:root: {qmail_user.name} cannot "
                       f"read it; the directory {empty} holds no certificate")
    pem.chmod(0o644)
    assert run_as(qmail_user, trust_store_problem, str(pem), str(empty),
                  qmail_user.name) is None


def test_tls_verify_route_checked_as_the_user(qmail_user: QmailUser,
                                              public_dir: Path) -> None:
    if trust_store_problem(*default_ca_locations()) is not None:
        pytest.skip("this machine has no CA certificates (ca-certificates)")
    home = _home(public_dir, qmail_user, "r;;127.0.0.1:2525;u;pw;tls=verify\n")
    result = _check(home, qmail_user.name)
    assert result.returncode == 0 and result.stdout == "", result.stdout
