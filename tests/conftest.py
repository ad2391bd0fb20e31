"""Shared fixtures: qmail homes in tmp_path, a real DNS server on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import reference as _reference
from tests.support.dnsserver import DnsServer, Zone

# Fixtures qmail_user, public_dir, public_python: a qmailr-like user (root only).
pytest_plugins = ["tests.support.users"]

REPO = Path(__file__).resolve().parent.parent
DEMO_HOME = REPO / "qremote" / "demo"


@pytest.fixture
def make_home(tmp_path: Path) -> Callable[..., Path]:
    """Write control files (name=text or bytes) into a fresh qmail home."""

    def make(**files: str | bytes) -> Path:
        control = tmp_path / "qmail" / "control"
        control.mkdir(parents=True, exist_ok=True)
        (control / "me").write_text("relay.example.org\n")
        # No DNS query may leave this machine: unless a test brings its own server,
        # DNS goes to a closed loopback port and fails at once.
        (control / "dnsservers").write_text("127.0.0.1:9\n")
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            (control / name).write_bytes(data)
        return tmp_path / "qmail"

    return make


@pytest.fixture
def demo_home() -> Iterator[Path]:
    """The console's demo qmail home (qconsole.demo.make_demo_home: a temporary
    copy of the sample), removed afterwards."""
    import shutil

    from qconsole.demo import make_demo_home

    home = make_demo_home()
    try:
        yield home
    finally:
        shutil.rmtree(home.parent, ignore_errors=True)


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """A DNS server on 127.0.0.1 with an empty zone; add records with zone.add()."""
    server = DnsServer(Zone()).start()
    yield server
    server.stop()


def dnsservers_file(server: DnsServer) -> str:
    """control/dnsservers content pointing at ``server``."""
    return "".join(f"{ip}:{port}\n" for ip, port in server.servers)


def run_cli(*args: str, home: Path | None = None, user: int | None = None,
            ) -> subprocess.CompletedProcess[str]:
    """Run ``qremote ARGS`` as a real process (the console script's module)."""
    env = dict(os.environ)
    if home is not None:
        env["QMAIL_HOME"] = str(home)
    kwargs = {}
    if user is not None:
        kwargs["user"] = user
    return subprocess.run([sys.executable, "-m", "qremote.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60, cwd=REPO, **kwargs)


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> _reference.Reference:
    """qmail's own qmail-remote, built once from ../shared/reference (skips if absent)."""
    why = _reference.unavailable()
    if why:
        pytest.skip(why)
    return _reference.build(tmp_path_factory.mktemp("reference"))


@pytest.fixture
def logfast_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private cache for the console's compiled log code ($XDG_CACHE_HOME, not yet
    created), with the loaded library forgotten before and after the test."""
    from qconsole import logfastlib

    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    logfastlib.reset()
    try:
        yield cache
    finally:
        logfastlib.reset()
