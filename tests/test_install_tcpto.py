"""install/uninstall of the wrapper, and the tcpto/tcpok commands."""

from __future__ import annotations

import math
import os
import pwd
import re
import subprocess
import sys
import time
from pathlib import Path

from qremote.delivery.tcpto import EXPIRY, FILE, MAX_ENTRIES, Memory
from qremote.planning.planner import Attempt, apply_memory
from tests.conftest import REPO, run_cli
from tests.support.delivery import reports
from tests.support.smtpsink import Sink

# install's self-test runs as this user: the one running the tests (no other user
# needed here; tests/test_install_user.py uses a qmailr-like one).
ME = ("--user", pwd.getpwuid(os.geteuid()).pw_name)


def _qmail(tmp_path: Path) -> Path:
    home = tmp_path / "qmail"
    (home / "bin").mkdir(parents=True)
    (home / "control").mkdir()
    (home / "bin" / "qmail-remote").write_bytes(b"\x7fELF original binary")
    (home / "bin" / "qmail-remote").chmod(0o711)
    (home / "queue" / "lock").mkdir(parents=True)
    return home


def test_install_is_idempotent_and_reversible(tmp_path: Path) -> None:
    home = _qmail(tmp_path)
    result = run_cli("--qmail-home", str(home), "install", "--dry-run", *ME)
    assert result.returncode == 0 and "would keep" in result.stdout
    assert (home / "bin" / "qmail-remote").read_bytes() == b"\x7fELF original binary"
    assert run_cli("--qmail-home", str(home), "install", *ME).returncode == 0
    assert (home / "bin" / "qmail-remote.orig").read_bytes() == b"\x7fELF original binary"
    assert (home / "queue" / "lock" / "qremote-tcpto").exists()
    client = (home / "bin" / "qmail-remote").read_bytes()
    assert client.startswith(b"\x7fELF") and b"qremote-client" in client  # compiled
    assert run_cli("--qmail-home", str(home), "install", "--script", *ME).returncode == 0
    wrapper = (home / "bin" / "qmail-remote").read_text()
    assert " -I -S " in wrapper and "pyclient.py" in wrapper
    # Twice: the original is never overwritten by the wrapper.
    assert run_cli("--qmail-home", str(home), "install", *ME).returncode == 0
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
        assert run_cli("--qmail-home", str(home), "install", *ME).returncode == 0
        wrapper = str(home / "bin" / "qmail-remote")
        env = {"QMAIL_HOME": str(home), "PATH": "/usr/bin:/bin"}
        done = subprocess.run([wrapper, "x.org", "a@b.org", "y@x.org"], input=b"hi\n",
                              capture_output=True, env=env, timeout=60)
        assert done.returncode == 0 and reports(done.stdout)[-1].startswith("K")
    finally:
        sink.stop()
    # A wrapper whose interpreter is gone exits 111: qmail-rspawn defers, never bounces.
    from qremote.install import wrapper_text

    Path(wrapper).write_text(wrapper_text(str(tmp_path / "no-such-python"), str(home)))
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
    code = ("import sys; from pathlib import Path; from qremote.delivery.tcpto import Memory; "
            "m = Memory(Path(sys.argv[1]));"
            "[m.record(('127.0.0.%s' % sys.argv[2], '2001:db8::%d' % i, 25)) for i in range(3)]")
    procs = [subprocess.Popen([sys.executable, "-I", "-c", code, str(path), str(n)],
                              cwd=REPO) for n in range(1, 101)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert len(Memory(path).read()) == 100 * 3  # no write lost, none torn


def test_tcpto_and_tcpok_commands(tmp_path: Path) -> None:
    home = _qmail(tmp_path)
    memory = Memory.for_home(home)
    # No memory file yet: "missing", not "empty" (nothing is remembered either).
    result = run_cli("--qmail-home", str(home), "tcpto")
    assert result.returncode == 0
    assert result.stdout.startswith(f"the failover memory ({home / FILE}) is missing: no "
                                    "pair is skipped, and none is remembered. "), result
    (home / FILE).touch()
    out = run_cli("--qmail-home", str(home), "tcpto").stdout
    assert out == f"the failover memory ({home / FILE}) is empty: no pair is skipped\n"
    memory.record(("127.0.0.2", "192.0.2.1", 25))
    memory.record(("*", "2001:db8::1", 587))
    out = run_cli("--qmail-home", str(home), "tcpto").stdout
    lines = out.splitlines()
    # Aligned columns: each starts at the same offset on every line.
    assert re.fullmatch(r"LOCAL +REMOTE +PORT  LAST CONNECT TIMEOUT", lines[0])
    assert re.fullmatch(r"127\.0\.0\.2  192\.0\.2\.1 +25  timed out \d+ s ago", lines[1])
    assert re.fullmatch(r"\* +2001:db8::1 +587  timed out \d+ s ago", lines[2])
    assert lines[0].index("REMOTE") == lines[1].index("192") == lines[2].index("2001")
    assert lines[0].index("PORT") + 4 == lines[1].index("25 ") + 2 == \
        lines[2].index("587") + 3
    # tcpok says what it cleared; a pair that is not there is an error.
    result = run_cli("--qmail-home", str(home), "tcpok", "127.0.0.2", "192.0.2.9", "25")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"qremote tcpok: 127.0.0.2 192.0.2.9 25 is not in the "
                             f"failover memory ({home / FILE}); nothing cleared. qremote "
                             "tcpto lists what is\n")
    result = run_cli("--qmail-home", str(home), "tcpok", "127.0.0.2", "192.0.2.1", "25")
    assert result.returncode == 0
    assert result.stdout.startswith(f"cleared 1 pair(s) from {home / FILE}:\n")
    assert re.search(r"^  127\.0\.0\.2  192\.0\.2\.1 +25  timed out \d+ s ago$",
                     result.stdout, re.M)
    assert list(memory.read()) == [("*", "2001:db8::1", 587)]
    # An address is compared in its canonical form, as the memory writes it.
    result = run_cli("--qmail-home", str(home), "tcpok", "*", "2001:DB8:0::1", "587")
    assert result.returncode == 0 and "2001:db8::1" in result.stdout
    assert memory.read() == {}
    result = run_cli("--qmail-home", str(home), "tcpok")
    assert result.returncode == 0 and "was already empty" in result.stdout
    memory.record(("127.0.0.2", "192.0.2.1", 25))
    result = run_cli("--qmail-home", str(home), "tcpok")
    assert result.returncode == 0 and "cleared 1 pair(s)" in result.stdout
    # A port that is not a number: a message, not a traceback.
    result = run_cli("--qmail-home", str(home), "tcpok", "127.0.0.2", "192.0.2.1", "smtp")
    assert result.returncode == 2
    assert result.stderr == "qremote tcpok: port 'smtp' is not a number from 1 to 65535\n"


def test_future_and_infinite_times_expire(tmp_path: Path) -> None:
    now = 2_000_000_000.0
    path = tmp_path / "tcpto"
    path.write_text(f"{now + 86400:.0f} 127.0.0.2 192.0.2.1 25\n"   # a day ahead
                    f"inf 127.0.0.2 192.0.2.2 25\n"
                    f"nan 127.0.0.2 192.0.2.3 25\n"
                    f"-inf 127.0.0.2 192.0.2.4 25\n"
                    f"{now - 10:.0f} 127.0.0.2 192.0.2.5 25\n"
                    f"{now + 5:.0f} 127.0.0.2 192.0.2.6 25\n")  # clock stepped back
    memory = Memory(path, clock=lambda: now)
    assert memory.read() == {("127.0.0.2", "192.0.2.5", 25): now - 10,
                             ("127.0.0.2", "192.0.2.6", 25): now + 5}
    memory.record(("*", "192.0.2.7", 25))  # a write drops them from the file too
    assert "inf" not in path.read_text() and str(int(now + 86400)) not in path.read_text()
    assert all(math.isfinite(w) for w in Memory(path, clock=time.time).read().values())


def test_install_over_a_reinstalled_qmail_asks_which_to_keep(tmp_path: Path) -> None:
    home = _qmail(tmp_path)
    assert run_cli("--qmail-home", str(home), "install", *ME).returncode == 0
    target = home / "bin" / "qmail-remote"
    target.write_bytes(b"\x7fELF a newer qmail-remote")  # qmail's make setup again
    result = run_cli("--qmail-home", str(home), "install", *ME)
    assert result.returncode == 1
    assert "qmail was probably installed again over the wrapper" in result.stderr
    assert "nothing was replaced" in result.stderr
    assert target.read_bytes() == b"\x7fELF a newer qmail-remote"
    assert (home / "bin" / "qmail-remote.orig").read_bytes() == b"\x7fELF original binary"
