"""The logs view at scale: a 1 GB qmail-send log (about 10 million lines).

Generates the log once (``BENCH_LOG`` path, ``BENCH_LOG_MB`` size, default 1024; with
``--prefix`` another line prefix than multilog's, in a file of its own), then prints:
- time to the newest page (open, index backwards until a page of rows, read and
  join the rows), against a baseline in the same process: reading the last 1 MB
  and splitting it into lines, the least any viewer must do;
- filters over the whole history (as the view's worker searches: the raw bytes in
  large blocks, only the matching rows parsed, blocks analyzed by helper processes
  when there are CPUs for them): the time to the first match and to the end, against
  the time to read the file once (the target is 5 s or less), and the CPU time spent
  by this process and by the helpers;
- the whole history indexed (as the worker thread does), its time and the peak
  memory of the process (the target is under 300 MB);
- following: 5,000 lines a second appended for a few seconds by a writer thread,
  indexed every 0.25 s as the view does; the CPU that costs, and the lines a
  second it could keep up with.

``--busy PATH`` also times filters on another log (a file or a multilog directory),
e.g. one shaped like a busy real qmail's, with messages retried for days (``--busy-filter``
says which, by default ``from:news@shop.example``); ``--filters-only`` prints the
filters alone (``--filter`` picks some of them).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qconsole import logworkers  # noqa: E402
from qconsole.logformat import logsafe, tai64n_label  # noqa: E402
from qconsole.logindex import LogIndex  # noqa: E402
from qconsole.logquery import parse_query  # noqa: E402
from qconsole.logsearch import BLOCK, Search  # noqa: E402
from qconsole.logsource import LogSource  # noqa: E402

LOG = Path(os.environ.get("BENCH_LOG", "/tmp/qremote-bench-log/current"))
# The line prefixes qconsole.logformat reads: multilog's TAI64N label, splogger's (syslog
# with splogger's own epoch stamp), syslog's with a pid, an ISO 8601 stamp.
PREFIXES = ("multilog", "splogger", "syslog", "iso")
PREFIX = "multilog"
SIZE_MB = int(os.environ.get("BENCH_LOG_MB", "1024"))
PAGE = 50
FOLLOW_RATE = 5000
FOLLOW_SECONDS = 4
OK = logsafe("127.0.0.30 accepted message.\nRemote host said: 250 2.0.0 ok queued as 1234\n"
             "route=route3 local=127.0.0.3 remote=127.0.0.30:587 tls=TLSv1.3 auth=none")
DEFER = logsafe("Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"
                "route=route4 local=127.0.0.4 remote=127.0.0.40:25 tls=none auth=none")


def prefix(t: float) -> str:
    """The prefix of a line logged at ``t`` (without its trailing space)."""
    if PREFIX == "splogger":
        return time.strftime("%b %e %H:%M:%S mail qmail: ", time.localtime(t)) + f"{t:.6f}"
    if PREFIX == "syslog":
        return time.strftime("%b %e %H:%M:%S mail qmail-send[2741]:", time.localtime(t))
    if PREFIX == "iso":
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + \
            f".{int(t % 1 * 1e6):06d}+00:00 mail qmail:"
    return tai64n_label(t)


def message_lines(t: float, msg: int) -> str:
    """One message with two deliveries: 8 lines, about 900 bytes."""
    s = prefix(t)
    n1, n2 = msg % 50 + 1, msg % 50 + 51
    status = "deferral" if msg % 7 == 0 else "success"
    return (f"{s} new msg {msg}\n"
            f"{s} info msg {msg}: bytes {2000 + msg % 5000} from <news@shop{msg % 97}.test> "
            f"qp {msg % 30000} uid 1000\n"
            f"{s} starting delivery {n1}: msg {msg} to remote user{msg}@domain{msg % 89}.test\n"
            f"{s} starting delivery {n2}: msg {msg} to remote other{msg}@relay{msg % 13}.test\n"
            f"{s} status: local 0/10 remote 2/20\n"
            f"{s} delivery {n1}: success: {OK}\n"
            f"{s} delivery {n2}: {status}: {DEFER if status == 'deferral' else OK}\n"
            f"{s} end msg {msg}\n")


def generate(path: Path, size: int) -> None:
    """Write the log if it is not there yet (the newest hour is recent)."""
    if path.exists() and path.stat().st_size >= size * 0.99:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.time() - 30 * 86400
    per = len(message_lines(start, 10**6).encode())
    count = size // per + 1
    step = (time.time() - start) / count
    with open(path, "w", encoding="ascii") as fh:
        buf = []
        for i in range(count):
            buf.append(message_lines(start + i * step, 10**6 + i))
            if len(buf) == 5000:
                fh.write("".join(buf))
                buf.clear()
        fh.write("".join(buf))


def newest_page(path: Path) -> float:
    """Seconds until a page of the newest rows is read and joined."""
    t = time.perf_counter()
    index = LogIndex(LogSource(path))
    scan = index.scan_history()  # as the view does: a first page, then the rest
    next(scan)
    rows = [index.row(len(index) - 1 - i) for i in range(PAGE)]
    assert all(r.recipient for r in rows)
    scan.close()
    return time.perf_counter() - t


def baseline(path: Path) -> float:
    """Seconds to read the last 1 MB and split it into lines."""
    t = time.perf_counter()
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - (1 << 20)))
        lines = fh.read().split(b"\n")
    assert len(lines) > PAGE
    return time.perf_counter() - t


# Filters an operator types: a rare address, a domain, a route, the deferrals, a
# sender, one message, a regex, an exclusion, a word in most rows and its exclusion,
# a word in every info line (the hardest: every row joined to its message), a word in
# every start line and every detail line.
FILTERS = ("user1234567@", "to:relay3.test", "route:route4", "result:deferral",
           "from:news@shop5.test", "msg:1500000", "/user12345[0-9]7@/",
           "-route:route3 -result:deferral", "mailbox full", "success", "-success",
           "shop", "remote")


def read_once(path: Path) -> float:
    """Seconds to read the whole file once, in the search's block size."""
    t = time.perf_counter()
    with open(path, "rb") as fh:
        while fh.read(BLOCK):
            pass
    return time.perf_counter() - t


def search(path: Path, text: str) -> tuple[int, float | None, float]:
    """(matching rows, seconds to the first match, seconds to the end) of a filter over
    the whole history, blocks merged as the view merges them."""
    index = LogIndex(LogSource(path))
    s = Search(index, parse_query(text))
    t = time.perf_counter()
    first = None
    for rows in s.run(lambda: False):
        s.merge(rows)
        if first is None and len(s):
            first = time.perf_counter() - t
    total = time.perf_counter() - t
    if len(s):
        s.row(len(s) - 1)  # the newest match, joined as the table shows it
    index.source.close()
    return len(s), first, total


def follow(path: Path) -> tuple[int, float, float]:
    """(rows indexed, CPU seconds spent indexing, wall seconds) while a writer
    appends FOLLOW_RATE lines a second."""
    index = LogIndex(LogSource(path))
    done = threading.Event()

    def writer() -> None:
        msg = 9 * 10**8
        with open(path, "a", encoding="ascii") as fh:
            for _ in range(FOLLOW_SECONDS * 10):
                tick = time.monotonic()
                for _ in range(FOLLOW_RATE // 10 // 8):
                    fh.write(message_lines(time.time(), msg))
                    msg += 1
                fh.flush()
                time.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
        done.set()

    threading.Thread(target=writer).start()
    rows, cpu = 0, 0.0
    t0 = time.perf_counter()
    while True:
        finished = done.is_set()
        c = time.thread_time()
        rows += index.follow()
        cpu += time.thread_time() - c
        if finished:
            break
        time.sleep(0.25)
    return rows, cpu, time.perf_counter() - t0


def print_search(path: Path, text: str, once: float) -> None:
    """One filter's line: rows, first match, whole history, CPU."""
    cpu, helpers = time.process_time(), logworkers.POOL.cpu_seconds()
    rows, first, total = search(path, text)
    cpu, helpers = time.process_time() - cpu, logworkers.POOL.cpu_seconds() - helpers
    first_text = "-" if first is None else f"{first:.2f} s"
    print(f"  {text!r:34} {rows:>9,} rows  first {first_text:>7}  all {total:5.2f} s"
          f"  ratio {total / once:5.1f}  CPU {cpu:4.1f} s + helpers {helpers:4.1f} s")


def print_peak() -> None:
    """The peak memory of this process and of the helpers."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    helpers_peak = logworkers.POOL.peak_rss() / 2**20
    print(f"  peak RSS so far {peak:.0f} MB, helpers {helpers_peak:.0f} MB: "
          f"{peak + helpers_peak:.0f} MB in all")


def read_all(path: Path) -> float:
    """Seconds to read a log (a file or a multilog directory) once."""
    return sum(read_once(f) for f in (sorted(path.iterdir()) if path.is_dir() else [path]))


def main() -> None:
    global LOG, PREFIX
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--prefix", choices=PREFIXES, default="multilog",
                        help="the log's line prefix (default multilog; another goes to "
                             "a log of its own next to BENCH_LOG's directory)")
    parser.add_argument("--filter", action="append", dest="filters", metavar="TEXT",
                        help="time this filter (repeat it; default: the usual set)")
    parser.add_argument("--filters-only", action="store_true",
                        help="only the filters: no newest page, history index or follow")
    parser.add_argument("--busy", type=Path, help="another log to time filters on")
    parser.add_argument("--busy-filter", action="append", default=[], metavar="TEXT",
                        help="the filters to time on it (default from:news@shop.example)")
    args = parser.parse_args()
    PREFIX = args.prefix
    if PREFIX != "multilog":
        LOG = LOG.parent.with_name(f"{LOG.parent.name}-{PREFIX}") / LOG.name
    filters = tuple(args.filters or FILTERS)
    size = SIZE_MB << 20
    t = time.perf_counter()
    generate(LOG, size)
    print(f"log: {LOG} ({LOG.stat().st_size / 2**20:.0f} MB; ready in "
          f"{time.perf_counter() - t:.1f} s)")
    if not args.filters_only:
        for _ in range(2):  # warm the page cache for both
            baseline(LOG)
            newest_page(LOG)
        base = min(baseline(LOG) for _ in range(5))
        page = min(newest_page(LOG) for _ in range(5))
        print(f"newest page of {PAGE} rows: {page * 1000:.1f} ms (target < 1000 ms); "
              f"baseline read+split of the last 1 MB: {base * 1000:.1f} ms; "
              f"ratio {page / base:.1f}")
    once = min(read_once(LOG) for _ in range(3))
    print(f"filters over the whole history (read once: {once:.2f} s):")
    print(f"  helper processes: {logworkers.helpers_wanted()}")
    for text in filters:
        print_search(LOG, text, once)
    if args.busy is not None:
        busy(args.busy, args.busy_filter)
    print_peak()
    if args.filters_only:
        return
    t = time.perf_counter()
    index = LogIndex(LogSource(LOG))
    for _ in index.scan_history():
        pass
    whole = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"whole history: {len(index):,} rows indexed in {whole:.1f} s (background); "
          f"peak RSS {peak:.0f} MB (target < 300 MB)")
    rows, cpu, wall = follow(LOG)
    lines = rows * 4  # 8 lines a message, 2 rows
    print(f"follow: {lines:,} lines appended at {FOLLOW_RATE}/s over {wall:.1f} s, "
          f"all {rows:,} rows indexed; indexing CPU {cpu:.2f} s, i.e. capacity "
          f"{lines / max(cpu, 1e-9):,.0f} lines/s (target 5,000)")


def busy(path: Path, filters: list[str]) -> None:
    """Filters over another log's whole history."""
    once = min(read_all(path) for _ in range(3))
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    mb = sum(f.stat().st_size for f in files) / 2**20
    print(f"filters on {path} ({mb:.0f} MB; read once: {once:.2f} s):")
    for text in filters or ["from:news@shop.example"]:
        print_search(path, text, once)


if __name__ == "__main__":
    main()
