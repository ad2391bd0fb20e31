"""The worker's clients, ready to run in tests, and qmail homes for a worker.

The C client has the qmail home compiled in; it is built once per session (pass and
relay mode) for a home that is a symbolic link, which :meth:`Clients.use` points at
each test's own qmail home (tests run one after another). The Python client reads
``QMAIL_HOME`` from its environment.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from qremote.client.build import PYCLIENT, build_client

# the C client as install builds it (freestanding on x86-64), the same in relay mode,
# the C client with the C library (as built where freestanding is not), the Python one
KINDS = ("c", "relay", "libc", "py")


class Clients:
    """qmail-remote clients for the home last given to :meth:`use`."""

    def __init__(self, workdir: Path) -> None:
        self.link = workdir / "home"
        self.home: Path | None = None
        self.binaries: dict[str, Path] = {}
        self.runtimes: dict[str, str] = {}
        for kind, relay, only in (("c", False, None), ("relay", True, None),
                                  ("libc", False, "static")):
            built = build_client(self.link, sys.executable, workdir / f"qmail-remote-{kind}",
                                 relay=relay, only=only)
            if built.path is None and only == "static":  # no static C library here
                built = build_client(self.link, sys.executable,
                                     workdir / f"qmail-remote-{kind}", only="dynamic")
            if built.path is None:
                pytest.skip(f"the C client cannot be built here: {built.reason}")
            self.binaries[kind] = built.path
            self.runtimes[kind] = built.reason

    def use(self, home: Path) -> None:
        """Point the compiled-in home at ``home``."""
        if self.link.is_symlink():
            self.link.unlink()
        self.link.symlink_to(home)
        self.home = home

    def command(self, kind: str, args: list[str]) -> tuple[list[str], dict[str, str]]:
        """argv and environment to run client ``kind`` for qmail-remote's ``args``,
        as qmail-rspawn would (an empty environment for the C client)."""
        if kind == "py":
            assert self.home is not None
            return ([sys.executable, "-I", "-S", str(PYCLIENT), *args],
                    {"QMAIL_HOME": str(self.home)})
        return [str(self.binaries[kind]), *args], {}


def worker_home(make_home, **files: str) -> Path:
    """A qmail home (control files as for ``make_home``) with ``queue/lock``."""
    home = make_home(**files)
    (home / "queue" / "lock").mkdir(parents=True, exist_ok=True)
    return home


def relay_files(port: int, **extra: str) -> dict[str, str]:
    """Control files routing every delivery to 127.0.0.1:``port`` from 127.0.0.2."""
    return {"routes": f"r;127.0.0.2;127.0.0.1:{port};;\n", "routemap": "*;*;r\n",
            "timeoutconnect": "5\n", "timeoutremote": "30\n", **extra}


@pytest.fixture(scope="session")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Clients:
    """The clients, built once (import this fixture into a test module)."""
    return Clients(tmp_path_factory.mktemp("clients"))
