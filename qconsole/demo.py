"""The demo qmail home: the bundled sample control files, copied to a temporary folder
so that the console works on a fresh machine with no qmail, no root and no network."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import qremote

SAMPLE = Path(qremote.__file__).resolve().parent / "demo"


def make_demo_home() -> Path:
    """A fresh temporary qmail home holding the sample control files."""
    home = Path(tempfile.mkdtemp(prefix="qconsole-demo-")) / "qmail"
    shutil.copytree(SAMPLE, home)
    (home / "control" / "routes").chmod(0o640)  # it holds a password
    (home / "queue" / "lock").mkdir(parents=True, exist_ok=True)
    return home
