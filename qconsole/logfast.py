"""The dense path of the log search in compiled code, when a C compiler is at hand.

``logfast.c`` (beside this module) holds the loops of the block pairing
(:mod:`qconsole.logbulk`) over arrays of positions the block's patterns found. It is
compiled once with the system's compiler (:func:`qremote.client.build.find_compiler`)
into the user's cache directory (``$XDG_CACHE_HOME/qconsole`` or ``~/.cache/qconsole``,
mode 0700), named by a hash of the source, the compiler command and the machine, and
loaded with :mod:`ctypes`. The build runs in a background thread at the first dense
block; until it is loaded, or when there is no compiler, the build fails, the cache
directory is not the user's alone, or ``QCONSOLE_PURE`` is set in the environment, the
Python loops run instead, with the same answers. Helper processes load the same file.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import threading
from array import array
from itertools import accumulate, compress, repeat
from operator import itemgetter, not_
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctypes import CDLL

    from qconsole.logbulk import Block, Messages

SOURCE = Path(__file__).with_name("logfast.c")
ENABLED = not os.environ.get("QCONSOLE_PURE")  # False: the Python loops only
_FLAGS = ("-O2", "-shared", "-fPIC")
_ZERO = array("q", [0])
_lib: CDLL | None = None
_state = "new"  # new, building, loaded, failed
_lock = threading.RLock()
_done = threading.Event()


def lib() -> CDLL | None:
    """The loaded library, or None (not yet, or not at all): the first call loads it
    when it is in the cache, or starts building it in the background."""
    if not ENABLED:
        return None
    if _state == "new":
        _start()
    return _lib


def load(wait: float = 120.0) -> CDLL | None:
    """The library, building it now if needed (for tests and benchmarks)."""
    if not ENABLED:
        return None
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
        if target is not None and _safe_file(target[1]):
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
    the user's alone (another owner, or writable by group or others)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base, "qconsole")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        return None
    return path


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
    return target[1] if _safe_file(target[1]) else _build(*target)


def _build(command: list[str], dest: Path) -> Path | None:
    """Compile into a temporary file beside ``dest``, then rename it (a concurrent
    build of the same source makes the same file)."""
    import subprocess
    import tempfile

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
        os.chmod(tmp, 0o700)
        os.replace(tmp, dest)
    except (OSError, subprocess.TimeoutExpired):
        return None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest if _safe_file(dest) else None


def _bind(cdll: CDLL) -> CDLL:
    import ctypes

    p, n = ctypes.c_void_p, ctypes.c_int64
    cdll.qc_ends.restype = n
    cdll.qc_ends.argtypes = [ctypes.c_char_p, n, p, p, p, n]
    cdll.qc_messages.restype = ctypes.c_int
    cdll.qc_messages.argtypes = [ctypes.c_char_p, n, n, ctypes.c_char_p,
                                 n, p, p, p, p, n, p, n, p, p, p, n, p, p, n, p, p, p, p,
                                 n, p, p, p, *[p] * 13]
    cdll.qc_hits.restype = n
    cdll.qc_hits.argtypes = [ctypes.c_char_p, ctypes.c_char_p, n, ctypes.c_char_p, n, p]
    cdll.qc_needles.restype = None
    cdll.qc_needles.argtypes = [ctypes.c_char_p, n, n, p, p, n, p]
    return cdll


# The glue: arrays in, Python lists, sets and dicts out (each in one C call) ----------

def _zeros(n: int) -> array:
    return _ZERO * n


def _at(a: array) -> int:
    return a.buffer_info()[0]


def _starts(ms: list[re.Match[bytes]], group: int = 0) -> array:
    return array("q", list(map(re.Match.start, ms, repeat(group))))


def hits(cdll: CDLL, data: bytes, text: bytes, needle: bytes, count: int) -> list[int]:
    """:func:`~qconsole.logbulk.hits_of_text` (``count`` occurrences of a non-empty
    needle in ``text``)."""
    out = _zeros(count)
    n = cdll.qc_hits(data, text, len(data), needle, len(needle), _at(out))
    return out[:n].tolist()


def needles(cdll: CDLL, data: bytes, starts: list[int], ends: list[int],
            skip: int) -> list[int]:
    """:func:`~qconsole.logbulk.hidden_needles` (1 or 0 for each line)."""
    n = len(starts)
    a, b, out = array("q", starts), array("q", ends), _zeros(n)
    cdll.qc_needles(data, len(data), n, _at(a), _at(b), skip, _at(out))
    return out.tolist()


def messages(cdll: CDLL, block: Block, bounced: list[re.Match[bytes]],
             odd: list[tuple[int, bytes | None, bool]]) -> Messages:
    """:meth:`~qconsole.logbulk.Block.messages`, the loop in compiled code: ``bounced``
    the canonical bounce lines' matches, ``odd`` the lines that may be starts or
    bounces but are not canonical ones, in order, each with its message (as event()
    reads it) and whether a canonical start or bounce line is that line too."""
    from qconsole.logbulk import Messages

    data, w = block.data, block.width
    pairs = block.pairs()
    out = Messages()
    ims = list(block.shape.infos.finditer(data))
    ni = len(ims)
    ip, i1, i2, i3 = (_starts(ims, g) for g in range(4))
    ne = ni + 64  # (a message's info line and end line go together, mostly)
    while True:
        ep, ekey, eend = _zeros(ne), _zeros(ne), _zeros(ne)
        cap, ne = ne, cdll.qc_ends(data, len(data), _at(ep), _at(ekey), _at(eend), ne)
        if ne <= cap:
            break
    sls = array("q", pairs.starts)
    start_keys = list(map(itemgetter(1), pairs.starts.values()))
    out.bounces = [m.start() - w for m in bounced]
    bls, bmp = array("q", out.bounces), _starts(bounced, 2)
    triples = block.triples()
    out.triples = [ls for ls, _ in triples]
    keys = [msg or b"" for _, msg, _ in odd] + [msg for _, msg in triples] + start_keys
    offsets = array("q", [0, *accumulate(map(len, keys))])
    extra = b"".join(keys)
    no = len(odd)
    ols = array("q", [ls for ls, _, _ in odd])
    olen = array("q", [-1 if msg is None else len(msg) for _, msg, _ in odd])
    oshared = array("q", [int(shared) for _, _, shared in odd])
    nt = len(triples)
    tls, tlen = array("q", out.triples), array("q", map(len, keys[no:no + nt]))
    slen = array("q", map(len, start_keys))
    events = ni + ne + len(sls) + len(bls) + no + len(tls)
    info_at, canon, pos, held, tainted, hpos, hkey, hlen, hext, okey, olen2, open_ = (
        _zeros(n) for n in (ni, ni, events, events, no, events, events, events, events,
                            no, no, events))
    counts = _zeros(5)
    if cdll.qc_messages(
            data, len(data), w, extra, ni, *map(_at, (ip, i1, i2, i3)), ne, _at(ep),
            len(sls), _at(sls), _at(offsets) + 8 * (no + nt), _at(slen), len(bls), _at(bls),
            _at(bmp),
            no, _at(ols), _at(offsets), _at(olen), _at(oshared),
            len(tls), _at(tls), _at(offsets) + 8 * no, _at(tlen),
            *map(_at, (info_at, canon, pos, held, tainted, hpos, hkey, hlen, hext, okey,
                       olen2, open_, counts))) < 0:
        raise MemoryError
    np_, ntt, nh, nho, nop = counts
    flags = canon.tolist()
    ats = info_at.tolist()
    msgs = list(map(re.Match.group, ims, repeat(2)))
    out.infos = dict(zip(compress(ats, flags), zip(compress(msgs, flags), compress(
        map(re.Match.group, ims, repeat(3)), flags), strict=True), strict=True))
    out.odd = list(compress(ats, map(not_, flags)))
    out.info = dict(zip(pos[:np_].tolist(), held[:np_].tolist(), strict=True))
    out.tainted = set(tainted[:ntt].tolist())
    source = (data, extra)
    for p, k, n, x in zip(hpos[:nh], hkey[:nh], hlen[:nh], hext[:nh], strict=True):
        out.heads.setdefault(source[x][k:k + n], []).append(p)
    out.head_odd = {extra[k:k + n] for k, n in zip(okey[:nho], olen2[:nho], strict=True)}
    out.open = set(open_[:nop].tolist())
    out.ended = set(msgs)
    out.ended.update(map(data.__getitem__, map(slice, ekey[:ne].tolist(), eend[:ne].tolist())))
    return out
