"""Building, caching and loading the compiled dense path (``logfast.c``, see
:mod:`qconsole.logfast`).

The C file is compiled once with the system's compiler (``find_compiler`` of
:mod:`qremote.client.build`) into the user's cache directory (``$XDG_CACHE_HOME/qconsole``
or ``~/.cache/qconsole``, created 0700), named by a hash of the source, the compiler
command and the machine, written under a temporary name and renamed, and loaded with
:mod:`ctypes`. A cache directory or file that is not the user's alone (another owner,
writable by group or others) is never used: nothing is loaded from where someone else
could have put it. The file ends with the SHA-256 of what comes before it: one that is
not whole (cut short by a machine that stopped before its data reached the disk) is
built again, never loaded (the loader would kill the process reading past its end).
When the file is in the cache it is loaded at once; else it is built in a background
thread and the callers use the Python loops meanwhile.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctypes import CDLL

SOURCE = Path(__file__).with_name("logfast.c")
_FLAGS = ("-O2", "-shared", "-fPIC")
_lib: CDLL | None = None
_state = "new"  # new, building, loaded, failed
_lock = threading.RLock()
_done = threading.Event()


def lib() -> CDLL | None:
    """The loaded library, or None (not yet, or not at all): the first call loads it
    when it is in the cache, or starts building it in the background."""
    if _state == "new":
        _start()
    return _lib


def load(wait: float = 120.0) -> CDLL | None:
    """The library, building it now if needed (for tests and benchmarks)."""
    if _state == "new":
        _start()
    _done.wait(wait)
    return _lib


def reset() -> None:
    """Forget the library (for tests: the next :func:`lib` looks for it again)."""
    global _lib, _state, _done
    with _lock:
        _lib, _state, _done = None, "new", threading.Event()


def _start() -> None:
    global _state
    with _lock:
        if _state != "new":
            return
        _state = "building"
        done = _done
        target = _target()
        if target is not None and _safe_file(target[1]) and _whole(target[1]):
            _loaded(target[1], done)
            return
    if target is None:
        _loaded(None, done)
    else:
        threading.Thread(target=lambda: _loaded(_build(*target), done), name="logfast-build",
                         daemon=True).start()


def _loaded(path: Path | None, done: threading.Event) -> None:
    global _lib, _state
    import ctypes

    try:
        cdll = None if path is None else _bind(ctypes.CDLL(str(path)))
    except (OSError, AttributeError):
        cdll = None
    with _lock:
        if done is _done:  # (not reset meanwhile)
            _lib = cdll
            _state = "loaded" if cdll is not None else "failed"
    done.set()


def cache_dir() -> Path | None:
    """The user's cache directory for the library, created 0700; None when it is not
    the user's alone (another owner, or writable by group or others), or lies in a
    directory someone else holds (:func:`_held`)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(os.path.abspath(base), "qconsole")
    try:
        there = path
        while not there.exists():  # (nothing is made where the user may not)
            there = there.parent
        if not _held(there):
            return None
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        return None
    return path


def _held(path: Path) -> bool:
    """Every directory from ``/`` to ``path`` (as written and as resolved) is the
    user's or root's, and no one else may rename what it holds: root with HOME another
    user's (sudo -E) makes nothing there, and loads nothing from where that user could
    swap a directory of the path between the checks and the loading."""
    uid = os.geteuid()
    for top in (path, path.resolve()):
        for p in (top, *top.parents):
            st = os.stat(p)
            if st.st_uid not in (uid, 0) or (st.st_mode & 0o022
                                             and not st.st_mode & stat.S_ISVTX):
                return False
    return True


def _safe_file(path: Path) -> bool:
    """``path`` is a file of the user's that no one else may write."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _target() -> tuple[list[str], Path] | None:
    """The compiler command (without output and source) and the library's path in the
    cache directory, named by a hash of the source, that command and the machine;
    None when there is no compiler, source or cache directory."""
    import hashlib
    import platform

    from qremote.client.build import compiler_argv, find_compiler

    compiler = find_compiler()
    folder = cache_dir()
    if compiler is None or folder is None:
        return None
    try:
        source = SOURCE.read_bytes()
    except OSError:
        return None
    command = [*compiler_argv(compiler), *_FLAGS]
    digest = hashlib.sha256(b"\0".join([source, "\0".join(command).encode(),
                                        platform.machine().encode(),
                                        sys.platform.encode()])).hexdigest()[:24]
    return command, folder / f"logfast-{digest}.so"


def build() -> Path | None:
    """The compiled library in the cache directory (built now if not there), or
    None."""
    target = _target()
    if target is None:
        return None
    return target[1] if _safe_file(target[1]) and _whole(target[1]) else _build(*target)


def _whole(path: Path) -> bool:
    """The library at ``path`` ends with the SHA-256 of the rest of it."""
    import hashlib

    try:
        data = path.read_bytes()
    except OSError:
        return False
    return len(data) > 32 and hashlib.sha256(data[:-32]).digest() == data[-32:]


def _build(command: list[str], dest: Path) -> Path | None:
    """Compile into a temporary file beside ``dest``, then rename it (a concurrent
    build of the same source makes the same file)."""
    import subprocess
    import tempfile

    _remove_stale(dest.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".logfast-", suffix=".so", dir=dest.parent)
    except OSError:
        return None
    os.close(fd)
    try:
        done = subprocess.run([*command, "-o", tmp, str(SOURCE)], capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=120)
        if done.returncode != 0:
            return None
        import hashlib

        with open(tmp, "r+b") as fh:  # (the loader reads no further than the ELF says)
            fh.write(hashlib.sha256(fh.read()).digest())
        os.chmod(tmp, 0o700)
        os.replace(tmp, dest)
    except (OSError, subprocess.TimeoutExpired):
        return None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest if _safe_file(dest) else None


STALE = 3600.0  # seconds: a temporary file untouched this long is no build's any more


def _remove_stale(folder: Path) -> None:
    """Remove the temporary files of builds that never ended (killed, or the machine
    stopped): the user's own, untouched for :data:`STALE` seconds. A build in
    progress writes its file within its compiler's timeout (120 s), so none of
    those is taken from under it."""
    import time

    uid, now = os.geteuid(), time.time()
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not (name.startswith(".logfast-") and name.endswith(".so")):
            continue
        path = folder / name
        try:
            st = os.stat(path, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and st.st_uid == uid and now - st.st_mtime > STALE:
                os.unlink(path)
        except OSError:
            continue


def _bind(cdll: CDLL) -> CDLL:
    import ctypes

    p, n = ctypes.c_void_p, ctypes.c_int64
    cdll.qc_pairs.restype = ctypes.c_int
    cdll.qc_pairs.argtypes = [ctypes.c_char_p, n, n, *[p] * 6, n, ctypes.c_char_p, *[p] * 10]
    cdll.qc_pair_rows.restype = n
    cdll.qc_pair_rows.argtypes = [ctypes.c_char_p, n, n, *[p] * 5, n, p, n, n, n,
                                    *[p] * 5]
    cdll.qc_ends.restype = n
    cdll.qc_ends.argtypes = [ctypes.c_char_p, n, p, p, p, n]
    cdll.qc_messages.restype = ctypes.c_int
    cdll.qc_messages.argtypes = [ctypes.c_char_p, n, n, ctypes.c_char_p,
                                 n, p, p, p, p, n, p, n, p, p, n, p, p, n, p, p, p, p,
                                 n, p, p, p, *[p] * 14]
    cdll.qc_count.restype = n
    cdll.qc_count.argtypes = [ctypes.c_char_p, n, ctypes.c_char_p, n, n]
    cdll.qc_hits.restype = n
    cdll.qc_hits.argtypes = [ctypes.c_char_p, ctypes.c_char_p, n, ctypes.c_char_p, n, p, n]
    cdll.qc_needles.restype = None
    cdll.qc_needles.argtypes = [ctypes.c_char_p, n, n, p, p, n, p]
    cdll.qc_columns.restype = n
    cdll.qc_columns.argtypes = [n, *[p] * 4, ctypes.c_char_p, n, n, *[p] * 4]
    cdll.qc_line_ends.restype = ctypes.c_int
    cdll.qc_line_ends.argtypes = [ctypes.c_char_p, n, n, p, p]
    cdll.qc_foreign.restype = n
    cdll.qc_foreign.argtypes = [ctypes.c_char_p, n, p, p, n]
    cdll.qc_blank.restype = None
    cdll.qc_blank.argtypes = [ctypes.c_void_p, n, p, p]
    cdll.qc_results.restype = n
    cdll.qc_results.argtypes = [ctypes.c_char_p, n, n, *[p] * 4, n, ctypes.c_char_p, n,
                                *[p] * 4]
    for scan in (cdll.qc_events, cdll.qc_infos):
        scan.restype = n
        scan.argtypes = [ctypes.c_char_p, n, ctypes.c_char_p, n, n, *[p] * 6]
    cdll.qc_rows.restype = None
    cdll.qc_rows.argtypes = [ctypes.c_char_p, n, *[p] * 4, n, ctypes.c_char_p, *[p] * 5]
    cdll.qc_quiet.restype = None
    cdll.qc_quiet.argtypes = [ctypes.c_char_p, n, n, p, ctypes.c_char_p, n, ctypes.c_char_p,
                              n, p, p]
    cdll.qc_member.restype = None
    cdll.qc_member.argtypes = [n, p, n, p, p]
    cdll.qc_split.restype = n
    cdll.qc_split.argtypes = [n, p, n, p, p, p]
    cdll.qc_loud.restype = n
    cdll.qc_loud.argtypes = [ctypes.c_char_p, n, ctypes.c_char_p, n, ctypes.c_char_p, n, p,
                             p, p, n]
    cdll.qc_gather.restype = n
    cdll.qc_gather.argtypes = [ctypes.c_char_p, n, p, p, p]
    cdll.qc_union.restype = n
    cdll.qc_union.argtypes = [n, p, n, p, p]
    cdll.qc_seed.restype = None
    cdll.qc_seed.argtypes = [ctypes.c_uint64]
    cdll.qc_seed(int.from_bytes(os.urandom(8), "little"))
    return cdll


# The glue: arrays in, Python lists, sets and dicts out (each in one C call) ----------
