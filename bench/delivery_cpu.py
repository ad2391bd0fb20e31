"""CPU per delivery: qmail-remote against a bare smtplib script, interleaved.

Both deliver the same message to the same aiosmtpd sink on loopback, each run as a new
process (as qmail-rspawn starts qmail-remote); CPU (user+sys) of each child comes from
wait4. Runs alternate so machine noise hits both alike. Also prints an MX route's
figure (a DNS server on loopback, the sink on 127.0.0.1:25) when run as root.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.dnsserver import DnsServer, Zone  # noqa: E402
from tests.support.smtpsink import Sink  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "25"))
MESSAGE = b"From: a@b.org\nTo: y@x.org\nSubject: bench\n\n" + b"line of text\n" * 200
SMTPLIB = ("import smtplib, sys\n"
           "s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='bench.test')\n"
           "s.sendmail('a@b.org', ['y@x.org'], sys.stdin.buffer.read())\n"
           "s.quit()\n")


def run_child(cmd: list[str], env: dict[str, str]) -> tuple[float, bytes]:
    """Start, feed, and reap the child ourselves so wait4 gives its own rusage."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    proc.stdin.write(MESSAGE)
    proc.stdin.close()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    assert os.waitstatus_to_exitcode(status) == 0, status
    return usage.ru_utime + usage.ru_stime, out


def home_with(routes: str, extra: dict[str, str]) -> Path:
    home = Path(tempfile.mkdtemp()) / "qmail"
    (home / "control").mkdir(parents=True)
    (home / "control" / "me").write_text("bench.test\n")
    (home / "control" / "routes").write_text(routes)
    (home / "control" / "routemap").write_text("*;*;r\n")
    for name, text in extra.items():
        (home / "control" / name).write_text(text)
    return home


def main() -> None:
    python = sys.executable
    sink = Sink().start()
    env = {"PATH": "/usr/bin:/bin"}
    relay = home_with(f"r;127.0.0.2;127.0.0.1:{sink.port};;\n", {})
    qr = [python, "-I", "-m", "qremote.remote", "x.org", "a@b.org", "y@x.org"]
    base = [python, "-I", "-c", SMTPLIB, str(sink.port)]
    ours, theirs = [], []
    for _ in range(RUNS):
        cpu, out = run_child(qr, {**env, "QMAIL_HOME": str(relay)})
        assert b"\0K" in out, out
        ours.append(cpu)
        theirs.append(run_child(base, env)[0])
    q, s = statistics.median(ours), statistics.median(theirs)
    print(f"relay route (no DNS): qmail-remote {q * 1000:6.1f} ms CPU, "
          f"bare smtplib {s * 1000:6.1f} ms CPU, ratio {q / s:.2f} (goal <= 1.0)")
    sink.stop()
    if os.geteuid() != 0:
        print("MX route: skipped (needs root to bind 127.0.0.1:25)")
        return
    dns = DnsServer(Zone()).start()
    dns.zone.add("x.org", "MX", (10, "mx.x.org"))
    dns.zone.add("mx.x.org", "A", "127.0.0.1")
    sink25 = Sink(port=25).start()
    mx = home_with("r;127.0.0.2;mx;;\n", {"dnsservers": f"127.0.0.1:{dns.port}\n"})
    ours, theirs = [], []
    try:
        for _ in range(RUNS):
            cpu, out = run_child(qr, {**env, "QMAIL_HOME": str(mx)})
            assert b"\0K" in out, out
            ours.append(cpu)
            theirs.append(run_child([python, "-I", "-c", SMTPLIB, "25"], env)[0])
    finally:
        sink25.stop()
        dns.stop()
    q, s = statistics.median(ours), statistics.median(theirs)
    print(f"MX route (DNS on loopback): qmail-remote {q * 1000:6.1f} ms CPU, "
          f"bare smtplib {s * 1000:6.1f} ms CPU, ratio {q / s:.2f}")


if __name__ == "__main__":
    main()
