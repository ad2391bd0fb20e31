"""``qremote install`` / ``uninstall``: put the drop-in in place of qmail's binary.

The wrapper at ``QMAIL_HOME/bin/qmail-remote`` runs this installation's Python in
isolated mode (``-I``) and exits 111 (qmail-rspawn: temporary failure) when it cannot
even start, so a broken install defers mail instead of bouncing it. The original binary
is kept as ``qmail-remote.orig`` and never overwritten.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

MARKER = "# qremote wrapper"


def wrapper_text(python: str) -> str:
    """The wrapper script for the interpreter at ``python``."""
    # qmail-remote itself always exits 0, so any other status means it could not
    # start: 111 makes qmail-rspawn defer. stderr would be read as a report: dropped.
    return f"""#!/bin/sh
{MARKER}: runs qremote's qmail-remote; exit 111 (defer) if it cannot start.
[ -x '{python}' ] || exit 111
'{python}' -I -m qremote.remote "$@" 2>/dev/null || exit 111
"""


def is_wrapper(path: Path) -> bool:
    """True when ``path`` is a wrapper this module wrote."""
    try:
        with open(path, "rb") as fh:
            return MARKER.encode() in fh.read(4096)
    except OSError:
        return False


def install(home: Path, dry_run: bool = False, python: str | None = None) -> list[str]:
    """Install the wrapper; returns the steps (done, or to do with ``dry_run``)."""
    bin_dir = home / "bin"
    target, orig = bin_dir / "qmail-remote", bin_dir / "qmail-remote.orig"
    python = python or sys.executable
    steps: list[str] = []
    if not bin_dir.is_dir():
        raise FileNotFoundError(f"{bin_dir} is not a directory; is {home} the qmail home?")
    if target.exists() and not is_wrapper(target):
        if orig.exists():
            steps.append(f"keep {orig} (exists; never overwritten); replace {target}")
        else:
            steps.append(f"rename {target} to {orig}")
            if not dry_run:
                os.rename(target, orig)
    elif target.exists():
        steps.append(f"{target} is already the qremote wrapper; rewrite it")
    steps.append(f"write {target} (runs {python} -I -m qremote.remote)")
    if not dry_run:
        tmp = target.with_name(".qmail-remote.qremote-tmp")
        tmp.write_text(wrapper_text(python))
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    steps += _memory_file(home, dry_run)
    return steps


def _memory_file(home: Path, dry_run: bool) -> list[str]:
    """Create the failover memory file, writable by qmailr (as qmail does for tcpto)."""
    from qremote.tcpto import FILE

    path = home / FILE
    if path.exists() or not path.parent.is_dir():
        return []
    try:
        import pwd

        owner = pwd.getpwnam("qmailr")
        uid, gid = owner.pw_uid, owner.pw_gid
    except KeyError:
        uid = gid = -1
    who = "qmailr" if uid >= 0 else "the current user (no qmailr user here)"
    if not dry_run:
        path.touch(mode=0o644)
        if uid >= 0:
            os.chown(path, uid, gid)
    return [f"create {path} owned by {who}"]


def uninstall(home: Path, dry_run: bool = False) -> list[str]:
    """Put ``qmail-remote.orig`` back; returns the steps."""
    bin_dir = home / "bin"
    target, orig = bin_dir / "qmail-remote", bin_dir / "qmail-remote.orig"
    if target.exists() and not is_wrapper(target):
        return [f"{target} is not the qremote wrapper; nothing to do"]
    if not orig.exists():
        raise FileNotFoundError(f"{orig} is missing: cannot restore qmail's qmail-remote")
    steps = [f"rename {orig} to {target}"]
    if not dry_run:
        os.replace(orig, target)
    return steps
