"""Attacks on the compiled dense path of the log search (qconsole.logfast, built and
loaded by qconsole.logfastlib): a library in the cache that is not whole, hostile log
blocks. The console must never crash, hang or answer otherwise than the Python loops."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qconsole import logfastlib
from qremote.client.build import find_compiler

ROOT = Path(__file__).resolve().parent.parent


def _console_search(cache: Path) -> subprocess.CompletedProcess:
    """A console's search of one block in a new process with ``cache`` as its
    XDG_CACHE_HOME: prints whether the compiled library answered, and the rows."""
    code = ("from qconsole import logfast\n"
            "from qconsole.logbulk import Block\n"
            "from qconsole.logscan import Plan\n"
            "lib = logfast.load()\n"
            "b = b'@400000006ab1430e08ea3962 info msg 1: bytes 1 from <a@b.org> qp 1\\n'\n"
            "print(lib is not None, Plan('from:b.org').analyze(Block(0, b)) is not None)\n")
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    env.pop("QCONSOLE_PURE", None)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("keep", [0.05, 0.5, 0.9, -1])
def test_a_library_cut_short_in_the_cache_is_built_again_not_loaded(
        logfast_cache: Path, keep: float) -> None:
    """The cached library cut short (a machine that stopped right after the build's
    rename, before its data reached the disk) or with a byte changed: loading it would
    kill the console (SIGBUS when the loader reads past its end); it is built again."""
    if find_compiler() is None:
        pytest.skip("no C compiler")
    path = logfastlib.build()
    assert path is not None
    data = path.read_bytes()
    if keep < 0:  # a byte of its code changed
        broken = bytearray(data)
        broken[len(data) // 3] ^= 0xFF
        path.write_bytes(bytes(broken))
    else:
        path.write_bytes(data[:int(len(data) * keep)])
    done = _console_search(logfast_cache)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.split() == ["True", "True"]
    assert path.read_bytes() == data  # built again, whole


def _multicollision(rounds: int) -> list[bytes]:
    """2**rounds message numbers on which FNV-1a (unseeded) agrees in its low 24 bits:
    a pair of 7-digit runs that collide from each state, chained (Joux). Every number
    falls in the same slot of a table of up to 2**24 slots."""
    from itertools import product

    mask, prime, full = (1 << 24) - 1, 1099511628211, (1 << 64) - 1

    def step(h: int, s: bytes) -> int:
        for c in s:
            h = ((h ^ c) * prime) & full
        return h

    h, pairs = 1469598103934665603, []
    for _ in range(rounds):
        seen: dict[int, bytes] = {}
        for i in range(10**7):
            s = b"%07d" % i
            v = step(h, s) & mask
            if v in seen:
                pairs.append((seen[v], s))
                h = step(h, s)
                break
            seen[v] = s
    return [b"".join(c) for c in product(*pairs)]


def test_message_numbers_chosen_to_collide_do_not_hang_the_compiled_pairing() -> None:
    """A remote's replies (logged in deferral lines) full of "info msg N: " with
    numbers chosen so that a fixed hash puts them all in one slot of the compiled
    loops' table: pairing the block must not take quadratic time (the Python loops'
    dicts hash with a key of the process's own)."""
    import time

    from tests.test_logfast import _both, compiled

    compiled()
    from qconsole.logbulk import Block

    keys = _multicollision(15)
    data = b"".join(b"@400000006ab1430e08ea3962 delivery 1: deferral: 451 info msg %b: "
                    b"later/\n" % k for k in keys)

    def timed() -> tuple[float, object]:
        block = Block(0, data)
        block.fast()
        t = time.process_time()
        msgs = block.messages()
        return time.process_time() - t, (sorted(msgs.odd), msgs.ended)

    (fast, a), (slow, b) = _both(timed)
    assert a == b
    assert fast < 1 + 2 * slow, (fast, slow)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act for another user")
@pytest.mark.parametrize("has_cache", [False, True])
def test_root_with_another_users_home_neither_writes_there_nor_loads_from_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, has_cache: bool) -> None:
    """``sudo -E qconsole``: root with HOME a user's home. Directories root made there
    would be root's in the user's home (their own programs could no longer write their
    ~/.cache), and a directory the user may rename is one where they can swap root's
    library for theirs between its checks and its loading: no cache, the Python loops."""
    home = tmp_path / "alice"
    home.mkdir()
    if has_cache:
        (home / ".cache").mkdir()
        os.chown(home / ".cache", 65534, 65534)
    os.chown(home, 65534, 65534)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    logfastlib.reset()
    try:
        assert logfastlib.cache_dir() is None
        assert logfastlib.build() is None
    finally:
        logfastlib.reset()
    made = [(p, p.stat().st_uid) for p in home.rglob("*")]
    assert made == ([(home / ".cache", 65534)] if has_cache else [])


def test_a_long_line_full_of_info_needles_is_paired_in_linear_time() -> None:
    """A remote's reply of a megabyte repeating "info msg 1: " (each a needle that is
    no canonical info line): the compiled pairing looked for each one's line start
    byte by byte back to the line's start (35 times the Python loops' time here, an
    hour for a 16 MB line)."""
    import time

    from tests.test_logfast import _both, compiled

    compiled()
    from qconsole.logbulk import Block

    data = (b"@400000006ab1430e08ea3962 delivery 1: deferral: "
            + b"info msg 1: " * 80_000 + b"\nx end msg 1\n")

    def timed() -> tuple[float, object]:
        block = Block(0, data)
        block.fast()
        t = time.process_time()
        msgs = block.messages()
        return time.process_time() - t, (msgs.odd, msgs.ended, msgs.open, msgs.heads)

    (fast, a), (slow, b) = _both(timed)
    assert a == b
    assert fast < 0.5 + 2 * slow, (fast, slow)
