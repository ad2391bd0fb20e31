"""The warm path, measured: qremote against qmail's own C qmail-remote, side by side.

    sudo .venv/bin/python bench/warm_path.py            # every scenario, 3 runs each
    sudo .venv/bin/python bench/warm_path.py --net rtt --conc 200 --route relay --runs 5

Each scenario (loopback or a true 50 ms round trip, 20 or 200 concurrent deliveries,
the relay or the MX route) runs every candidate in turn (A, B, A, B ...) and prints,
per candidate: CPU per delivery, peak RSS per process, memory per delivery in flight,
msg/s, latency, connections per message, and the ratio to C.

How (as qmail does it, see qmail-rspawn's spawn.c): ``bench/c/rspawn_driver.c`` starts
each delivery as a new process ``CANDIDATE x.org a@b.org y@x.org`` with stdin the 4 KB
message file opened anew, stdout a pipe, stderr the same pipe; it reads to end of file
and reaps with wait4, so each process's own CPU and peak RSS are exact. Every report
must be ``K`` or the run is marked INVALID. The SMTP sink is ``bench/c/smtp_sink.c``
(PIPELINING and CHUNKING offered unless ``--sink``). Everything runs inside a network
namespace of its own (port 25 and 53 free there); for the round trip, its lo TCP
traffic goes through NFQUEUE to ``bench/c/rtt_delayer.c``, which holds each packet for
half the round trip; the script checks the round trip with a TCP connect and NOOPs.
DNS (MX route) is dnsmasq on 127.0.0.1:53 there, not delayed (a local cache).

Candidates: ``c`` (the reference, built from ../shared/reference), ``qremote`` (today's
in-process path, ``python -I -m qremote.remote``), ``worker`` (``qremote worker`` with
the client ``qremote install`` puts at QMAIL_HOME/bin/qmail-remote; skipped with a
message while it does not exist). A daemon's CPU is its /proc utime+stime over the run
divided by the deliveries; its memory per delivery in flight is its RSS growth over
the run (VmHWM after clear_refs) divided by the concurrency, plus the client's RSS.

Needs root (namespace, iptables, port 25); installs iptables, libnetfilter-queue-dev
and dnsmasq-base with apt-get when missing and compiles the helpers with cc (cached in
$QREMOTE_BENCH_BUILD, default /tmp/qremote-bench).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import netbench as nb

HOST, SENDER, RECIP = "x.org", "a@b.org", "y@x.org"
NETS = {"loopback": "loopback", "rtt": "50 ms RTT"}
ROUTES = ("relay", "mx")


# --- candidates -----------------------------------------------------------------------


@dataclass
class Candidate:
    """A command line run once per delivery, and optionally a daemon it needs."""

    name: str
    argv: dict[str, list[str]]           # route -> argv (HOST SENDER RECIP appended)
    env: dict[str, dict[str, str]]       # route -> environment
    use: dict[str, object] = field(default_factory=dict)  # route -> callable before runs
    daemon: dict[str, nb.Daemon] = field(default_factory=dict)  # route -> daemon
    skip: str | None = None


def qmail_home(base: Path, route: str, port: int) -> Path:
    """A scratch qmail home whose routemap sends everything to route ``r``."""
    home = base / f"qremote-{route}"
    (home / "control").mkdir(parents=True, exist_ok=True)
    (home / "control" / "me").write_text("bench.test\n")
    remote = f"127.0.0.1:{port}" if route == "relay" else "mx"
    (home / "control" / "routes").write_text(f"r;127.0.0.2;{remote};;\n")
    (home / "control" / "routemap").write_text("*;*;r\n")
    return home


def candidates(base: Path, port: int, wanted: list[str]) -> list[Candidate]:
    env0 = {"PATH": "/usr/bin:/bin"}
    out = []
    if "c" in wanted:
        ref = nb.reference()
        controls = {}
        for route in ROUTES:
            control = base / f"c-{route}" / "control"
            control.mkdir(parents=True, exist_ok=True)
            (control / "me").write_text("bench.test\n")
            if route == "relay":
                (control / "smtproutes").write_text(f":127.0.0.1:{port}\n")
            controls[route] = control
        out.append(Candidate(
            "C qmail-remote", {r: [str(ref.binary)] for r in ROUTES},
            {r: env0 for r in ROUTES},
            use={r: (lambda c=controls[r]: ref.use_control(c)) for r in ROUTES}))
    homes = {r: qmail_home(base, r, port) for r in ROUTES}
    if "qremote" in wanted:
        out.append(Candidate(
            "qremote", {r: [str(nb.VENV_PYTHON), "-I", "-m", "qremote.remote"]
                        for r in ROUTES},
            {r: {**env0, "QMAIL_HOME": str(homes[r])} for r in ROUTES}))
    if "worker" in wanted:
        out.append(worker_candidate(homes, env0))
    return out


def worker_candidate(homes: dict[str, Path], env0: dict[str, str]) -> Candidate:
    """``qremote worker --qmail-home DIR`` and the client at DIR/bin/qmail-remote."""
    qremote = str(nb.VENV_PYTHON.parent / "qremote")
    cand = Candidate("qremote worker", {}, {})
    probe = subprocess.run([qremote, "worker", "--help"], capture_output=True)
    if probe.returncode != 0:
        cand.skip = "`qremote worker` does not exist yet (qremote worker --help failed)"
        return cand
    for route, home in homes.items():
        env = {**env0, "QMAIL_HOME": str(home)}
        (home / "bin").mkdir(exist_ok=True)
        inst = subprocess.run([qremote, "--qmail-home", str(home), "install"],
                              capture_output=True, text=True, env=env)
        client = home / "bin" / "qmail-remote"
        if inst.returncode != 0 or not client.exists():
            cand.skip = (f"`qremote --qmail-home {home} install` did not put the client at "
                         f"{client}: {(inst.stdout + inst.stderr).strip()[-300:]}")
            return cand
        cand.argv[route] = [str(client)]
        cand.env[route] = env
        cand.daemon[route] = nb.Daemon(
            [qremote, "worker", "--qmail-home", str(home)], env,
            ready=[qremote, "--qmail-home", str(home), "status"])
    return cand


# --- one run --------------------------------------------------------------------------


@dataclass
class Run:
    """The figures of one batch of deliveries by one candidate."""

    cpu_ms: float              # per delivery, clients and daemon
    daemon_cpu_ms: float       # the daemon's share
    rss_mb: list[float]        # peak RSS of each process
    inflight_mb: float         # memory per delivery in flight
    msgs: float                # msg/s
    latency_ms: float          # median time from spawn to end of output
    conn_per_msg: float
    driver_cpu_ms: float       # the driver's own CPU per delivery
    failures: list[nb.Delivery]


def run_once(cand: Candidate, route: str, conc: int, count: int, message: Path,
             driver: nb.Driver, sink: nb.Sink) -> Run:
    daemon = cand.daemon.get(route)
    pid = daemon.proc.pid if daemon and daemon.proc else None
    if pid:
        nb.reset_peak(pid)
        base_rss = nb.tree_rss_kb(pid)
        base_cpu = nb.tree_cpu_ms(pid)
    conns0, msgs0, _ = sink.counters()
    batch = driver.run(conc, count, message, [*cand.argv[route], HOST, SENDER, RECIP],
                       cand.env[route])
    conns1, msgs1, _ = sink.counters()
    n = len(batch.deliveries)
    client_cpu = sum(d.cpu_ms for d in batch.deliveries) / n
    rss = [d.maxrss_kb / 1024 for d in batch.deliveries]
    daemon_cpu = inflight = 0.0
    if pid:
        daemon_cpu = (nb.tree_cpu_ms(pid) - base_cpu) / n
        inflight = (nb.tree_rss_kb(pid, "VmHWM") - base_rss) / 1024 / conc
    failures = batch.failures()
    if msgs1 - msgs0 != n and not failures:
        failures = [nb.Delivery(0, 0, 0, 0, 0, "?", f"the sink counted {msgs1 - msgs0} "
                                f"messages for {n} K reports")]
    return Run(cpu_ms=client_cpu + daemon_cpu, daemon_cpu_ms=daemon_cpu, rss_mb=rss,
               inflight_mb=inflight + statistics.median(rss), msgs=n / batch.wall_s,
               latency_ms=statistics.median(d.wall_ms for d in batch.deliveries),
               conn_per_msg=(conns1 - conns0) / max(1, msgs1 - msgs0),
               driver_cpu_ms=batch.driver_cpu_ms / n, failures=failures)


# --- a scenario -----------------------------------------------------------------------


@dataclass
class Result:
    scenario: str
    name: str
    runs: list[Run]
    skip: str | None = None
    count: int = 0

    def valid(self) -> bool:
        return bool(self.runs) and not any(r.failures for r in self.runs)


def run_count(args: argparse.Namespace, conc: int, warm: Run, warm_conc: int) -> int:
    """Deliveries a run: ``--count``, else what fits in ``--budget`` seconds, at least one
    wave of the concurrency and at most five (or 100). The rate is foreseen from the
    warm-up: its msg/s scaled to the concurrency, at most what the cores allow at its
    CPU per delivery."""
    if args.count:
        return args.count
    rate = min(warm.msgs * conc / warm_conc, (os.cpu_count() or 1) * 1000 / warm.cpu_ms)
    return max(conc, min(max(100, 5 * conc), int(rate * args.budget)))


def scenario(net: str, conc: int, route: str, cands: list[Candidate], args,
             message: Path, driver: nb.Driver, sink: nb.Sink) -> list[Result]:
    label = f"{NETS[net]}, {conc} concurrent, {route} route"
    nb.say(f"== {label}: {args.runs} runs")
    results = {c.name: Result(label, c.name, [], c.skip) for c in cands}
    live = [c for c in cands if not c.skip]
    try:
        for c in live:
            res = results[c.name]
            if route in c.use:
                c.use[route]()
            if route in c.daemon:
                try:
                    c.daemon[route].start()
                except RuntimeError as exc:
                    res.skip = f"its daemon did not start: {exc}"
                    continue
            warm_conc = min(conc, 20)
            warm = run_once(c, route, conc, warm_conc, message, driver, sink)
            if warm.failures:
                res.runs.append(warm)
            else:
                res.count = run_count(args, conc, warm, warm_conc)
        for i in range(args.runs):
            for c in live:
                res = results[c.name]
                if res.skip or (res.runs and not res.valid()):
                    continue
                if route in c.use:
                    c.use[route]()
                run = run_once(c, route, conc, res.count, message, driver, sink)
                res.runs.append(run)
                nb.say(f"   run {i + 1} {c.name:16} {res.count:4} deliveries "
                       f"{nb.fmt(run.cpu_ms):>6} ms CPU {nb.fmt(run.msgs):>6} msg/s"
                       + (f"  INVALID: {len(run.failures)} not K" if run.failures else ""))
    finally:
        for c in live:
            if route in c.daemon:
                c.daemon[route].stop()
    out = list(results.values())
    print_table(label, args.runs, out)
    return out


def ratio(value: float, base: float | None) -> str:
    if not base:
        return ""
    r = value / base
    return f" ×{r:.2f}" if r < 10 else f" ×{r:.0f}"


def print_table(label: str, runs: int, results: list[Result]) -> None:
    print(f"\n{label} ({runs} runs interleaved; median (min–max), ×C = ratio to C)")
    cols = ("candidate", "runs of", "CPU/delivery ms", "peak RSS/process MB",
            "MB/delivery in flight", "msg/s", "latency ms", "conn/msg")
    rows = [cols]
    base = next((r for r in results if r.name.startswith("C ") and r.valid()), None)
    b = summary(base) if base else None
    for res in results:
        if res.skip:
            rows.append((res.name, f"skipped: {res.skip}", *[""] * 6))
            continue
        if not res.valid():
            bad = next(r for r in res.runs if r.failures).failures
            rows.append((res.name, f"INVALID: {len(bad)} deliveries not K, e.g. "
                         f"{bad[0].letter} {bad[0].report[:160]!r}", *[""] * 6))
            continue
        s = summary(res)
        cpu = nb.fmt_spread(s["cpu"]) + ratio(statistics.median(s["cpu"]),
                                              b and statistics.median(b["cpu"]))
        if any(r.daemon_cpu_ms for r in res.runs):
            cpu += f" (daemon {nb.fmt(statistics.median(r.daemon_cpu_ms for r in res.runs))})"
        rows.append((
            res.name, str(res.count), cpu,
            nb.fmt_spread(s["rss"]) + ratio(statistics.median(s["rss"]),
                                            b and statistics.median(b["rss"])),
            nb.fmt(statistics.median(s["inflight"])) + ratio(
                statistics.median(s["inflight"]), b and statistics.median(b["inflight"])),
            nb.fmt_spread(s["msgs"]) + ratio(statistics.median(s["msgs"]),
                                             b and statistics.median(b["msgs"])),
            nb.fmt_spread(s["latency"]),
            nb.fmt(statistics.median(s["conn"]))))
    widths = [max(len(r[i]) for r in rows if not r[1].startswith(("skipped", "INVALID")))
              for i in range(len(cols))]
    for row in rows:
        if row[1].startswith(("skipped", "INVALID")):
            print(f"  {row[0]:{widths[0]}}  {row[1]}")
        else:
            print("  " + "  ".join(f"{v:{w}}" for v, w in zip(row, widths, strict=True)))
    drivers = [r.driver_cpu_ms for res in results for r in res.runs]
    if drivers:
        print(f"  (the driver's own CPU: {nb.fmt(statistics.median(drivers))} ms a delivery)")


def summary(res: Result) -> dict[str, list[float]]:
    return {"cpu": [r.cpu_ms for r in res.runs],
            "rss": [x for r in res.runs for x in r.rss_mb],
            "inflight": [r.inflight_mb for r in res.runs],
            "msgs": [r.msgs for r in res.runs],
            "latency": [r.latency_ms for r in res.runs],
            "conn": [r.conn_per_msg for r in res.runs]}


def markdown(results: list[Result]) -> None:
    """The whole measurement as one Markdown table (for README)."""
    print("\n| scenario | candidate | CPU/delivery | peak RSS/process | msg/s |")
    print("| --- | --- | --- | --- | --- |")
    by_scenario: dict[str, list[Result]] = {}
    for res in results:
        by_scenario.setdefault(res.scenario, []).append(res)
    for label, group in by_scenario.items():
        base = next((r for r in group if r.name.startswith("C ") and r.valid()), None)
        b = summary(base) if base else None
        for res in group:
            if res.skip:
                continue
            if not res.valid():
                print(f"| {label} | {res.name} | INVALID | | |")
                continue
            s = summary(res)
            cells = []
            for key, unit in (("cpu", " ms"), ("rss", " MB"), ("msgs", "")):
                med = statistics.median(s[key])
                cell = f"{nb.fmt(med)}{unit}"
                if b and res is not base:
                    cell += ratio(med, statistics.median(b[key]))
                cells.append(cell)
            print(f"| {label} | {res.name} | {' | '.join(cells)} |")


# --- main -----------------------------------------------------------------------------


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--net", default="loopback,rtt", help="loopback,rtt")
    p.add_argument("--conc", default="20,200", help="concurrent deliveries, e.g. 20,200")
    p.add_argument("--route", default="relay,mx", help="relay,mx")
    p.add_argument("--candidates", default="c,qremote,worker", help="c,qremote,worker")
    p.add_argument("--runs", type=int, default=3, help="interleaved runs per candidate")
    p.add_argument("--count", type=int, default=0,
                   help="deliveries a run (default: as many as --budget allows, from "
                   "one to five times the concurrency)")
    p.add_argument("--budget", type=float, default=5,
                   help="seconds a run should take (default 5)")
    p.add_argument("--rtt-ms", type=float, default=50, help="round trip of the rtt net")
    p.add_argument("--sink", default="pipelining,chunking",
                   help="extensions the sink offers: any of pipelining,chunking, or none")
    p.add_argument("--size", type=int, default=4096, help="message size in bytes")
    args = p.parse_args()
    for name in ("net", "conc", "route", "candidates", "sink"):
        setattr(args, name, [x for x in getattr(args, name).split(",") if x])
    args.conc = [int(x) for x in args.conc]
    for name, allowed in (("net", NETS), ("route", ROUTES),
                          ("candidates", ("c", "qremote", "worker")),
                          ("sink", ("pipelining", "chunking", "none"))):
        bad = set(getattr(args, name)) - set(allowed)
        if bad:
            p.error(f"--{name}: unknown {', '.join(sorted(bad))}")
    return args


def inside(args: argparse.Namespace) -> int:
    """The measurement proper, inside the namespace."""
    driver = nb.Driver()
    sink = nb.Sink("0.0.0.0", 25, pipelining="pipelining" in args.sink,
                   chunking="chunking" in args.sink)
    dns = nb.DnsServer() if "mx" in args.route else None
    results: list[Result] = []
    print(f"4 KB message, {os.cpu_count()} CPUs; sink offers {sink.extensions}; "
          f"candidates run as qmail-rspawn runs them")
    with tempfile.TemporaryDirectory(prefix="qremote-bench-") as tmp:
        base = Path(tmp)
        message = nb.write_message(base / "message", args.size)
        cands = candidates(base, sink.port, args.candidates)
        nothing = str(nb.compile_helper("nothing", static=True))
        floor = driver.run(max(args.conc), max(args.conc), message, [nothing], {})
        print(f"peak RSS floor (a static no-op started by the driver): "
              f"{max(d.maxrss_kb for d in floor.deliveries) / 1024:.2f} MB")
        try:
            for net in args.net:
                delayer = None
                if net == "rtt":
                    delayer = nb.Delayer(args.rtt_ms / 2)
                connect, lo, hi = nb.measure_rtt(sink.port)
                print(f"\n## {NETS[net]}: TCP connect {connect:.1f} ms, SMTP NOOP round "
                      f"trip {lo:.2f}–{hi:.2f} ms (20 samples)")
                try:
                    for conc in args.conc:
                        for route in args.route:
                            dns_cpu0 = dns.cpu_ms() if dns else 0
                            results += scenario(net, conc, route, cands, args, message,
                                                driver, sink)
                            if dns and route == "mx":
                                print(f"  (the DNS server's CPU over the scenario: "
                                      f"{(dns.cpu_ms() - dns_cpu0) / 1000:.1f} s)")
                finally:
                    if delayer:
                        print(f"  (delayer: {delayer.stop()})")
        finally:
            if dns:
                dns.stop()
            sink.stop()
    markdown(results)
    return 0 if all(r.skip or r.valid() for r in results) else 1


def main() -> None:
    args = parse()
    if os.environ.get(nb.IN_NAMESPACE):
        sys.exit(inside(args))
    nb.require_root("a network namespace, iptables and port 25 inside it")
    nb.check_venv()
    nb.install_packages(["iproute2", "iptables", "libnetfilter-queue-dev", "dnsmasq-base"])
    nb.compile_helper("rspawn_driver", static=True)
    nb.compile_helper("nothing", static=True)
    nb.compile_helper("smtp_sink")
    nb.compile_helper("rtt_delayer", libs=("-lnetfilter_queue", "-lnfnetlink"))
    nb.reference()
    sys.exit(nb.in_namespace([sys.executable, str(Path(__file__).resolve()),
                              *sys.argv[1:]]))


if __name__ == "__main__":
    main()
