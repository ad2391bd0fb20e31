"""``simulate`` applies the failover memory as qmail-remote does, and agrees with a
real delivery: a skipped attempt shows as skipped, never as attempt 1; when every
attempt is marked, they are shown (and tried) oldest failure first."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from qremote.delivery.tcpto import Memory
from tests.conftest import run_cli
from tests.support.delivery import deliver, detail
from tests.support.smtpsink import Sink


@pytest.fixture
def two_sinks():
    sinks = [Sink().start(), Sink().start()]
    yield sinks
    for sink in sinks:
        sink.stop()


def _home(make_home, sinks: list[Sink]) -> Path:
    p1, p2 = (s.port for s in sinks)
    home = make_home(routes=f"r;;127.0.0.1:{p1}&127.0.0.1:{p2};;\n", routemap="*;*;r\n")
    (home / "queue" / "lock").mkdir(parents=True)
    return home


def _mark(home: Path, port: int, ago: float) -> float:
    when = time.time() - ago
    Memory(Memory.for_home(home).path, clock=lambda: when).record(("*", "127.0.0.1", port))
    return float(int(when))


def _simulate(home: Path, *extra: str) -> str:
    result = run_cli("simulate", *extra, "a@b.org", "y@x.org", home=home)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_skipped_remote_is_shown_skipped(make_home, two_sinks: list[Sink]) -> None:
    home = _home(make_home, two_sinks)
    p1, p2 = (s.port for s in two_sinks)
    when = _mark(home, p1, 42)
    text = _simulate(home)
    attempts = text.split("  attempts\n")[1].splitlines()
    assert re.fullmatch(rf"    -  from \(kernel\) to 127\.0\.0\.1:{p1}  127\.0\.0\.1  helo "
                        r"\S+  skipped: connect timed out 4[2-9] s ago", attempts[0])
    assert re.fullmatch(rf"    1\. from \(kernel\) to 127\.0\.0\.1:{p2}  127\.0\.0\.1  helo "
                        r"\S+", attempts[1])
    d = json.loads(_simulate(home, "--json"))["deliveries"][0]
    assert [(a["port"], a["skipped"], a["timed_out_at"]) for a in d["attempts"]] == [
        (p1, True, when), (p2, False, None)]
    assert d["notes"] == []
    # The delivery does the same: the first attempt not skipped decides.
    got = deliver(home, "x.org", "a@b.org", ["y@x.org"])
    assert got[-1].startswith("K") and detail(got[-1])["remote"] == f"127.0.0.1:{p2}"
    assert not two_sinks[0].received and len(two_sinks[1].received) == 1


def test_every_attempt_marked_oldest_first(make_home, two_sinks: list[Sink]) -> None:
    home = _home(make_home, two_sinks)
    p1, p2 = (s.port for s in two_sinks)
    when2 = _mark(home, p2, 300)  # older first: a record drops entries in its future
    when1 = _mark(home, p1, 42)
    text = _simulate(home)
    assert ("  note        every attempt is in the failover memory: qmail-remote tries "
            "them all anyway, oldest failure first\n") in text
    attempts = text.split("  attempts\n")[1].splitlines()
    assert re.fullmatch(rf"    1\. from \(kernel\) to 127\.0\.0\.1:{p2} .*\(connect timed "
                        r"out 30\d s ago\)", attempts[0])
    assert re.fullmatch(rf"    2\. from \(kernel\) to 127\.0\.0\.1:{p1} .*\(connect timed "
                        r"out 4\d s ago\)", attempts[1])
    d = json.loads(_simulate(home, "--json"))["deliveries"][0]
    assert [(a["port"], a["skipped"], a["timed_out_at"]) for a in d["attempts"]] == [
        (p2, False, when2), (p1, False, when1)]
    assert d["notes"] == ["every attempt is in the failover memory: qmail-remote tries "
                          "them all anyway, oldest failure first"]
    got = deliver(home, "x.org", "a@b.org", ["y@x.org"])
    assert got[-1].startswith("K") and detail(got[-1])["remote"] == f"127.0.0.1:{p2}"
    assert not two_sinks[0].received and len(two_sinks[1].received) == 1
