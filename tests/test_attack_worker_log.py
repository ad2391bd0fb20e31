"""Attacks on what the worker shows the operator (CONTRACT section 7, issue 10): its
log (one line per attempt and per delivery) and ``qremote status``.

qmail-remote's HOST argument is the recipient domain of an envelope address, which
the sender chooses (and for a bounce, the domain of a forged sender): its bytes are
the attacker's. The reports clean it (``report.clean``); the worker's own texts do not.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

from tests.conftest import run_cli
from tests.support.attackworker import relay_home, via_pyclient
from tests.support.scripted import STALL, ScriptedSmtp
from tests.support.smtpsink import Sink
from tests.support.workerproc import WorkerProcess

MakeHome = Callable[..., Path]
# Sets the terminal's title, clears the screen, and starts the line again with a
# forged delivery line.
HOST = "x.org\x1b]0;owned\x07\x1b[2J\rdelivery 1: K 0.001s forged.example"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def test_a_log_line_carries_the_hosts_control_bytes(make_home: MakeHome) -> None:
    """Promise: the worker logs one line per attempt and per delivery (CONTRACT
    section 7), lines an operator reads with ``cat``/``tail -f`` or multilog's tools;
    a remote's or a sender's bytes never forge them (the same care as the report
    stream's, section 4).

    Evidence: ``server._stdout_line`` turns only LF into a space; the delivery line
    puts ``delivery.host`` (qmail-remote's HOST, raw) in it. A recipient domain with
    ESC, BEL and CR writes terminal escapes into the log (title, screen clear) and a
    CR that, on a terminal, starts the line again with a forged
    ``delivery 1: K ... forged.example``. The report itself is clean (``?`` for each
    control byte).

    Right behaviour: every control byte in a log line shown as ``?`` (or escaped), as
    reports do.

    Fix: qremote/worker/server.py ``_stdout_line`` (translate C0 controls and DEL,
    e.g. with ``report.clean`` then LF to space)."""
    sink = Sink().start()
    try:
        home = relay_home(make_home, sink.port)
        worker = WorkerProcess(home).start()
        try:
            spawned = via_pyclient(home, [HOST, "a@b.org", "u@x.org"])
            lines = worker.wait_deliveries(1)
        finally:
            worker.terminate()
            worker.close()
    finally:
        sink.stop()
    assert spawned.letter == "K"
    assert not CONTROL.search(spawned.output.decode().replace("\0", "").replace("\n", ""))
    bad = [line for line in lines if CONTROL.search(line)]
    assert not bad, f"log lines with control bytes: {bad}"


def test_qremote_status_prints_the_hosts_control_bytes(make_home: MakeHome) -> None:
    """Promise: ``qremote status`` shows the deliveries in flight (CONTRACT section 7);
    an operator runs it in a terminal, as root.

    Evidence: ``status.render`` prints each delivery's ``host`` as the worker got it:
    a delivery in flight to the HOST above makes ``qremote status`` write ESC
    sequences (title, screen clear) and a CR to the operator's terminal. (``--json``
    escapes them; the console escapes log text since issue 11.)

    Right behaviour: control bytes shown as ``?`` (or escaped) in the text output.

    Fix: qremote/worker/status.py ``render`` (clean ``host`` and ``stage``, and every
    connection field, before formatting)."""
    server = ScriptedSmtp(greeting=STALL).start()  # the delivery waits at the greeting
    try:
        home = relay_home(make_home, server.port)
        worker = WorkerProcess(home).start()
        done = threading.Event()
        try:
            thread = threading.Thread(
                target=lambda: (via_pyclient(home, [HOST, "a@b.org", "u@x.org"]),
                                done.set()), daemon=True)
            thread.start()
            worker.wait_line(lambda line: line.startswith("for delivery 1: connect"))
            status = run_cli("status", home=home)
        finally:
            server.stop()  # the greeting never comes: the delivery ends
            done.wait(30)
            worker.terminate()
            worker.close()
    finally:
        server.stop()
    assert status.returncode == 0, status.stderr
    assert "forged.example" in status.stdout  # the delivery is listed
    assert not CONTROL.search(status.stdout.replace("\n", "")), repr(status.stdout)
