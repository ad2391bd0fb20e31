"""``python -m qconsole.screenshots DIR``: an SVG of each view of the demo (make screenshots)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from qconsole.app import QConsole
from qconsole.demo import make_demo_home

SIZE = (120, 40)


async def shoot(out: Path) -> list[Path]:
    """Save routes.svg, routemap.svg and simulate.svg into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    app = QConsole(make_demo_home(), demo=True)
    written: list[Path] = []
    async with app.run_test(size=SIZE) as pilot:
        for key, name in (("1", "routes"), ("2", "routemap"), ("3", "simulate")):
            await pilot.press(key)
            if name == "simulate":
                await pilot.click("#sender")
                await pilot.press(*"someone@domaine1.com")
                await pilot.click("#recipients")
                await pilot.press(*"a@domaine2.com b@relay.test")
                await pilot.click("#run")
                await app.workers.wait_for_complete()
            await pilot.pause()
            written.append(Path(app.save_screenshot(f"{name}.svg", str(out))))
    return written


if __name__ == "__main__":
    for path in asyncio.run(shoot(Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots"))):
        print(path)
