"""A throwaway qmailr-like user, directories it can reach, and a Python it can run.

Tests of "what qmailr sees" need a real unprivileged user (CI runs as root): the
session fixture ``qmail_user`` creates one with ``useradd`` under a unique name and
deletes it at the end; without root the tests skip.

Such a user can reach neither pytest's ``tmp_path`` (under a 0700 directory) nor, on
many machines, the interpreter running the tests (pyenv under /root). ``public_dir``
gives a 0755 directory under /tmp, and ``public_python`` a virtual environment made
there from a Python the user can run (the system's), with this checkout's qremote
and the running dnspython copied into it: an installation as README describes it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from qremote.qmailuser import QmailUser, lookup, privileges

REPO = Path(__file__).resolve().parents[2]


def _useradd() -> str | None:
    for path in ("/usr/sbin/useradd", "/sbin/useradd", shutil.which("useradd")):
        if path and os.access(path, os.X_OK):
            return path
    return None


@pytest.fixture(scope="session")
def qmail_user() -> Iterator[QmailUser]:
    """A new system user with its own group, like qmailr (deleted at the end)."""
    if os.geteuid() != 0:
        pytest.skip("creating a qmailr-like user needs root (CI runs as root)")
    useradd = _useradd()
    if useradd is None:
        pytest.skip("useradd is not installed")
    name = f"qrt{uuid.uuid4().hex[:10]}"
    subprocess.run([useradd, "--system", "--user-group", "--no-create-home",
                    "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True)
    try:
        user = lookup(name)
        assert user is not None
        yield user
    finally:
        sbin = os.path.dirname(useradd)
        subprocess.run([os.path.join(sbin, "userdel"), name], capture_output=True)
        if os.path.exists(os.path.join(sbin, "groupdel")):  # userdel may have done it
            subprocess.run([os.path.join(sbin, "groupdel"), name], capture_output=True)


def make_public_dir(prefix: str = "qremote-test-") -> Path:
    """A new 0755 directory under /tmp (the caller removes it)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A 0755 directory under /tmp that any user can reach, removed afterwards."""
    path = make_public_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_as_user(user: QmailUser, args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``args`` as ``user`` (text mode, from /, 120 s at most)."""
    kwargs.setdefault("cwd", "/")
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("timeout", 120)
    return subprocess.run(args, **privileges(user), **kwargs)


def _usable_base(user: QmailUser) -> str | None:
    """A Python 3.11+ that ``user`` can run with its standard library."""
    candidates = ["/usr/bin/python3", "/usr/local/bin/python3", shutil.which("python3"),
                  sys._base_executable, sys.executable]
    for cand in dict.fromkeys(c for c in candidates if c):
        try:
            done = run_as_user(user, [cand, "-I", "-c", "import sys, venv; "
                                      "print(sys.version_info >= (3, 11))"], env={})
        except OSError:
            continue
        if done.returncode == 0 and done.stdout.strip() == b"True":
            return cand
    return None


def make_venv(base: str, where: Path) -> Path:
    """A virtual environment at ``where`` made from ``base``, holding this checkout's
    qremote and the running dnspython; returns its ``bin/python``."""
    subprocess.run([base, "-m", "venv", "--without-pip", str(where)], check=True,
                   capture_output=True, timeout=120)
    python = where / "bin" / "python"
    site = subprocess.run([str(python), "-I", "-c",
                           "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    import dns

    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "qremote", Path(site) / "qremote", ignore=ignore)
    shutil.copytree(Path(dns.__file__).parent, Path(site) / "dns", ignore=ignore)
    subprocess.run(["chmod", "-R", "a+rX", str(where)], check=True)
    return python


@pytest.fixture(scope="session")
def public_python(qmail_user: QmailUser) -> Iterator[Path]:
    """``bin/python`` of a venv that ``qmail_user`` can run, with qremote installed."""
    base = _usable_base(qmail_user)
    if base is None:
        pytest.skip("no Python 3.11+ on this machine that an unprivileged user can run")
    root = make_public_dir("qremote-venv-")
    try:
        yield make_venv(base, root / "venv")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def qremote_cli(python: Path, *args: str, user: QmailUser | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``qremote ARGS`` run by ``python`` (the venv's own qremote, not this checkout's),
    as root or as ``user``."""
    cmd = [str(python), "-m", "qremote.cli", *args]
    env = {"PATH": "/usr/bin:/bin"} if env is None else env
    if user is None:
        return subprocess.run(cmd, cwd="/", capture_output=True, text=True, timeout=180,
                              env=env)
    return run_as_user(user, cmd, text=True, env=env, timeout=180)
