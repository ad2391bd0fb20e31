"""The warm path, measured: qremote against qmail's own C qmail-remote, side by side.

    sudo .venv/bin/python bench/warm_path.py            # every scenario, 3 runs each
    sudo .venv/bin/python bench/warm_path.py --net rtt --conc 200 --route relay --runs 5
    sudo .venv/bin/python bench/warm_path.py --candidates c,worker,relay,pyclient,data
    sudo .venv/bin/python bench/warm_path.py --hold 200 --candidates c,worker,relay,pyclient

Each scenario (loopback or a true 50 ms round trip, 20 or 200 concurrent deliveries,
the relay or the MX route) runs every candidate in turn (A, B, A, B ...) and prints,
per candidate: CPU per delivery (and the worker's share), peak RSS per process, memory
per delivery in flight, msg/s, latency, connections and round trips per message, how
busy the machine's CPUs were, and the ratio to C.

How (as qmail does it, see qmail-rspawn's spawn.c): ``bench/c/rspawn_driver.c`` starts
each delivery as a new process ``CANDIDATE x.org a@b.org y@x.org`` with stdin the 4 KB
message file opened anew, stdout a pipe, stderr the same pipe; it reads to end of file
and reaps with wait4, so each process's own CPU and peak RSS are exact. Every report
must be ``K`` and the sink must count every message, or the run is marked INVALID. The
SMTP sink is ``bench/c/smtp_sink.c`` (PIPELINING and CHUNKING offered unless
``--sink``); it counts connections, messages and reply bursts (a round trip each).
Everything runs inside a network namespace of its own (port 25 and 53 free there); for
the round trip, its lo TCP traffic goes through NFQUEUE to ``bench/c/rtt_delayer.c``,
which holds each packet for half the round trip; the script checks the round trip with
a TCP connect and NOOPs. DNS (MX route) is dnsmasq on 127.0.0.1:53 there, not delayed
(a local cache), answers with a TTL of ``--dns-ttl`` (300 s).

Candidates (``--candidates``): ``c`` (the reference, built from ../shared/reference),
``qremote`` (the in-process path, ``python -I -m qremote.remote``), and ``qremote
worker`` (as root, ``--user root``) with each client ``qremote install`` can put at
QMAIL_HOME/bin/qmail-remote: ``worker`` (the compiled client: hands over and exits),
``relay`` (the compiled client built with ``relay=True``: stays and copies the
reports), ``pyclient`` (``install --script``: the Python client), ``data`` (the
compiled client, relay route only, to a second sink that does not offer CHUNKING:
DATA instead of BDAT). A worker's CPU is its /proc utime+stime over the run divided by
the deliveries, added to its clients' own.

Memory per delivery in flight, in the scenarios, is time-weighted: each client's peak
RSS for as long as it lived (a hand-over client exits at its ack), over the time
deliveries were in flight, plus the worker's peak RSS growth over its size once warm
(one delivery), divided by the concurrency. ``--hold N`` measures it directly instead:
N deliveries held at MAIL FROM by the sink at once, then RSS and PSS of every live
client and the growth of a fresh worker, divided by N.

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
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import netbench as nb

HOST, SENDER, RECIP = "x.org", "a@b.org", "y@x.org"
NETS = {"loopback": "loopback", "rtt": "50 ms RTT"}
ROUTES = ("relay", "mx")


# --- candidates -----------------------------------------------------------------------

# name -> what it is (for --candidates and the tables)
KINDS = {
    "c": "C qmail-remote",
    "qremote": "qremote in-process",
    "worker": "worker, C client",
    "relay": "worker, C relay client",
    "pyclient": "worker, Python client",
    "data": "worker, DATA sink",
}


@dataclass
class Candidate:
    """A command line run once per delivery, and optionally a daemon it needs."""

    name: str
    argv: dict[str, list[str]]           # route -> argv (HOST SENDER RECIP appended)
    env: dict[str, dict[str, str]]       # route -> environment
    use: dict[str, object] = field(default_factory=dict)  # route -> callable before runs
    daemon: dict[str, nb.Daemon] = field(default_factory=dict)  # route -> daemon
    sink: str = "main"                   # which sink it delivers to
    skip: str | None = None
    base_kb: int = 0                     # the daemon's RSS once warm (one delivery)


def qmail_home(base: Path, tag: str, route: str, port: int) -> Path:
    """A scratch qmail home whose routemap sends everything to route ``r``."""
    home = base / f"{tag}-{route}"
    (home / "control").mkdir(parents=True, exist_ok=True)
    (home / "control" / "me").write_text("bench.test\n")
    remote = f"127.0.0.1:{port}" if route == "relay" else "mx"
    (home / "control" / "routes").write_text(f"r;127.0.0.2;{remote};;\n")
    (home / "control" / "routemap").write_text("*;*;r\n")
    return home


def candidates(base: Path, ports: dict[str, int], wanted: list[str]) -> list[Candidate]:
    env0 = {"PATH": "/usr/bin:/bin"}
    port = ports["main"]
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
            KINDS["c"], {r: [str(ref.binary)] for r in ROUTES},
            {r: env0 for r in ROUTES},
            use={r: (lambda c=controls[r]: ref.use_control(c)) for r in ROUTES}))
    if "qremote" in wanted:
        homes = {r: qmail_home(base, "qremote", r, port) for r in ROUTES}
        out.append(Candidate(
            KINDS["qremote"], {r: [str(nb.VENV_PYTHON), "-I", "-m", "qremote.remote"]
                               for r in ROUTES},
            {r: {**env0, "QMAIL_HOME": str(homes[r])} for r in ROUTES}))
    for kind in ("worker", "relay", "pyclient", "data"):
        if kind in wanted:
            routes = ("relay",) if kind == "data" else ROUTES
            sink = "data" if kind == "data" else "main"
            homes = {r: qmail_home(base, kind, r, ports[sink]) for r in routes}
            out.append(worker_candidate(kind, homes, env0, sink))
    return out


def worker_candidate(kind: str, homes: dict[str, Path], env0: dict[str, str],
                     sink: str) -> Candidate:
    """``qremote worker --qmail-home DIR --user root`` and the client ``qremote install``
    puts at DIR/bin/qmail-remote: the compiled one (``worker``, ``data``), the relay
    variant built over it (``relay``) or the Python client (``pyclient``, --script).

    As root: the worker stays root (``--user root``: the scratch homes are under /tmp
    and this venv's Python may live under /root), and install's self-test runs as
    root too."""
    qremote = str(nb.VENV_PYTHON.parent / "qremote")
    cand = Candidate(KINDS[kind], {}, {}, sink=sink)
    probe = subprocess.run([qremote, "worker", "--help"], capture_output=True)
    if probe.returncode != 0:
        cand.skip = "`qremote worker` does not exist (qremote worker --help failed)"
        return cand
    for route, home in homes.items():
        env = {**env0, "QMAIL_HOME": str(home)}
        (home / "bin").mkdir(exist_ok=True)
        (home / "queue" / "lock").mkdir(parents=True, exist_ok=True)
        client = home / "bin" / "qmail-remote"
        if not client.exists():  # install keeps "qmail's" as qmail-remote.orig
            client.write_bytes(b"#!/bin/sh\nexit 111\n")
            client.chmod(0o755)
        inst = subprocess.run([qremote, "--qmail-home", str(home), "install",
                               "--user", "root", *(["--script"] if kind == "pyclient"
                                                   else [])],
                              capture_output=True, text=True, env=env)
        if inst.returncode != 0:
            cand.skip = (f"`qremote --qmail-home {home} install` failed: "
                         f"{(inst.stdout + inst.stderr).strip()[-300:]}")
            return cand
        if kind == "relay":
            from qremote.client.build import build_client

            built = build_client(home, nb.VENV_PYTHON, client, relay=True)
            if built.path is None:
                cand.skip = f"the relay client did not build: {built.reason}"
                return cand
        cand.argv[route] = [str(client)]
        cand.env[route] = env
        cand.daemon[route] = nb.Daemon(
            [qremote, "worker", "--qmail-home", str(home), "--user", "root"], env,
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
    client_ms: float           # median time from spawn to the client's exit
    conn_per_msg: float
    rtt_per_msg: float         # round trips a message: connections + reply bursts
    busy: float                # share of the machine's CPUs busy during the run
    sink_cpu_ms: float         # the sink's CPU per message (the server's side)
    driver_cpu_ms: float       # the driver's own CPU per delivery
    failures: list[nb.Delivery]


def run_once(cand: Candidate, route: str, conc: int, count: int, message: Path,
             driver: nb.Driver, sink: nb.Sink) -> Run:
    """One batch. Memory per delivery in flight is time-weighted: the clients' peak RSS
    for as long as each lives, over the time deliveries are in flight, plus the daemon's
    peak growth over its warm RSS shared by the deliveries in flight."""
    daemon = cand.daemon.get(route)
    pid = daemon.proc.pid if daemon and daemon.proc else None
    if pid:
        nb.reset_peak(pid)
        base_cpu = nb.tree_cpu_ms(pid)
    c0 = sink.counters()
    t0 = nb.machine_ticks()
    s0 = nb.tree_cpu_ms(sink.proc.pid)
    batch = driver.run(conc, count, message, [*cand.argv[route], HOST, SENDER, RECIP],
                       cand.env[route])
    t1 = nb.machine_ticks()
    s1 = nb.tree_cpu_ms(sink.proc.pid)
    c1 = sink.counters()
    n = len(batch.deliveries)
    ds = batch.deliveries
    client_cpu = sum(d.cpu_ms for d in ds) / n
    rss = [d.maxrss_kb / 1024 for d in ds]
    clients_mb = (sum(d.maxrss_kb / 1024 * min(d.exit_ms, d.wall_ms) for d in ds)
                  / sum(d.wall_ms for d in ds))
    daemon_cpu = daemon_mb = 0.0
    if pid:
        daemon_cpu = (nb.tree_cpu_ms(pid) - base_cpu) / n
        daemon_mb = max(0, nb.tree_rss_kb(pid, "VmHWM") - cand.base_kb) / 1024 / conc
    failures = batch.failures()
    msgs = c1.messages - c0.messages
    if msgs != n and not failures:
        failures = [nb.Delivery(0, 0, 0, 0, 0, 0, "?", f"the sink counted {msgs} "
                                f"messages for {n} K reports")]
    conns = c1.connections - c0.connections
    return Run(cpu_ms=client_cpu + daemon_cpu, daemon_cpu_ms=daemon_cpu, rss_mb=rss,
               inflight_mb=clients_mb + daemon_mb, msgs=n / batch.wall_s,
               latency_ms=statistics.median(d.wall_ms for d in ds),
               client_ms=statistics.median(d.exit_ms for d in ds),
               conn_per_msg=conns / max(1, msgs),
               rtt_per_msg=(conns + c1.bursts - c0.bursts) / max(1, msgs),
               busy=(t1[0] - t0[0]) / max(1, t1[1] - t0[1]),
               sink_cpu_ms=(s1 - s0) / max(1, msgs),
               driver_cpu_ms=batch.driver_cpu_ms / n, failures=failures)


def start_daemon(cand: Candidate, route: str, message: Path, driver: nb.Driver) -> None:
    """Start the candidate's daemon, warm it with one delivery, note its RSS then."""
    daemon = cand.daemon[route]
    daemon.start()
    driver.run(1, 1, message, [*cand.argv[route], HOST, SENDER, RECIP], cand.env[route])
    cand.base_kb = nb.tree_rss_kb(daemon.proc.pid)


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
    wave of the concurrency and at most 1,000 (or ten waves). The rate is foreseen from
    the warm-up: its msg/s scaled to the concurrency, at most what the cores allow at
    its CPU per delivery."""
    if args.count:
        return args.count
    rate = min(warm.msgs * conc / warm_conc, (os.cpu_count() or 1) * 1000 / warm.cpu_ms)
    return max(conc, min(max(1000, 10 * conc), int(rate * args.budget)))


def scenario(net: str, conc: int, route: str, cands: list[Candidate], args,
             message: Path, driver: nb.Driver, sinks: dict[str, nb.Sink]) -> list[Result]:
    label = f"{NETS[net]}, {conc} concurrent, {route} route"
    nb.say(f"== {label}: {args.runs} runs")
    cands = [c for c in cands if route in c.argv or c.skip]
    results = {c.name: Result(label, c.name, [], c.skip) for c in cands}
    live = [c for c in cands if not c.skip]
    try:
        for c in live:
            res = results[c.name]
            if route in c.use:
                c.use[route]()
            if route in c.daemon:
                try:
                    start_daemon(c, route, message, driver)
                except RuntimeError as exc:
                    res.skip = f"its daemon did not start: {exc}"
                    continue
            warm_conc = min(conc, 20)
            warm = run_once(c, route, conc, warm_conc, message, driver, sinks[c.sink])
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
                run = run_once(c, route, conc, res.count, message, driver,
                               sinks[c.sink])
                res.runs.append(run)
                nb.say(f"   run {i + 1} {c.name:22} {res.count:4} deliveries "
                       f"{nb.fmt(run.cpu_ms):>6} ms CPU {nb.fmt(run.msgs):>6} msg/s, "
                       f"CPUs {run.busy:.0%} busy"
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
            "MB/delivery in flight", "msg/s", "latency ms", "client lives ms",
            "conn/msg", "RTT/msg", "CPUs busy", "sink ms")
    rows = [cols]
    base = next((r for r in results if r.name.startswith("C ") and r.valid()), None)
    b = summary(base) if base else None
    for res in results:
        if res.skip:
            rows.append((res.name, f"skipped: {res.skip}", *[""] * 10))
            continue
        if not res.valid():
            bad = next(r for r in res.runs if r.failures).failures
            rows.append((res.name, f"INVALID: {len(bad)} deliveries not K, e.g. "
                         f"{bad[0].letter} {bad[0].report[:160]!r}", *[""] * 10))
            continue
        s = summary(res)
        cpu = nb.fmt_spread(s["cpu"]) + ratio(statistics.median(s["cpu"]),
                                              b and statistics.median(b["cpu"]))
        if any(s["daemon"]):
            cpu += f" (daemon {nb.fmt(statistics.median(s['daemon']))})"
        rows.append((
            res.name, str(res.count), cpu,
            nb.fmt_spread(s["rss"]) + ratio(statistics.median(s["rss"]),
                                            b and statistics.median(b["rss"])),
            nb.fmt_spread(s["inflight"]) + ratio(
                statistics.median(s["inflight"]), b and statistics.median(b["inflight"])),
            nb.fmt_spread(s["msgs"]) + ratio(statistics.median(s["msgs"]),
                                             b and statistics.median(b["msgs"])),
            nb.fmt_spread(s["latency"]),
            nb.fmt(statistics.median(s["client"])),
            nb.fmt(statistics.median(s["conn"])),
            nb.fmt(statistics.median(s["rtt"])),
            f"{statistics.median(s['busy']):.0%}",
            nb.fmt(statistics.median(s["sink"]))))
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
            "daemon": [r.daemon_cpu_ms for r in res.runs],
            "rss": [x for r in res.runs for x in r.rss_mb],
            "inflight": [r.inflight_mb for r in res.runs],
            "msgs": [r.msgs for r in res.runs],
            "latency": [r.latency_ms for r in res.runs],
            "client": [r.client_ms for r in res.runs],
            "conn": [r.conn_per_msg for r in res.runs],
            "rtt": [r.rtt_per_msg for r in res.runs],
            "busy": [r.busy for r in res.runs],
            "sink": [r.sink_cpu_ms for r in res.runs]}


def markdown(results: list[Result]) -> None:
    """The whole measurement as one Markdown table (for README): medians, ratio to C."""
    print("\n| scenario | candidate | CPU/delivery (worker's share) | MB/delivery in flight "
          "| msg/s | latency | conn/msg | RTT/msg |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
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
                print(f"| {label} | {res.name} | INVALID | | | | | |")
                continue
            s = summary(res)
            cells = []
            for key, unit in (("cpu", " ms"), ("inflight", " MB"), ("msgs", "")):
                med = statistics.median(s[key])
                cell = f"{nb.fmt(med)}{unit}"
                if key == "cpu" and any(s["daemon"]):
                    cell += f" ({nb.fmt(statistics.median(s['daemon']))})"
                if b and res is not base:
                    cell += ratio(med, statistics.median(b[key]))
                cells.append(cell)
            cells += [f"{nb.fmt(statistics.median(s['latency']))} ms",
                      nb.fmt(statistics.median(s["conn"])),
                      nb.fmt(statistics.median(s["rtt"]))]
            print(f"| {label} | {res.name} | {' | '.join(cells)} |")


# --- memory per delivery in flight, held ------------------------------------------------


@dataclass
class Held:
    """One held measurement: kB per delivery in flight."""

    clients_rss: float
    clients_pss: float
    daemon_rss: float
    daemon_pss: float


def hold_once(cand: Candidate, n: int, message: Path, driver: nb.Driver,
              sink: nb.Sink) -> Held:
    """``n`` deliveries held at MAIL FROM by the sink, all at once; the memory of every
    process then (the clients still alive, the daemon's growth over its warm size),
    divided by ``n``. A fresh daemon for each measurement, warmed by one delivery."""
    route = "relay"
    if route in cand.use:
        cand.use[route]()
    daemon = cand.daemon.get(route)
    base = (0, 0)
    if daemon:
        start_daemon(cand, route, message, driver)
        time.sleep(0.5)
        base = nb.memory_kb(nb.tree_pids(daemon.proc.pid))
    try:
        sink.hold()
        proc = driver.start(n, n, message, [*cand.argv[route], HOST, SENDER, RECIP],
                            cand.env[route])
        try:
            deadline = time.monotonic() + 120
            while sink.counters().held < n:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{cand.name}: {sink.counters().held} of {n} "
                                       "deliveries reached MAIL FROM")
                time.sleep(0.05)
            time.sleep(0.5)  # hand-over clients exit after their ack
            clients = nb.memory_kb(nb.children(proc.pid))
            grown = nb.memory_kb(nb.tree_pids(daemon.proc.pid)) if daemon else (0, 0)
        finally:
            sink.release()
        batch = driver.wait(proc)
    finally:
        if daemon:
            daemon.stop()
    if batch.failures():
        d = batch.failures()[0]
        raise RuntimeError(f"{cand.name}: {len(batch.failures())} deliveries not K, e.g. "
                           f"{d.letter} {d.report[:160]!r}")
    return Held(clients[0] / n, clients[1] / n, (grown[0] - base[0]) / n,
                (grown[1] - base[1]) / n)


def hold_table(args: argparse.Namespace, cands: list[Candidate], message: Path,
               driver: nb.Driver, sinks: dict[str, nb.Sink]) -> None:
    n = args.hold
    nb.say(f"== {n} deliveries held at MAIL FROM: {args.runs} runs")
    held: dict[str, list[Held]] = {c.name: [] for c in cands if not c.skip}
    for i in range(args.runs):
        for c in cands:
            if c.skip or "relay" not in c.argv:
                continue
            h = hold_once(c, n, message, driver, sinks[c.sink])
            held[c.name].append(h)
            nb.say(f"   run {i + 1} {c.name:24} clients {h.clients_rss:.0f} kB RSS "
                   f"{h.clients_pss:.0f} kB PSS, daemon +{h.daemon_rss:.0f} kB RSS "
                   f"+{h.daemon_pss:.0f} kB PSS a delivery")
    print(f"\n{n} deliveries in flight (held at MAIL FROM by the sink, loopback, relay "
          f"route), kB per delivery, median of {args.runs} (min–max):")
    print("\n| candidate | clients alive, RSS | clients alive, PSS | worker growth, RSS "
          "| worker growth, PSS | in all, RSS | in all, PSS |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, hs in held.items():
        if not hs:
            continue
        cols = [[h.clients_rss for h in hs], [h.clients_pss for h in hs],
                [h.daemon_rss for h in hs], [h.daemon_pss for h in hs],
                [h.clients_rss + h.daemon_rss for h in hs],
                [h.clients_pss + h.daemon_pss for h in hs]]
        print(f"| {name} | " + " | ".join(kb_spread(v) for v in cols) + " |")


def kb_spread(values: list[float]) -> str:
    med, lo, hi = nb.spread(values)
    return f"{med:.0f}" if round(lo) == round(hi) else f"{med:.0f} ({lo:.0f}–{hi:.0f})"


# --- main -----------------------------------------------------------------------------


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--net", default="loopback,rtt", help="loopback,rtt")
    p.add_argument("--conc", default="20,200", help="concurrent deliveries, e.g. 20,200")
    p.add_argument("--route", default="relay,mx", help="relay,mx")
    p.add_argument("--candidates", default="c,qremote,worker",
                   help=f"any of {','.join(KINDS)} (default c,qremote,worker): "
                   + "; ".join(f"{k}: {v}" for k, v in KINDS.items()))
    p.add_argument("--runs", type=int, default=3, help="interleaved runs per candidate")
    p.add_argument("--count", type=int, default=0,
                   help="deliveries a run (default: as many as --budget allows, from "
                   "one wave of the concurrency to 1,000 or ten waves)")
    p.add_argument("--budget", type=float, default=5,
                   help="seconds a run should take (default 5)")
    p.add_argument("--rtt-ms", type=float, default=50, help="round trip of the rtt net")
    p.add_argument("--sink", default="pipelining,chunking",
                   help="extensions the sink offers: any of pipelining,chunking, or none "
                   "(the 'data' candidate's sink never offers CHUNKING)")
    p.add_argument("--size", type=int, default=4096, help="message size in bytes")
    p.add_argument("--dns-ttl", type=int, default=300,
                   help="TTL of the DNS answers for the MX route (default 300 s; 0: "
                   "every lookup goes to the server)")
    p.add_argument("--hold", type=int, default=0, metavar="N",
                   help="instead of the scenarios: memory per delivery in flight with N "
                   "deliveries held at MAIL FROM (loopback, relay route)")
    args = p.parse_args()
    for name in ("net", "conc", "route", "candidates", "sink"):
        setattr(args, name, [x for x in getattr(args, name).split(",") if x])
    args.conc = [int(x) for x in args.conc]
    for name, allowed in (("net", NETS), ("route", ROUTES),
                          ("candidates", KINDS),
                          ("sink", ("pipelining", "chunking", "none"))):
        bad = set(getattr(args, name)) - set(allowed)
        if bad:
            p.error(f"--{name}: unknown {', '.join(sorted(bad))}")
    return args


def no_ops() -> list[tuple[str, str]]:
    """Programs that exit at once: with the C library (static), and without it where
    the compiled client is built so (what the library's start-up costs a process)."""
    from qremote.client.build import runtimes

    found = [("a static no-op", str(nb.compile_helper("nothing", static=True)))]
    if "freestanding" in runtimes():
        found.append(("a no-op without the C library", str(nb.compile_helper(
            "nothing_bare", static=True, flags=("-nostdlib", "-fno-pie", "-no-pie")))))
    return found


def inside(args: argparse.Namespace) -> int:
    """The measurement proper, inside the namespace."""
    driver = nb.Driver()
    sinks = {"main": nb.Sink("0.0.0.0", 25, pipelining="pipelining" in args.sink,
                             chunking="chunking" in args.sink)}
    if "data" in args.candidates:
        sinks["data"] = nb.Sink("127.0.0.1", 2525, pipelining="pipelining" in args.sink,
                                chunking=False)
    routes = ["relay"] if args.hold else args.route
    dns = nb.DnsServer(args.dns_ttl) if "mx" in routes else None
    results: list[Result] = []
    print(f"{args.size} byte message, {os.cpu_count()} CPUs; the sink offers "
          f"{sinks['main'].extensions}; DNS TTL {args.dns_ttl} s; candidates run as "
          "qmail-rspawn runs them")
    with tempfile.TemporaryDirectory(prefix="qremote-bench-") as tmp:
        base = Path(tmp)
        message = nb.write_message(base / "message", args.size)
        cands = candidates(base, {k: v.port for k, v in sinks.items()}, args.candidates)
        for c in cands:
            if c.skip:
                print(f"{c.name}: skipped: {c.skip}")
        try:
            if args.hold:
                hold_table(args, cands, message, driver, sinks)
                return 0
            for label, nothing in no_ops():
                floor = driver.run(max(args.conc), 1000, message, [nothing], {})
                print(f"{label} started by the driver: peak RSS "
                      f"{max(d.maxrss_kb for d in floor.deliveries) / 1024:.2f} MB, CPU "
                      f"{statistics.median(d.cpu_ms for d in floor.deliveries):.2f} ms")
            for net in args.net:
                delayer = None
                if net == "rtt":
                    delayer = nb.Delayer(args.rtt_ms / 2)
                connect, lo, hi = nb.measure_rtt(sinks["main"].port)
                print(f"\n## {NETS[net]}: TCP connect {connect:.1f} ms, SMTP NOOP round "
                      f"trip {lo:.2f}–{hi:.2f} ms (20 samples)")
                try:
                    for conc in args.conc:
                        for route in args.route:
                            dns_cpu0 = dns.cpu_ms() if dns else 0
                            results += scenario(net, conc, route, cands, args, message,
                                                driver, sinks)
                            if dns and route == "mx":
                                print(f"  (the DNS server's CPU over the scenario: "
                                      f"{(dns.cpu_ms() - dns_cpu0) / 1000:.1f} s)")
                finally:
                    if delayer:
                        print(f"  (delayer: {delayer.stop()})")
        finally:
            if dns:
                dns.stop()
            for sink in sinks.values():
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
    no_ops()
    nb.compile_helper("smtp_sink")
    nb.compile_helper("rtt_delayer", libs=("-lnetfilter_queue", "-lnfnetlink"))
    nb.reference()
    sys.exit(nb.in_namespace([sys.executable, str(Path(__file__).resolve()),
                              *sys.argv[1:]]))


if __name__ == "__main__":
    main()
