"""``make screenshots`` (qconsole.screenshots) drives the console through every view
the README shows; when the console's keys or screens change, it must fail here, not
silently save the wrong screen or none at all."""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path

from qconsole.demo import SAMPLE
from qconsole.screenshots import SHOTS, shoot
from qremote.control.config import load_config

README = Path(__file__).resolve().parent.parent / "README.md"


def rows(svg: str) -> list[str]:
    """The screenshot's terminal rows as text (each ``<text>`` run placed by its y)."""
    by_y: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text [^>]*?x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>', svg):
        by_y.setdefault(float(m[2]), []).append(
            (float(m[1]), html.unescape(m[3]).replace("\xa0", " ")))
    return ["".join(t for _x, t in sorted(by_y[y])) for y in sorted(by_y)]


def test_every_screenshot_is_saved_and_shows_its_view(tmp_path: Path) -> None:
    # Few deliveries (the first failure is the 4th) and the sinks on free ports: a
    # demo another test or helper runs cannot answer in their place.
    written = asyncio.run(shoot(tmp_path, deliveries=4, free_ports=True))
    names = [p.stem for p in written]
    assert names == list(SHOTS)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.svg" for n in SHOTS)
    # The README shows each of them, from screenshots/.
    shown = re.findall(r"\(screenshots/([\w-]+)\.svg\)", README.read_text())
    assert sorted(shown) == sorted(SHOTS)
    texts = {p.stem: "\n".join(rows(p.read_text(encoding="utf-8"))) for p in written}
    titles = {  # a view's title or column headings, a screen's title
        "routes": r" Name +Local IPs +Mode +Remotes",
        "route-form": r"Edit route route3",
        "routemap": r" Line +Sender domain +Recipient domain +Route",
        "rule-diff": r"Edit control/routemap line 5",
        "simulate": r"domaine2\.com <- someone@domaine1\.com",
        "logs": r"Time +Recipient +Result +Route",
        "delivery": r"Delivery \d+ of msg \d+: (failure|deferral)",  # where N led
        "tcpto": r"Local IP +Remote address +Port +Timed out +Skipped for",
        "worker": r"# +Stage +Age +Host +Recipients +Client pid",
    }
    under = {"route-form": "routes", "rule-diff": "routemap"}  # a modal over its view
    for name, title in titles.items():
        shown = {n for n in texts if re.search(title, texts[n])}
        expected = {name} | {modal for modal, view in under.items() if view == name}
        assert shown == expected, f"{title!r} shown in {sorted(shown)}, not {name}.svg"
    assert "probe ok" in texts["simulate"]
    # The demo's deliveries went through a real worker, stopped since.
    assert re.search(r"deliveries [1-9]\d* \(K \d+, Z \d+, D \d+\)", texts["worker"])


def test_no_screenshot_shows_a_password(tmp_path: Path) -> None:
    """Issue 9: the committed screenshots hold none of the demo routes' passwords."""
    passwords = [r.password for r in load_config(SAMPLE).routes.routes.values()
                 if r.password]
    assert passwords  # the demo has a route with AUTH: the check means something
    committed = sorted((README.parent / "screenshots").glob("*.svg"))
    assert len(committed) == len(SHOTS)
    for svg in committed:
        raw = svg.read_text(encoding="utf-8")
        text = "\n".join(rows(raw))
        for password in passwords:
            assert password not in raw and password not in text, svg.name
