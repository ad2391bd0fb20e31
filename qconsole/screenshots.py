"""``python -m qconsole.screenshots DIR``: an SVG of each view of the live demo
(``make screenshots``): routes, the route form and its diff, routemap, simulate,
logs (real deliveries by qmail-remote to the demo's loopback sink), a delivery's
whole story and the failover memory. No screenshot shows a password: the form and
the diff are of a route that has none."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from qconsole.app import QConsole
from qconsole.demo import make_demo_home
from qconsole.demo_live import LiveDemo
from qremote.delivery.tcpto import Memory

SIZE = (120, 40)


async def shoot(out: Path) -> list[Path]:
    """Save one SVG a view into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    home = make_demo_home()
    live = LiveDemo(home, interval=0.3).start()
    memory = Memory.for_home(home)
    memory.record(("127.0.0.2", "127.0.0.20", 465))
    memory.record(("127.0.0.4", "127.0.0.40", 25))
    deadline = time.monotonic() + 60
    while live.log.read_text().count("\ndelivery ") < 10 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    live.stop.set()
    app = QConsole(home, demo=True, log=live.log, initial="routes")
    written: list[Path] = []

    def save(name: str) -> None:
        written.append(Path(app.save_screenshot(f"{name}.svg", str(out))))

    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            save("routes")
            await pilot.press("down", "down", "e")  # route3: no password
            await pilot.pause()
            save("route-form")
            await pilot.press("escape", "escape")  # out of the field, then the form
            await pilot.press("2")
            await pilot.pause()
            save("routemap")
            # The diff of a routemap edit: a routes diff would show route2's password
            # in its context lines.
            await pilot.press("down", "down", "down", "e")
            app.screen.query_one("#field-route").value = "route3"
            await pilot.press("ctrl+s")
            await pilot.pause()
            save("rule-diff")
            await pilot.press("escape", "escape", "escape")  # the diff, then the form
            await pilot.press("3", *"someone@domaine1.com", "tab",
                              *"a@domaine2.com b@relay.test")
            await pilot.click("#probe")
            await app.workers.wait_for_complete()
            await pilot.pause()
            save("simulate")
            await pilot.press("4")
            await pilot.pause(1.0)
            app.query_one("LogsView").show_counters()
            await pilot.press("N")
            await pilot.pause()
            save("logs")
            await pilot.press("enter")
            await pilot.pause()
            save("delivery")
            await pilot.press("escape", "5")
            await pilot.pause()
            save("tcpto")
    finally:
        live.close()
    return written


if __name__ == "__main__":
    for path in asyncio.run(shoot(Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots"))):
        print(path)
