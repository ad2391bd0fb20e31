"""Parse and lookup cost of the control files at scale (issue: 100k rules, 10k routes).

Generates a qmail home with 100,000 routemap lines and 10,000 routes, and the seed's
4-line case, then prints, for each, the median time to read and parse every control
file (what qmail-remote does per delivery) and the median time of one rule lookup.
Both cases run in this one process, interleaved, so machine noise hits them alike.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qremote.control.cache import fingerprint, write_cache
from qremote.control.config import load_config
from qremote.planning.planner import select

RULES, ROUTES, ROUNDS = 100_000, 10_000, 7


def write_big(home: Path) -> list[tuple[str, str]]:
    """Write the big home; return sample (sender, recipient) pairs to look up."""
    rng = random.Random(1)
    control = home / "control"
    control.mkdir(parents=True)
    (control / "me").write_text("relay.example.org\n")
    with open(control / "routes", "w") as fh:
        fh.write("# generated\n")
        for i in range(ROUTES):
            a, b = divmod(i, 250)
            fh.write(f"route{i};10.{a}.{b}.1&10.{a}.{b}.2;mx&relay{i}.example.net:587;;\n")
    samples: list[tuple[str, str]] = []
    with open(control / "routemap", "w") as fh:
        for i in range(RULES):
            sender = f"sender{i}.example.com" if i % 3 else "*"
            rcpt = f"dest{i}.example.org" if i % 2 else "*"
            fh.write(f"{sender};{rcpt};route{rng.randrange(ROUTES)}\n")
            if i % 997 == 0:
                samples.append((sender.replace("*", "any.example"),
                                rcpt.replace("*", "any.example")))
        fh.write("*;*;route0\n")
    samples.append(("nomatch.example", "nomatch.example"))
    return samples


def write_small(home: Path) -> list[tuple[str, str]]:
    control = home / "control"
    control.mkdir(parents=True)
    (control / "me").write_text("relay.example.org\n")
    (control / "routes").write_text("route1;;;;\nroute2;1.1.1.1;2.2.2.2:465;admin;123456\n"
                                    "route3;1.1.1.1;mx&3.3.3.3:587;;\nroute4;1.1.1.1|2.2.2.2;;;\n")
    (control / "routemap").write_text("domaine1.com;*;route1\n*;domaine2.com;route2\n"
                                      "domaine1.com;domaine2.com;route3\n*;*;route4\n")
    return [("domaine1.com", "x.org"), ("x.org", "domaine2.com"), ("a.org", "b.org")]


def time_parse(home: Path, use_cache: bool = False) -> float:
    start = time.perf_counter()
    config = load_config(home, use_cache=use_cache)
    elapsed = time.perf_counter() - start
    assert not config.errors, config.errors[:3]
    return elapsed


def time_lookup(home: Path, samples: list[tuple[str, str]]) -> float:
    config = load_config(home)
    n = 20_000
    pairs = [samples[i % len(samples)] for i in range(n)]
    start = time.perf_counter()
    for sender, rcpt in pairs:
        select(config, rcpt, "user@" + sender)
    return (time.perf_counter() - start) / n


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp, "big"), Path(tmp, "small")
        big_samples, small_samples = write_big(big), write_small(small)
        for home in (big, small):
            config = load_config(home)
            write_cache(home, config.routes, config.routemap, fingerprint(home / "control"))
        parse: dict[str, list[float]] = {"big": [], "small": []}
        cached: dict[str, list[float]] = {"big": [], "small": []}
        look: dict[str, list[float]] = {"big": [], "small": []}
        for _ in range(ROUNDS):
            for name, home, samples in (("small", small, small_samples),
                                        ("big", big, big_samples)):
                parse[name].append(time_parse(home))
                cached[name].append(time_parse(home, use_cache=True))
                look[name].append(time_lookup(home, samples))
        for name, label in (("small", "4 rules, 4 routes"),
                            ("big", f"{RULES:,} rules, {ROUTES:,} routes")):
            p, lk = statistics.median(parse[name]), statistics.median(look[name])
            c = statistics.median(cached[name])
            print(f"{label:>28}: parse {p * 1000:7.1f} ms   from routes.cache "
                  f"{c * 1000:6.1f} ms   lookup {lk * 1e6:5.2f} µs")
        ratio = statistics.median(look["big"]) / statistics.median(look["small"])
        print(f"lookup ratio big/small: {ratio:.2f} (1.0 = independent of size)")
        print("targets: parse < 300 ms, lookup < 50 µs; qmail-remote loads routes.cache "
              "when fresh (written by qremote check)")


if __name__ == "__main__":
    main()
