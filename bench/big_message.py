"""Big messages: qremote against qmail's own C qmail-remote (issue 8).

    .venv/bin/python bench/big_message.py [--size-mb 200] [--slow-mb 30]

1. A 200 MB message to a sink that reads as fast as it can: peak RSS (wait4) and time
   of each, side by side.
2. A 30 MB message to a server reading 1 MiB/s, with control/timeoutremote 10: qmail
   bounds each read and each write by timeoutremote, so a slow but steady reader is
   fine; a whole-body bound fails. The time and the result are printed for each; a
   failed delivery is reported as such (its letter and first line), never a crash.

Each delivery is started the way qmail-rspawn starts qmail-remote (stdin the message
file, stdout a pipe, stderr merged; ``bench/c/rspawn_driver.c``). The sinks are
``bench/c/smtp_sink.c`` on free ports of 127.0.0.1 (``-r`` for the slow reader). No
root needed; cc and make build the helpers and the reference (cached in
$QREMOTE_BENCH_BUILD, default /tmp/qremote-bench).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import netbench as nb

MB = 1 << 20
ARGS = ["x.org", "a@b.org", "y@x.org"]


def setup_candidates(base: Path, port: int, timeout: int | None) -> dict[str, tuple]:
    """name -> (argv, env, use_control or None) for the reference and qremote."""
    ref = nb.reference()
    tag = f"{port}-{timeout}"
    control = base / f"c-{tag}" / "control"
    control.mkdir(parents=True)
    (control / "me").write_text("bench.test\n")
    (control / "smtproutes").write_text(f":127.0.0.1:{port}\n")
    home = base / f"qremote-{tag}"
    (home / "control").mkdir(parents=True)
    (home / "control" / "me").write_text("bench.test\n")
    (home / "control" / "routes").write_text(f"r;127.0.0.2;127.0.0.1:{port};;\n")
    (home / "control" / "routemap").write_text("*;*;r\n")
    if timeout is not None:
        for c in (control, home / "control"):
            (c / "timeoutremote").write_text(f"{timeout}\n")
    env0 = {"PATH": "/usr/bin:/bin"}
    return {
        "C qmail-remote": ([str(ref.binary)], env0, lambda: ref.use_control(control)),
        "qremote": ([str(nb.VENV_PYTHON), "-I", "-m", "qremote.remote"],
                    {**env0, "QMAIL_HOME": str(home)}, None),
    }


def deliver(driver: nb.Driver, cand: tuple, message: Path) -> nb.Delivery:
    argv, env, use = cand
    if use:
        use()
    return driver.run(1, 1, message, [*argv, *ARGS], env).deliveries[0]


def outcome(d: nb.Delivery) -> str:
    """'K' or the failure's letter and first line, as an operator would read it."""
    first = d.report.split("|")
    text = next((p for p in first if p[:1] in ("K", "Z", "D")), d.report)
    line = text.split("\\n")[0]
    return "K" if d.letter == "K" and d.status == 0 else f"{d.letter} {line[:110]!r}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mb", type=int, default=200, help="the big message (MB)")
    p.add_argument("--slow-mb", type=int, default=30, help="the slow reader's message (MB)")
    p.add_argument("--rate", type=float, default=1.0, help="the slow reader's MiB/s")
    p.add_argument("--timeout", type=int, default=10, help="timeoutremote for the slow case")
    args = p.parse_args()
    nb.check_venv()
    driver = nb.Driver()
    fast = nb.Sink("127.0.0.1", 0)
    slow = nb.Sink("127.0.0.1", 0, rate=args.rate * MB)
    rows: list[tuple[str, str, str]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="qremote-bench-big-") as tmp:
            base = Path(tmp)
            big = nb.write_message(base / "big", args.size_mb * MB)
            cands = setup_candidates(base, fast.port, None)
            results = {}
            for name, cand in cands.items():
                nb.say(f"{name}: {args.size_mb} MB to a fast sink")
                results[name] = deliver(driver, cand, big)
            rows.append((f"{args.size_mb} MB message: peak RSS", *(
                f"{d.maxrss_kb / 1024:.1f} MB" for d in results.values())))
            rows.append((f"{args.size_mb} MB message: time (CPU)", *(
                f"{d.wall_ms / 1000:.2f} s ({d.cpu_ms / 1000:.2f} s)"
                for d in results.values())))
            rows.append((f"{args.size_mb} MB message: result",
                         *(outcome(d) for d in results.values())))
            big.unlink()

            small = nb.write_message(base / "slow", args.slow_mb * MB)
            cands = setup_candidates(base, slow.port, args.timeout)
            nb.say(f"both: {args.slow_mb} MB to a reader at {args.rate:g} MiB/s, "
                   f"timeoutremote {args.timeout} (at the same time, one connection each)")
            slow_results: dict[str, nb.Delivery] = {}
            # The reference's control is a link switched before each run: start it first.
            threads = []
            for name, cand in cands.items():
                def work(name=name, cand=cand) -> None:
                    slow_results[name] = deliver(nb.Driver(), cand, small)
                t = threading.Thread(target=work)
                t.start()
                threads.append(t)
            for t in threads:
                t.join()
            label = (f"{args.slow_mb} MB to a {args.rate:g} MiB/s reader, "
                     f"timeoutremote {args.timeout}")
            rows.append((label, *(
                f"{outcome(slow_results[n])} after {slow_results[n].wall_ms / 1000:.1f} s"
                for n in cands)))
    finally:
        fast.stop()
        slow.stop()
    names = list(cands)
    print(f"\n| case | {' | '.join(names)} |")
    print("| --- |" + " --- |" * len(names))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
