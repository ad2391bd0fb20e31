"""A qmail home laid out as qmail installs it, for the tests of install and check that
run as a qmailr-like user (tests/support/qmailuser fixtures)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

ORIGINAL = b"\x7fELF qmail's own qmail-remote"


class User(Protocol):
    uid: int
    gid: int


def installed_home(where: Path, user: User, routes: str = "r;;127.0.0.1:9;;\n",
                   locked: bool = True, tcpto: bool = False) -> Path:
    """``where/qmail``: bin/qmail-remote root:GROUP 0711 (holding :data:`ORIGINAL`),
    control files readable by all but ``routes`` (0640 root:GROUP), a routemap sending
    everything to the first route of ``routes``. ``locked``: queue/lock 0750
    root:GROUP (qmailr may enter it, not write in it: qmail's is qmailq:qmail), else
    0755 root. ``tcpto``: qmail's queue/lock/tcpto and qremote's failover memory,
    owned by the user, as after qmail-send and install ran."""
    home = where / "qmail"
    for sub in ("bin", "control", "queue/lock"):
        (home / sub).mkdir(parents=True)
        (home / sub).chmod(0o755)
    lock = home / "queue" / "lock"
    if locked:
        os.chown(lock, 0, user.gid)
        lock.chmod(0o750)
    if tcpto:
        for name, data in (("tcpto", b"\0" * 1024), ("qremote-tcpto", b"")):
            (lock / name).write_bytes(data)
            os.chown(lock / name, user.uid, user.gid)
            (lock / name).chmod(0o644)
    binary = home / "bin" / "qmail-remote"
    binary.write_bytes(ORIGINAL)
    os.chown(binary, 0, user.gid)
    binary.chmod(0o711)
    control = home / "control"
    for name, text in (("me", "relay.example.org\n"), ("dnsservers", "127.0.0.1:9\n"),
                       ("routemap", f"*;*;{routes.split(';', 1)[0]}\n"),
                       ("routes", routes)):
        (control / name).write_text(text)
        (control / name).chmod(0o644)
    os.chown(control / "routes", 0, user.gid)
    (control / "routes").chmod(0o640)
    return home
