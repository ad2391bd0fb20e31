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
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: float) -> None:
    """The cached library cut short (a machine that stopped right after the build's
    rename, before its data reached the disk) or with a byte changed: loading it would
    kill the console (SIGBUS when the loader reads past its end); it is built again."""
    if find_compiler() is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    logfastlib.reset()
    try:
        path = logfastlib.build()
    finally:
        logfastlib.reset()
    assert path is not None
    data = path.read_bytes()
    if keep < 0:  # a byte of its code changed
        broken = bytearray(data)
        broken[len(data) // 3] ^= 0xFF
        path.write_bytes(bytes(broken))
    else:
        path.write_bytes(data[:int(len(data) * keep)])
    done = _console_search(tmp_path / "cache")
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.split() == ["True", "True"]
    assert path.read_bytes() == data  # built again, whole
