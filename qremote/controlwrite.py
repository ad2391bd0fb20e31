"""Saving an edited control file safely (the console's save, and any tool's).

The edit is made on a :class:`~qremote.controlfile.ControlFile` (only the changed lines
differ); :func:`save` then refuses when the file on disk is no longer the one that was
read (another operator's edit is never lost), keeps the previous file as ``NAME.bak``,
and replaces the file atomically (temporary file, fsync, rename, directory fsync) with
the old file's mode and owner.
"""

from __future__ import annotations

import difflib
import os
import shutil
from pathlib import Path

from qremote.errors import QremoteError


class ConflictError(QremoteError):
    """The file changed on disk since it was read; nothing was written."""


def diff(name: str, before: bytes, after: bytes) -> str:
    """A unified diff of the change, for the operator to confirm."""
    old = before.decode("utf-8", "replace").splitlines(keepends=True)
    new = after.decode("utf-8", "replace").splitlines(keepends=True)
    return "".join(difflib.unified_diff(old, new, f"control/{name}", f"control/{name} (new)"))


def save(path: Path, before: bytes | None, after: bytes) -> Path | None:
    """Write ``after`` to ``path`` if it still holds ``before`` (None: must not exist).

    Returns the backup path (None when the file is new). Raises ConflictError."""
    try:
        current: bytes | None = path.read_bytes()
    except FileNotFoundError:
        current = None
    if current != before:
        raise ConflictError(f"{path} changed on disk since it was read; nothing was "
                            "written. Reload it and make the change again.")
    backup = None
    st = path.stat() if current is not None else None
    if current is not None:
        backup = path.with_name(path.name + ".bak")
        shutil.copy2(path, backup)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, after)
        if st is not None:
            os.fchmod(fd, st.st_mode & 0o7777)
            try:
                os.fchown(fd, st.st_uid, st.st_gid)
            except PermissionError:
                pass
        else:
            os.fchmod(fd, 0o644)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return backup
