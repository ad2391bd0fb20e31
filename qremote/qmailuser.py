"""The user qmail-remote runs as (``qmailr``), and what that user can reach.

qmail-start runs qmail-rspawn, hence every qmail-remote, as ``qmailr`` with its groups
(initgroups) and an empty environment. Root, who runs ``qremote install`` and
``qremote check``, reads every file; qmailr may not. So these questions are asked of
the kernel by a process that *is* that user: a forked child that has dropped to its
uid, gid and groups (:func:`run_as`), or the installed qmail-remote's self-test.
:func:`explain` then names the file or the directory on the way that is at fault.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

DEFAULT_USER = "qmailr"
# qmail-start drops to qmailr with the qmail group (conf-groups, first line).
DEFAULT_GROUP = "qmail"
# qmail-remote's own failover memory: qmail's install makes it, owned by the remote user.
QMAIL_TCPTO = Path("queue") / "lock" / "tcpto"
# qremote's failover memory (qremote.delivery.tcpto.FILE; not imported: see run_as).
MEMORY_FILE = Path("queue") / "lock" / "qremote-tcpto"


class QmailUser(NamedTuple):
    """A user and the groups a process of qmail-start's running as that user has."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]

    def describe(self) -> str:
        """``qmailr (uid 1001, gid 1002)``."""
        return f"{self.name} (uid {self.uid}, gid {self.gid})"

    @property
    def group_name(self) -> str:
        """The name of the user's group (its number when it has none)."""
        return group_name(self.gid)


def group_name(gid: int) -> str:
    """The name of group ``gid``, or the number as text."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def user_name(uid: int) -> str:
    """The name of user ``uid``, or the number as text."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def tcpto_owner(home: Path) -> int | None:
    """The owner of qmail's ``queue/lock/tcpto`` (the user qmail-rspawn runs qmail-remote
    as), or None when it cannot be seen or belongs to root."""
    try:
        uid = os.stat(home / QMAIL_TCPTO).st_uid
    except OSError:
        return None
    return uid or None


def remote_user(home: Path) -> tuple[str, str]:
    """The name of the user qmail-remote runs as, and how it was found: the owner of
    qmail's own ``queue/lock/tcpto`` (qmail's install gives it to its remote user, whatever
    conf-users names it), else ``qmailr``, qmail's default."""
    path = home / QMAIL_TCPTO
    try:
        uid = os.stat(path).st_uid
    except PermissionError:
        return DEFAULT_USER, (f"qmail's default name: {user_name(os.geteuid())} cannot "
                              f"see {path}, which qmail gives its remote user")
    except OSError:
        return DEFAULT_USER, (f"qmail's default name: there is no {path}, which qmail "
                              "gives its remote user")
    if uid:
        try:
            return pwd.getpwuid(uid).pw_name, f"the owner of {path}"
        except KeyError:
            pass
    return DEFAULT_USER, (f"qmail's default name: {path} belongs to "
                          f"{user_name(uid)}, not to a remote user")


def lookup(name: str = DEFAULT_USER, group: str | None = DEFAULT_GROUP) -> QmailUser | None:
    """The user ``name`` with the group qmail-start gives it (``group`` when that group
    exists, else the user's own), plus its supplementary groups; None when no such user."""
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        return None
    gid = pw.pw_gid
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            pass
    groups = tuple(dict.fromkeys([gid, *os.getgrouplist(name, gid)]))
    return QmailUser(name, pw.pw_uid, gid, groups)


def is_current(user: QmailUser) -> bool:
    """True when this process already runs as ``user`` (nothing to drop)."""
    return os.geteuid() == user.uid


def can_become(user: QmailUser) -> bool:
    """True when this process can run code as ``user``: it is root, or that user."""
    return os.geteuid() == 0 or is_current(user)


def privileges(user: QmailUser) -> dict[str, Any]:
    """``subprocess`` arguments that start a child as ``user`` (none when it is us)."""
    if is_current(user):
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": list(user.groups)}


def run_as(user: QmailUser, func: Callable[..., Any], *args: Any) -> Any:
    """``func(*args)`` run by a forked child that has dropped to ``user`` with an empty
    environment, as qmail-start does; its result must be JSON. Needs root (or to be
    ``user`` already, then ``func`` runs here). Raises OSError when the child fails.

    The child may not be able to read Python's own files: ``func`` must import nothing
    that the parent has not imported already."""
    if is_current(user):
        return func(*args)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 1
        try:
            os.close(read_end)
            os.setgroups(list(user.groups))
            os.setgid(user.gid)
            os.setuid(user.uid)
            os.environ.clear()
            try:
                result = {"result": func(*args)}
            except Exception as exc:  # reported by the parent
                result = {"error": f"{type(exc).__name__}: {exc}"}
            data = json.dumps(result).encode()
            while data:
                data = data[os.write(write_end, data):]
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    with os.fdopen(read_end, "rb") as fh:
        while chunk := fh.read(65536):
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if status != 0 or not chunks:
        raise OSError(f"the check run as {user.name} failed (status {status})")
    answer = json.loads(b"".join(chunks))
    if "error" in answer:
        raise OSError(f"the check run as {user.name} failed: {answer['error']}")
    return answer["result"]


def mode_owner(st: os.stat_result) -> str:
    """``mode 600, owner root:root``."""
    return (f"mode {stat.S_IMODE(st.st_mode):o}, owner "
            f"{user_name(st.st_uid)}:{group_name(st.st_gid)}")


def blocked_dir(path: str) -> str | None:
    """The first directory on the way to ``path`` that this process cannot search
    (enter), following symbolic links as the kernel does; None when there is none."""
    todo = list(reversed(PurePosixPath(os.path.abspath(path)).parts[1:]))
    current = "/"
    links = 0
    while todo:
        if not os.access(current, os.X_OK):
            return current
        name = todo.pop()
        if name == "..":
            current = os.path.dirname(current)
            continue
        if name in ("", "."):
            continue
        nxt = os.path.join(current, name)
        try:
            st = os.lstat(nxt)
        except OSError:
            return None  # missing: the caller says so
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > 40:
                return None
            target = PurePosixPath(os.readlink(nxt))
            if target.is_absolute():
                current = "/"
                todo.extend(reversed(target.parts[1:]))
            else:
                todo.extend(reversed(target.parts))
        elif not todo:
            return None
        else:
            current = nxt
    return None


_VERBS = {os.R_OK: "read", os.W_OK: "write", os.X_OK: "run",
          os.R_OK | os.X_OK: "read", os.R_OK | os.W_OK: "write",
          os.W_OK | os.X_OK: "write in"}


def explain(path: str | Path, need: int, who: str) -> str | None:
    """Why this process (running as ``who``) cannot use ``path`` for ``need``
    (``os.R_OK``, ``os.W_OK``, ``os.X_OK``), or None when it can."""
    path = str(path)
    if os.access(path, need):
        return None
    where = blocked_dir(path)
    if where is not None:
        try:
            how = f" ({mode_owner(os.stat(where))})"
        except OSError:
            how = ""
        if os.path.abspath(path).startswith(where.rstrip("/") + "/"):
            return f"{who} cannot enter {where}{how}, on the way to {path}"
        return (f"{path} is a symbolic link into {where}{how}, which {who} cannot "
                "enter")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"{path} does not exist"
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    verb = _VERBS.get(need, "use")
    if stat.S_ISDIR(st.st_mode):
        verb = "enter" if need & os.X_OK and not os.access(path, os.X_OK) else verb
    return f"{path} is {mode_owner(st)}: {who} cannot {verb} it"


def can_read(path: Path) -> OSError | None:
    """None when this process can open ``path`` for reading; else the error."""
    try:
        with open(path, "rb"):
            return None
    except OSError as exc:
        return exc


def unreadable(home: Path, names: list[str], who: str) -> list[tuple[str, str, str | None]]:
    """(name, why, the directory at fault or None) for each control file in ``names``
    that this process cannot read. A missing file is fine (each is optional); one in a
    directory that cannot be entered is not (it cannot be known to be missing)."""
    out = []
    for name in names:
        path = home / "control" / name
        exc = can_read(path)
        if exc is None or isinstance(exc, (FileNotFoundError, IsADirectoryError)):
            continue
        out.append((name, explain(path, os.R_OK, who) or exc.strerror or str(exc),
                    blocked_dir(str(path))))
    return out


def search_fix(blocked: str, group: str) -> str:
    """How to let the group qmail-remote runs with enter the directory ``blocked``."""
    return (f"make {blocked} searchable: chmod o+x {blocked} (or chgrp {group} "
            f"{blocked} and chmod g+x {blocked})")


def read_fix(path: Path, blocked: str | None, group: str) -> str:
    """How to make control file ``path`` readable by the group qmail-remote runs with
    (``blocked``: the directory on the way that cannot be entered)."""
    if blocked:
        return search_fix(blocked, group)
    if path.name == "routes":
        return f"chgrp {group} {path} and chmod 640 {path} (it holds passwords: not 644)"
    return f"chmod 644 {path}"


def _has_certificate(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return b"-----BEGIN CERTIFICATE-----" in fh.read()
    except OSError:
        return False


def default_ca_locations() -> tuple[str | None, str | None]:
    """OpenSSL's built-in CA file and directory: what qmail-remote uses, since it runs
    with an empty environment (``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` never arrive)."""
    import ssl

    paths = ssl.get_default_verify_paths()
    return paths.openssl_cafile, paths.openssl_capath


def trust_store_problem(cafile: str | None, capath: str | None,
                        who: str = "qmail-remote") -> str | None:
    """Why this process cannot load a CA certificate from ``cafile`` or ``capath``
    (:func:`default_ca_locations`), or None when it can."""
    if cafile and _has_certificate(cafile):
        return None
    if capath:
        try:
            names = os.listdir(capath)
        except OSError:
            names = []
        if any(len(n) >= 10 and n[8] == "." and _has_certificate(os.path.join(capath, n))
               for n in names):
            return None
    why = []
    for what, path, need in (("file", cafile, os.R_OK), ("directory", capath,
                                                           os.R_OK | os.X_OK)):
        if not path:
            continue
        reason = explain(path, need, who)
        why.append(reason or f"the {what} {path} holds no certificate")
    return "; ".join(why) or "OpenSSL has no default CA location"


def trust_store_fix(cafile: str | None, capath: str | None) -> str:
    """Run as the user: how to give it the CA certificates at ``cafile`` and ``capath``
    when :func:`trust_store_problem` found none. Certificates that are there but out of
    its reach (a directory it cannot enter, a file it cannot read) need a mode, not a
    package."""
    fixes = []
    for path, need, mode in ((cafile, os.R_OK, "644"), (capath, os.R_OK | os.X_OK, "755")):
        if not path:
            continue
        blocked = blocked_dir(path)
        if blocked is not None:
            fixes.append(f"chmod o+x {blocked}")
        elif os.path.exists(path) and not os.access(path, need):
            fixes.append(f"chmod {mode} {path}")
    if fixes:
        return ("the certificates are there but out of reach: "
                + " and ".join(dict.fromkeys(fixes))
                + " (CA certificates are public; OpenSSL's directories are normally "
                  "mode 755)")
    return "install the CA certificates (Debian: apt-get install ca-certificates)"


def memory_problem(home: str | Path, who: str, group: str) -> list[str] | None:
    """Run as the user: [why, fix] when it cannot use the failover memory
    ``queue/lock/qremote-tcpto`` of ``home`` (write it, or create it when missing), or
    None when it can (or ``queue/lock`` does not exist: not a qmail home to judge)."""
    path = Path(home) / MEMORY_FILE
    lock = path.parent
    make = (f"qremote install creates it; or, as root: touch {path} && chown "
            f"{who}:{group} {path} && chmod 644 {path}")
    blocked = blocked_dir(str(path))
    if blocked is not None:
        where = explain(path, os.W_OK, who) or f"{who} cannot enter {blocked}"
        return [where, search_fix(blocked, group)]
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if not os.path.isdir(lock) or os.access(lock, os.W_OK | os.X_OK):
            return None  # qmail-remote creates it at the first connect timeout
        try:
            how = f" ({mode_owner(os.stat(lock))})"
        except OSError:
            how = ""
        return [f"{path} is missing, and {who} cannot create it in {lock}{how}", make]
    except OSError as exc:
        return [f"{path}: {exc.strerror}", make]
    if not stat.S_ISREG(st.st_mode):
        return [f"{path} is not a regular file", f"remove it; then {make}"]
    if not os.access(path, os.R_OK | os.W_OK):
        return [f"{path} is {mode_owner(st)}: {who} cannot write it",
                f"chown {who}:{group} {path} && chmod 644 {path}"]
    return None
