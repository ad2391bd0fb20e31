"""install/uninstall of the wrapper, and the tcpto/tcpok commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from qremote.planner import Attempt, apply_memory
from qremote.tcpto import EXPIRY, MAX_ENTRIES, Memory
from tests.conftest import REPO, run_cli
from tests.support.delivery import reports
from tests.support.smtpsink import Sink


def _qmail(tmp_path: Path) -> Path:
    home = tmp_path / "qmail"
    (home / "bin").mkdir(parents=True)
    (home / "control").mkdir()
    (home / "bin" / "qmail-remote").write_bytes(b"\x7fELF original binary")
    return home


def test_install_is_idempotent_and_reversible(tmp_path: Path) -> None:
    home = _qmail(tmp_path)
    result = run_cli("--qmail-home", str(home), "install", "--dry-run")
    assert result.returncode == 0 and "would rename" in result.stdout
    assert (home / "bin" / "qmail-remote").read_bytes() == b"\x7fELF original binary"
    (home / "queue" / "lock").mkdir(parents=True)
    assert run_cli("--qmail-home", str(home), "install").returncode == 0
    assert (home / "bin" / "qmail-remote.orig").read_bytes() == b"\x7fELF original binary"
    assert (home / "queue" / "lock" / "qremote-tcpto").exists()
    wrapper = (home / "bin" / "qmail-remote").read_text()
    assert " -I -m qremote.remote" in wrapper
    # Twice: the original is never overwritten by the wrapper.
    assert run_cli("--qmail-home", str(home), "install").returncode == 0
    assert (home / "bin" / "qmail-remote.orig").read_bytes() == b"\x7fELF original binary"
    assert run_cli("--qmail-home", str(home), "uninstall").returncode == 0
    assert (home / "bin" / "qmail-remote").read_bytes() == b"\x7fELF original binary"
    assert not (home / "bin" / "qmail-remote.orig").exists()
    assert "nothing to do" in run_cli("--qmail-home", str(home), "uninstall").stdout


def test_wrapper_delivers_and_defers_when_broken(tmp_path: Path) -> None:
    home = _qmail(tmp_path)
    sink = Sink().start()
    try:
        (home / "control" / "routes").write_text(f"r;;127.0.0.1:{sink.port};;\n")
        (home / "control" / "routemap").write_text("*;*;r\n")
        (home / "control" / "dnsservers").write_text("127.0.0.1:9\n")
        assert run_cli("--qmail-home", str(home), "install").returncode == 0
        wrapper = str(home / "bin" / "qmail-remote")
        env = {"QMAIL_HOME": str(home), "PATH": "/usr/bin:/bin"}
        done = subprocess.run([wrapper, "x.org", "a@b.org", "y@x.org"], input=b"hi\n",
                              capture_output=True, env=env, timeout=60)
        assert done.returncode == 0 and reports(done.stdout)[-1].startswith("K")
    finally:
        sink.stop()
    # A wrapper whose interpreter is gone exits 111: qmail-rspawn defers, never bounces.
    from qremote.install import wrapper_text

    Path(wrapper).write_text(wrapper_text(str(tmp_path / "no-such-python")))
    done = subprocess.run([wrapper, "x.org", "a@b.org", "y@x.org"], input=b"hi\n",
                          capture_output=True, timeout=60)
    assert done.returncode == 111


def test_memory_is_bounded_expires_and_orders(tmp_path: Path) -> None:
    now = [1_000_000.0]
    memory = Memory(tmp_path / "tcpto", clock=lambda: now[0])
    for i in range(MAX_ENTRIES + 50):
        now[0] += 1
        memory.record(("127.0.0.2", f"2001:db8::{i:x}", 25))
    entries = memory.read()
    assert len(entries) == MAX_ENTRIES
    assert ("127.0.0.2", "2001:db8::0", 25) not in entries  # the oldest went
    now[0] += EXPIRY + 1
    assert memory.read() == {}
    a = Attempt("127.0.0.2", "x", "192.0.2.1", 25, False)
    b = Attempt("127.0.0.2", "x", "192.0.2.2", 25, False)
    c = Attempt(None, "x", "192.0.2.3", 25, False)
    marked = {("127.0.0.2", "192.0.2.1", 25): 5.0, ("*", "192.0.2.3", 25): 1.0}
    assert apply_memory([a, b, c], marked) == [b]
    marked[("127.0.0.2", "192.0.2.2", 25)] = 3.0
    assert apply_memory([a, b, c], marked) == [c, b, a]  # all marked: oldest first


def test_memory_with_concurrent_writers(tmp_path: Path) -> None:
    path = tmp_path / "tcpto"
    code = ("import sys; from pathlib import Path; from qremote.tcpto import Memory; "
            "m = Memory(Path(sys.argv[1]));"
            "[m.record(('127.0.0.%s' % sys.argv[2], '2001:db8::%d' % i, 25)) for i in range(3)]")
    procs = [subprocess.Popen([sys.executable, "-I", "-c", code, str(path), str(n)],
                              cwd=REPO) for n in range(1, 101)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert len(Memory(path).read()) == 100 * 3  # no write lost, none torn


def test_tcpto_and_tcpok_commands(tmp_path: Path) -> None:
    home = _qmail(tmp_path)
    (home / "queue" / "lock").mkdir(parents=True)
    memory = Memory.for_home(home)
    memory.record(("127.0.0.2", "192.0.2.1", 25))
    memory.record(("*", "2001:db8::1", 587))
    out = run_cli("--qmail-home", str(home), "tcpto").stdout
    assert "127.0.0.2 192.0.2.1 25  timed out" in out and "* 2001:db8::1 587" in out
    assert run_cli("--qmail-home", str(home), "tcpok", "127.0.0.2", "192.0.2.1",
                   "25").returncode == 0
    assert list(memory.read()) == [("*", "2001:db8::1", 587)]
    assert run_cli("--qmail-home", str(home), "tcpok").returncode == 0
    assert memory.read() == {}
