"""Shared pieces of the delivery benchmarks (warm_path.py, big_message.py).

- ``setup``: the Debian packages (iptables, libnetfilter-queue-dev), the C helpers in
  ``bench/c`` compiled with the system compiler, and the reference C qmail-remote built
  from ../shared/reference, each only when missing (idempotent, cached under
  ``$QREMOTE_BENCH_BUILD``, default /tmp/qremote-bench).
- ``Driver``: runs deliveries the way qmail-rspawn does (``bench/c/rspawn_driver.c``),
  whole batches or started in the background.
- ``Sink``: the SMTP sink (``bench/c/smtp_sink.c``), PIPELINING and CHUNKING switchable;
  it counts connections, messages and reply bursts, and can hold every connection at
  MAIL FROM (for memory per delivery in flight).
- ``Delayer``: the NFQUEUE round-trip delayer (``bench/c/rtt_delayer.c``) and its
  iptables rule, inside a network namespace (``in_namespace``).
- ``DnsServer``: dnsmasq on 127.0.0.1:53 for the MX route.
- ``Daemon``: a long-lived process started before a candidate's runs (the worker), with
  its CPU and memory read from /proc.

Everything here is measurement plumbing: no delivery logic.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.reference import TARBALL, Reference, build  # noqa: E402

C_DIR = ROOT / "bench" / "c"
BUILD = Path(os.environ.get("QREMOTE_BENCH_BUILD", "/tmp/qremote-bench"))
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
NAMESPACE = "qremote-bench"
IN_NAMESPACE = "QREMOTE_BENCH_NAMESPACE"
# Debian package -> a file it installs.
PACKAGES = {"iproute2": "/usr/sbin/ip", "iptables": "/usr/sbin/iptables",
            "dnsmasq-base": "/usr/sbin/dnsmasq",
            "libnetfilter-queue-dev": "/usr/include/libnetfilter_queue/libnetfilter_queue.h"}


def say(text: str) -> None:
    """Progress on stderr, so stdout keeps only the figures."""
    print(text, file=sys.stderr, flush=True)


def require_root(why: str) -> None:
    """Exit with a clear message unless running as root."""
    if os.geteuid() != 0:
        sys.exit(f"{sys.argv[0]}: must run as root ({why}); try: sudo {VENV_PYTHON} "
                 f"{' '.join(sys.argv)}")


def install_packages(names: list[str]) -> None:
    """apt-get install the packages whose files are missing (nothing when all are here)."""
    missing = [n for n in names if not Path(PACKAGES[n]).exists()]
    if not missing:
        return
    require_root(f"installing {' '.join(missing)}")
    say(f"installing Debian packages: {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                   check=True, env=env, stdout=subprocess.DEVNULL)


def compile_helper(name: str, *, static: bool = False, libs: tuple[str, ...] = (),
                   flags: tuple[str, ...] = ()) -> Path:
    """``bench/c/NAME.c`` compiled once per source version; returns the binary."""
    source = C_DIR / f"{name}.c"
    flags = ["-O2", "-Wall", *(["-static"] if static else []), *flags]
    digest = hashlib.sha256(source.read_bytes() + repr((flags, libs)).encode()).hexdigest()
    binary = BUILD / f"{name}-{digest[:12]}"
    if not binary.exists():
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            sys.exit(f"{sys.argv[0]}: no C compiler (cc) to build {source.name}")
        BUILD.mkdir(parents=True, exist_ok=True)
        tmp = binary.with_suffix(".tmp")
        result = subprocess.run([cc, *flags, "-o", str(tmp), str(source), *libs],
                                capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"{sys.argv[0]}: compiling {source} failed:\n{result.stderr}")
        tmp.rename(binary)
    return binary


def reference() -> Reference:
    """The reference C qmail-remote, built once under BUILD (tests/support/reference.py)."""
    digest = hashlib.sha256(TARBALL.read_bytes()).hexdigest()[:12]
    workdir = BUILD / f"reference-{digest}"
    sources = ([p for p in workdir.iterdir() if p.name.startswith("notqmail")]
               if workdir.exists() else [])
    if not sources or not (sources[0] / "qmail-remote").exists():
        say("building the reference qmail-remote from ../shared/reference")
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        return build(workdir)
    return Reference(sources[0] / "qmail-remote", workdir / "home")


def check_venv() -> None:
    """The project's venv must exist: the qremote candidates run its Python."""
    if not VENV_PYTHON.exists():
        sys.exit(f"{sys.argv[0]}: {VENV_PYTHON} is missing: run `make .venv/.test` first")


def write_message(path: Path, size: int) -> Path:
    """A plain-text message of exactly ``size`` bytes, LF line endings, ending in LF."""
    head = b"From: a@b.org\nTo: y@x.org\nSubject: bench\nMessage-ID: <bench@b.org>\n\n"
    line = b"a line of the benchmark message, with some text to fill it up....\n"
    body_size = size - len(head)
    block = line * (1 << 14)
    with path.open("wb") as f:
        f.write(head)
        left = body_size
        while left > len(block):
            f.write(block)
            left -= len(block)
        tail = (line * (left // len(line) + 1))[:left]
        f.write(tail[:-1] + b"\n")
    return path


# --- the driver ---------------------------------------------------------------------


@dataclass
class Delivery:
    """One delivery process as the driver saw it."""

    pid: int
    wall_ms: float
    exit_ms: float  # when the process was reaped (a hand-over client: long before wall)
    cpu_ms: float
    maxrss_kb: int
    status: int
    letter: str
    report: str


@dataclass
class Batch:
    """A driver run: its deliveries, its wall time and the driver's own CPU."""

    deliveries: list[Delivery]
    wall_s: float
    driver_cpu_ms: float

    def failures(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.letter != "K" or d.status != 0]


class Driver:
    """``rspawn_driver``: CONCURRENCY deliveries at a time, each a new process."""

    def __init__(self) -> None:
        self.binary = compile_helper("rspawn_driver", static=True)

    def run(self, concurrency: int, count: int, message: Path, argv: list[str],
            env: dict[str, str]) -> Batch:
        return self.wait(self.start(concurrency, count, message, argv, env))

    def start(self, concurrency: int, count: int, message: Path, argv: list[str],
              env: dict[str, str]) -> subprocess.Popen:
        """Start a batch without waiting for it (``wait`` collects it)."""
        return subprocess.Popen([str(self.binary), str(concurrency), str(count),
                                 str(message), *argv], env=env, stdout=subprocess.PIPE)

    def wait(self, proc: subprocess.Popen) -> Batch:
        out = proc.communicate()[0]
        if proc.returncode != 0:
            raise RuntimeError(f"rspawn_driver exited with {proc.returncode}")
        deliveries, wall_s, driver_cpu = [], 0.0, 0.0
        for line in out.decode(errors="replace").splitlines():
            f = line.split("\t")
            if f[0] == "D":
                deliveries.append(Delivery(
                    pid=int(f[2]), wall_ms=int(f[3]) / 1000, exit_ms=int(f[4]) / 1000,
                    cpu_ms=(int(f[5]) + int(f[6])) / 1000, maxrss_kb=int(f[7]),
                    status=int(f[8]), letter=f[9], report=f[10] if len(f) > 10 else ""))
            elif f[0] == "T":
                wall_s = int(f[1]) / 1e6
                driver_cpu = (int(f[2]) + int(f[3])) / 1000
        return Batch(deliveries, wall_s, driver_cpu)


# --- the sink -------------------------------------------------------------------------


@dataclass
class Counters:
    """What the sink counted so far."""

    connections: int
    messages: int
    bytes: int
    bursts: int  # writes of replies to a client's commands: round trips it waited for
    held: int    # connections stopped at MAIL FROM (``hold``)


class Sink:
    """The C SMTP sink; ``counters()`` asks it what it counted; ``hold()`` stops every
    connection at its next MAIL FROM until ``release()``."""

    def __init__(self, address: str = "0.0.0.0", port: int = 0, *, pipelining: bool = True,
                 chunking: bool = True, rate: float = 0, rcvbuf: int = 0) -> None:
        binary = compile_helper("smtp_sink")
        flags = (["-p"] if pipelining else []) + (["-c"] if chunking else [])
        if rate:
            flags += ["-r", str(int(rate))]
        if rcvbuf:
            flags += ["-b", str(rcvbuf)]
        self.proc = subprocess.Popen([str(binary), *flags, address, str(port)],
                                     stdout=subprocess.PIPE, text=True)
        ready = self.proc.stdout.readline().split()
        if ready[:1] != ["ready"]:
            raise RuntimeError(f"the SMTP sink did not start on {address}:{port}")
        self.port = int(ready[1])
        self.extensions = " ".join(n for n, on in (("PIPELINING", pipelining),
                                                   ("CHUNKING", chunking)) if on) or "none"

    def counters(self) -> Counters:
        self.proc.send_signal(signal.SIGUSR1)
        f = self.proc.stdout.readline().split()
        return Counters(*(int(x) for x in f[1::2]))

    def hold(self) -> None:
        self.proc.send_signal(signal.SIGUSR2)
        self.counters()  # the signal is handled once this answers

    def release(self) -> None:
        self.proc.send_signal(signal.SIGHUP)
        self.counters()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# --- the namespace and the delayer ---------------------------------------------------


def in_namespace(argv: list[str]) -> int:
    """Run ``argv`` inside a fresh network namespace (lo up, /etc/resolv.conf pointing
    at 127.0.0.1 there) and remove the namespace afterwards."""
    require_root("network namespaces and iptables")
    etc = Path("/etc/netns") / NAMESPACE

    def clean() -> None:
        pids = subprocess.run(["ip", "netns", "pids", NAMESPACE], capture_output=True,
                              text=True).stdout.split()
        for pid in pids:  # our own processes left in the namespace, if any
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", NAMESPACE], capture_output=True)
        shutil.rmtree(etc, ignore_errors=True)

    clean()
    subprocess.run(["ip", "netns", "add", NAMESPACE], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", NAMESPACE, "ip", "link", "set", "lo", "up"],
                       check=True)
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        env = {**os.environ, IN_NAMESPACE: NAMESPACE}
        return subprocess.run(["ip", "netns", "exec", NAMESPACE, *argv], env=env).returncode
    finally:
        clean()


def iptables() -> str:
    """The iptables that works here (the nft one, else the legacy one)."""
    for name in ("iptables", "iptables-legacy"):
        if shutil.which(name) and subprocess.run([name, "-S"], capture_output=True
                                                 ).returncode == 0:
            return name
    sys.exit(f"{sys.argv[0]}: no working iptables")


class Delayer:
    """Hold every TCP packet on lo for ``one_way_ms`` (so the round trip is twice that)."""

    QUEUE = 0

    def __init__(self, one_way_ms: float) -> None:
        if os.environ.get(IN_NAMESPACE) is None:
            raise RuntimeError("the delayer only runs inside the bench namespace")
        binary = compile_helper("rtt_delayer", libs=("-lnetfilter_queue", "-lnfnetlink"))
        self.proc = subprocess.Popen([str(binary), str(self.QUEUE), str(one_way_ms)],
                                     stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the RTT delayer did not start (see its message above)")
        self.rule = ["OUTPUT", "-o", "lo", "-p", "tcp", "-j", "NFQUEUE",
                     "--queue-num", str(self.QUEUE)]
        self.iptables = iptables()
        subprocess.run([self.iptables, "-A", *self.rule], check=True)

    def stop(self) -> str:
        subprocess.run([self.iptables, "-D", *self.rule], check=True)
        self.proc.terminate()
        out = self.proc.communicate(timeout=10)[0]
        return out.strip()


def measure_rtt(port: int, samples: int = 20) -> tuple[float, float, float]:
    """TCP connect time and NOOP round trips to the sink (ms): (connect, min, max)."""
    start = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    connect = (time.perf_counter() - start) * 1000
    with sock, sock.makefile("rb") as f:
        f.readline()
        times = []
        for _ in range(samples):
            start = time.perf_counter()
            sock.sendall(b"NOOP\r\n")
            f.readline()
            times.append((time.perf_counter() - start) * 1000)
        sock.sendall(b"QUIT\r\n")
        f.readline()
    return connect, min(times), max(times)


# --- DNS ------------------------------------------------------------------------------


class DnsServer:
    """dnsmasq on 127.0.0.1:53, answering MX x.org -> mx.x.org -> 127.0.0.2 (as a
    local cache would; NXDOMAIN for other names under x.org, no upstream), with a TTL
    of ``ttl`` seconds (dnsmasq's default for its own records is 0: nothing cached).

    A C server: a Python one (dnslib) costs about 1 ms of CPU a delivery, as much as
    the whole C qmail-remote, on the same two cores."""

    def __init__(self, ttl: int = 300) -> None:
        self.proc = subprocess.Popen(
            ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll",
             "--user=root", "--listen-address=127.0.0.1", "--bind-interfaces", "--port=53",
             "--local=/x.org/", f"--local-ttl={ttl}", "--mx-host=x.org,mx.x.org,10",
             "--host-record=mx.x.org,127.0.0.2", "--log-facility=/dev/null"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        probe = bytes.fromhex("abcd01000001000000000000") + b"\x01x\x03org\x00\x00\x0f\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"dnsmasq exited: {self.proc.stderr.read().strip()}")
                s.sendto(probe, ("127.0.0.1", 53))
                try:
                    if s.recv(512)[:2] == probe[:2]:
                        return
                except TimeoutError:
                    continue
        raise RuntimeError("dnsmasq did not answer on 127.0.0.1:53")

    def cpu_ms(self) -> float:
        return tree_cpu_ms(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# --- daemons (the worker) -------------------------------------------------------------

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_cpu_ms(pid: int) -> float:
    """CPU (user+system, with reaped children) of ``pid`` and its descendants, in ms."""
    total = 0
    for p in tree_pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total * TICK_MS


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def tree_rss_kb(pid: int, key: str = "VmRSS") -> int:
    """Resident memory (VmRSS, or VmHWM for the peak) of ``pid`` and its descendants."""
    total = 0
    for p in tree_pids(pid):
        with contextlib.suppress(OSError):
            total += _status_kb(p, key)
    return total


def children(pid: int) -> list[int]:
    """The live children of ``pid``."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def memory_kb(pids: list[int]) -> tuple[int, int]:
    """(RSS, PSS) summed over ``pids``, from /proc/PID/smaps_rollup: PSS shares each
    page among the processes that map it (a static binary's text, libc)."""
    rss = pss = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Rss:"):
                rss += int(line.split()[1])
            elif line.startswith("Pss:"):
                pss += int(line.split()[1])
    return rss, pss


def reset_peak(pid: int) -> None:
    """Reset VmHWM of the tree to the current RSS (clear_refs 5)."""
    for p in tree_pids(pid):
        with contextlib.suppress(OSError):
            Path(f"/proc/{p}/clear_refs").write_text("5")


@dataclass
class Daemon:
    """A long-lived process a candidate needs (started before its runs, stopped after)."""

    argv: list[str]
    env: dict[str, str]
    ready: list[str]  # a command that exits 0 once the daemon answers
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self, timeout: float = 30) -> None:
        self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv[0]} exited with {self.proc.returncode}")
            if subprocess.run(self.ready, env=self.env, capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{' '.join(self.argv)} did not answer within {timeout} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- figures ---------------------------------------------------------------------------


def spread(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)


def fmt(value: float) -> str:
    """Two or three significant digits, as a table wants them."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}".rstrip("0").rstrip(".") if value < 20 else f"{value:.0f}"
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"


def fmt_spread(values: list[float]) -> str:
    med, lo, hi = spread(values)
    return fmt(med) if fmt(lo) == fmt(hi) else f"{fmt(med)} ({fmt(lo)}–{fmt(hi)})"
