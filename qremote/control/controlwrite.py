"""Saving an edited control file safely (the console's save, and any tool's).

The edit is made on a :class:`~qremote.control.controlfile.ControlFile` (only the changed lines
differ); :func:`save` then refuses when the file on disk is no longer the one that was
read (another operator's edit is never lost), keeps the previous file as ``NAME.bak``,
and replaces the file atomically (temporary file, fsync, rename, directory fsync) with
the old file's mode and owner. The backup and every temporary file have their final
owner and mode before their first byte is written (``routes`` holds passwords).

A control file that is a symbolic link (to a file that configuration management keeps)
stays one: its target is replaced, in the target's directory, as ``vi`` writes through
a link; the backup is beside the link, where the operator looks for it.
"""

from __future__ import annotations

import difflib
import os
import stat
from pathlib import Path

from qremote.errors import QremoteError


class ConflictError(QremoteError):
    """The file changed on disk since it was read; nothing was written."""


def _lines(data: bytes) -> list[str]:
    """The file's lines as qmail reads them: each ends at a LF (a form feed or U+2028
    in a comment is no line break), the last perhaps without one."""
    parts = data.decode("utf-8", "replace").split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def diff(name: str, before: bytes, after: bytes) -> str:
    """A unified diff of the change, for the operator to confirm."""
    old, new = _lines(before), _lines(after)
    # A last line without its line break is followed by git's marker: without it the
    # next diff line would be glued to it (and a routes line masked with it).
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in difflib.unified_diff(old, new, f"control/{name}",
                                                    f"control/{name} (new)"))


def mask_diff(name: str, text: str) -> str:
    """``text`` (a :func:`diff` of control/``name``) with every password masked: the
    PASS field of each ``routes`` line on both sides. Other files are unchanged."""
    if name != "routes":
        return text
    from qremote.control.routes import mask_password

    out = []
    for line in text.splitlines(keepends=True):
        if line[:1] in " +-" and not line.startswith(("+++ ", "--- ")):
            line = line[0] + mask_password(line[1:])
        out.append(line)
    return "".join(out)


def _write_file(path: Path, data: bytes, mode: int, uid: int, gid: int) -> None:
    """Write ``data`` to ``path`` (a new temporary name, then renamed over ``path``),
    with its final owner and mode set before the first byte is written: created 0600
    (the umask can only remove bits), chowned and chmodded, then written and fsynced."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchown(fd, uid, gid)
        except PermissionError:
            try:
                os.fchown(fd, -1, gid)  # not root: keep the group if we are in it
            except PermissionError:
                pass
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)


def _new_file_owner(name: str) -> tuple[int, int, int]:
    """(mode, uid, gid) of a control file that did not exist: ``routes`` holds
    passwords, so 0640 with the qmail group (when there is one), others 0644."""
    import grp

    gid = os.getegid()
    if name == "routes":
        try:
            gid = grp.getgrnam("qmail").gr_gid
        except KeyError:
            pass
        return 0o640, os.geteuid(), gid
    return 0o644, os.geteuid(), gid


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
    target = Path(os.path.realpath(path))
    if current is not None:
        st = target.stat()
        mode, uid, gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
        backup = path.with_name(path.name + ".bak")
        _write_file(backup, current, mode, uid, gid)
        os.utime(backup, ns=(st.st_atime_ns, st.st_mtime_ns))
    else:
        mode, uid, gid = _new_file_owner(path.name)  # (the control file's name)
    _write_file(target, after, mode, uid, gid)
    # (a link's target lies in another directory than the backup: both are synced)
    for directory in dict.fromkeys((target.parent, path.parent)):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return backup
