"""``python -m qconsole.screenshots DIR``: an SVG of each view of the live demo
(``make screenshots``): routes, the route form and its diff, routemap, simulate,
logs (real deliveries by qmail-remote to the demo's loopback sink), a delivery's
whole story, the failover memory and the worker (a real ``qremote worker`` for the
demo's home, run as the current user, which the demo's deliveries go through, and
stopped on the way out). No screenshot shows a password: the form and the diff are
of a route that has none.

Each step waits for what its key leads to (a screen, a view, a field with the focus)
and a screenshot is saved only once the console shows what its name says: when the
console changes, the script stops there and says what it waited for, instead of
saving the wrong screen.
"""

from __future__ import annotations

import asyncio
import html
import os
import pwd
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, TabbedContent

from qconsole.app import QConsole
from qconsole.delivery_screen import DeliveryScreen
from qconsole.demo import make_demo_home
from qconsole.demo_live import LiveDemo
from qconsole.diff_screen import DiffScreen
from qconsole.form_screen import FormScreen
from qconsole.keys import REPEAT_GUARD
from qconsole.logs_view import LogsView
from qconsole.simulate_view import SimulateView
from qconsole.worker_view import WorkerView
from qremote.delivery.tcpto import Memory

SIZE = (120, 40)
# Each screenshot, in the order taken, and text it must show: its view's or screen's
# title (or column headings) first, then something only that view shows.
SHOTS: dict[str, tuple[str, ...]] = {
    "routes": ("Local IPs", "control/routes: no findings"),
    "route-form": ("Edit route route3", "AUTH password"),
    "routemap": ("Sender domain", "control/routemap: no findings"),
    "rule-diff": ("Edit control/routemap line 5", "+*;relay.test;route3"),
    "simulate": ("Use DNS", "probe ok"),
    "logs": ("Recipient", "Last hour"),
    "delivery": ("of msg", "qmail-remote said"),
    "tcpto": ("Skipped for", "queue/lock/qremote-tcpto"),
    "worker": ("Client pid", "worker pid"),
}
WAIT = 30.0  # seconds a step may take before the script gives up


class ScreenshotError(Exception):
    """The console did not show what a screenshot is of."""


def svg_text(svg: str) -> str:
    """The text of a screenshot, one terminal row a line (Textual draws each run of
    one style as a ``<text>`` element at its row's ``y``, spaces as no-break ones)."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text [^>]*?x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>', svg):
        rows.setdefault(float(m[2]), []).append((float(m[1]),
                                                  html.unescape(m[3]).replace("\xa0", " ")))
    return "\n".join("".join(t for _x, t in sorted(rows[y])) for y in sorted(rows))


async def until(pilot: Pilot, ready: Callable[[], bool], what: str,
                timeout: float = WAIT) -> None:
    """Let the console run until ``ready()``; ScreenshotError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise ScreenshotError(f"screenshots: waited {timeout:.0f} s for {what}")
        await pilot.pause(0.05)


def logged(log: Path) -> int:
    """How many recipients' results (``delivery N: ...`` lines) the log holds."""
    return sum(1 for line in log.read_text().splitlines()
               if line.partition(" ")[2].startswith("delivery "))


class DemoWorker:
    """``qremote worker`` for the demo's home, as the current user (no privileges to
    drop, none to gain); its log goes nowhere, what it says when it cannot start into
    the temporary home, for the error."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DemoWorker:
        """Start it; return once it answers ``qremote status``."""
        from qremote.worker.protocol import default_socket
        from qremote.worker.status import WorkerUnavailable, query

        errors = self.home.parent / "worker.err"
        with open(errors, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "qremote.cli", "worker", "--qmail-home",
                 str(self.home), "--user", pwd.getpwuid(os.geteuid()).pw_name],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + WAIT
        while True:
            try:
                query(default_socket(self.home), timeout=1.0)
                return self
            except WorkerUnavailable:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    said = errors.read_text(errors="replace").strip()
                    raise ScreenshotError(f"screenshots: the demo's worker did not start: "
                                          f"{said or 'no answer'}") from None
                time.sleep(0.05)

    def close(self) -> None:
        """SIGTERM (it finishes what it holds), then wait for it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def shoot(out: Path, deliveries: int = 40, free_ports: bool = False) -> list[Path]:
    """Save one SVG a view into ``out`` once the live demo has logged ``deliveries``
    recipients' results; returns their paths. ``free_ports``: the demo's sinks on
    ports the system picks (tests; the routes then show those ports)."""
    out.mkdir(parents=True, exist_ok=True)
    home = make_demo_home()
    live = LiveDemo(home, interval=0.3, free_ports=free_ports, through_worker=True)
    worker = DemoWorker(home)
    try:
        live.start(deliveries=False)  # the control files it rewrites, then the worker
        worker.start()
        live.start_deliveries()
        return await _shoot(out, home, live, deliveries)
    finally:
        live.close()
        worker.close()
        shutil.rmtree(home.parent, ignore_errors=True)  # the temporary home


async def _shoot(out: Path, home: Path, live: LiveDemo, deliveries: int) -> list[Path]:
    memory = Memory.for_home(home)
    memory.record(("127.0.0.2", "127.0.0.20", 465))
    memory.record(("127.0.0.4", "127.0.0.40", 25))
    deadline = time.monotonic() + 120
    while logged(live.log) < deliveries:
        if time.monotonic() > deadline:
            raise ScreenshotError(f"screenshots: the demo logged fewer than {deliveries} "
                                  "deliveries in 120 s")
        await asyncio.sleep(0.2)
    live.stop.set()
    app = QConsole(home, demo=True, log=live.log, initial="routes")
    written: list[Path] = []

    def on_main(tab: str) -> Callable[[], bool]:
        return lambda: (len(app.screen_stack) == 1 and app.screen.is_mounted
                        and app.query_one(TabbedContent).active == tab)

    def on_top(kind: type) -> Callable[[], bool]:
        return lambda: isinstance(app.screen, kind) and app.screen.is_mounted

    async def save(name: str, ready: Callable[[], bool]) -> None:
        await until(pilot, ready, f"the screen of {name}.svg")
        await pilot.pause()  # drawn
        path = Path(app.save_screenshot(f"{name}.svg", str(out)))
        text = svg_text(path.read_text(encoding="utf-8"))
        missing = [s for s in SHOTS[name] if s not in text]
        if missing:
            raise ScreenshotError(f"screenshots: {path} does not show {missing[0]!r}")
        written.append(path)

    async with app.run_test(size=SIZE) as pilot:
        await save("routes", on_main("routes"))
        await pilot.press("down", "down", "e")  # route3: no password
        await save("route-form", on_top(FormScreen))
        await pilot.press("escape", "escape")  # out of the field, then the form
        await pilot.press("2")
        await save("routemap", on_main("routemap"))
        # The diff of a routemap edit: a routes diff would show route2's password
        # in its context lines.
        await pilot.press("down", "down", "down", "e")
        await until(pilot, on_top(FormScreen), "the routemap rule's form")
        app.screen.query_one("#field-route", Input).value = "route3"
        await pilot.press("ctrl+s")
        await save("rule-diff", on_top(DiffScreen))
        await pilot.press("escape")  # back from the diff: the form opens again, filled
        await until(pilot, on_top(FormScreen), "the form again after the diff")
        await pilot.pause(REPEAT_GUARD)  # an Escape sooner would be a double press
        await pilot.press("escape", "escape")  # out of the field, then the form
        await until(pilot, lambda: len(app.screen_stack) == 1, "the form to close")
        await pilot.press("3")  # the sender field has the focus
        await until(pilot, lambda: getattr(app.focused, "id", None) == "sender",
                    "the sender field")
        await pilot.press(*"someone@domaine1.com", "tab", *"a@domaine2.com b@relay.test")
        await pilot.click("#probe")
        view = app.query_one(SimulateView)
        await save("simulate", lambda: view.result is not None and not view.probing)
        await pilot.press("escape", "4")  # out of the field the click left, then Logs
        logs = app.query_one(LogsView)
        await until(pilot, lambda: logs.index is not None and logs.index.history_done
                    and len(logs.index) > 0, "the logs view's rows")
        logs.show_counters()
        await pilot.press("N")  # the last failure or deferral
        await save("logs", on_main("logs"))
        await pilot.press("enter")
        await save("delivery", on_top(DeliveryScreen))
        await pilot.press("escape")
        await until(pilot, lambda: len(app.screen_stack) == 1, "the delivery to close")
        await pilot.press("5")
        await save("tcpto", on_main("tcpto"))
        await pilot.press("6")
        view = app.query_one(WorkerView)
        await save("worker", lambda: on_main("worker")() and view.doc is not None
                   and view.doc.get("deliveries", 0) > 0)
    return written


if __name__ == "__main__":
    for path in asyncio.run(shoot(Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots"))):
        print(path)
