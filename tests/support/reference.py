"""qmail's own qmail-remote (notqmail, ../shared/reference), built once, as an oracle.

The reference reads ``control/*`` relative to the qmail home compiled into it
(``conf-qmail``). It is built once per test session for a fixed home whose
``control`` is a symbolic link; :meth:`Reference.run` points that link at a test's
own control directory before each run, so one build serves every test (pytest runs
tests one after another).

Where the tarball, a C compiler or make is missing (a user's fresh clone), the
fixture skips with a message saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARBALL = REPO.parent / "shared" / "reference" / "notqmail-a7012e4.tar.gz"


def unavailable() -> str | None:
    """Why the reference cannot be built here, or None when it can."""
    if not TARBALL.is_file():
        return (f"the reference qmail-remote is not here ({TARBALL} is missing): "
                "the differential tests need ../shared/reference beside the checkout")
    for tool in ("make", "cc"):
        if shutil.which(tool) is None:
            return f"the reference qmail-remote needs '{tool}' to build, and it is missing"
    return None


class Reference:
    """A built reference ``qmail-remote`` and the qmail home compiled into it."""

    def __init__(self, binary: Path, home: Path) -> None:
        self.binary = binary
        self.home = home

    def use_control(self, control: Path) -> None:
        """Point the compiled-in home's ``control`` at ``control``."""
        link = self.home / "control"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(control.resolve())

    def run(self, control: Path, args: list[str] | list[bytes], message: bytes,
            timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        """Run the reference with ``control`` as its control directory; stderr is kept
        apart (qmail-rspawn would merge it)."""
        self.use_control(control)
        return subprocess.run([str(self.binary), *args], input=message,
                              capture_output=True, timeout=timeout, env={})


def build(workdir: Path) -> Reference:
    """Extract and build the reference's qmail-remote under ``workdir``."""
    home = workdir / "home"
    (home / "queue" / "lock").mkdir(parents=True)
    with tarfile.open(TARBALL) as tar:
        tar.extractall(workdir, filter="data")
    (src,) = [p for p in workdir.iterdir() if p.name.startswith("notqmail")]
    (src / "conf-qmail").write_text(f"{home}\n")
    result = subprocess.run(["make", "qmail-remote"], cwd=src, capture_output=True,
                            timeout=300, env={**os.environ, "MAKEFLAGS": ""})
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).decode(errors="replace")[-2000:]
        raise RuntimeError(f"building the reference qmail-remote failed:\n{tail}")
    return Reference(src / "qmail-remote", home)
