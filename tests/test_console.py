"""qconsole driven with Textual's Pilot, and snapshots of each view at 120x40."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from qconsole.app import QConsole
from qconsole.help_screen import HelpScreen
from qconsole.simulate_view import SimulateView
from tests.conftest import run_cli

SIZE = (120, 40)


def screen_text(app) -> str:
    """What the terminal shows, as text: every segment of the current screen as it
    would be written (control characters included, were any left)."""
    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)


async def _simulate(pilot: Pilot, sender: str, recipients: str, button: str = "#run",
                    ) -> None:
    await pilot.click("#sender")
    await pilot.press(*sender)
    await pilot.click("#recipients")
    await pilot.press(*recipients)
    await pilot.click(button)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def _case_routes_view_masks_passwords_until_reveal(home: Path) -> None:
    app = QConsole(home, demo=True)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one("#routes-table", DataTable)
        assert table.row_count == 5
        row = [str(c) for c in table.get_row_at(1)]
        assert row[0] == "route2" and row[6] == "••••••" and "123456" not in row
        await pilot.press("r")
        row = [str(c) for c in table.get_row_at(1)]
        assert row[6] == "123456"


async def _case_routemap_view_highlights_shadowed_and_unknown(make_home) -> None:
    home = make_home(routes="a;;;;\nb;;;;\n",
                     routemap="*;*;a\nx.org;*;b\ny.org;*;missing\n")
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        table = app.query_one("#routemap-table", DataTable)
        notes = [str(table.get_row_at(i)[4]) for i in range(table.row_count)]
        assert notes == ["", "never matches: line 1 first", "route not defined"]


async def _case_simulate_equals_the_cli(home: Path) -> None:
    app = QConsole(home, demo=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await _simulate(pilot, "someone@domaine1.com", "a@domaine2.com b@relay.test")
        shown = app.query_one(SimulateView).result
    cli = run_cli("--qmail-home", str(home), "simulate", "--json", "--no-dns",
                  "someone@domaine1.com", "a@domaine2.com", "b@relay.test")
    assert shown == json.loads(cli.stdout)


async def _case_simulate_refuses_a_recipient_without_domain(home: Path) -> None:
    app = QConsole(home, demo=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await _simulate(pilot, "a@b.org", "nodomain")
        assert app.query_one(SimulateView).result is None
        assert "has no domain" in str(app.query_one("#simulate-output").render())


async def _case_help_and_quit(home: Path) -> None:
    app = QConsole(home, demo=True, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        assert "read-only" in app.sub_title
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")
    assert app.return_code == 0


def test_routes_view_masks_passwords_until_reveal(demo_home: Path) -> None:
    asyncio.run(_case_routes_view_masks_passwords_until_reveal(demo_home))


def test_routemap_view_highlights_shadowed_and_unknown(make_home) -> None:
    asyncio.run(_case_routemap_view_highlights_shadowed_and_unknown(make_home))


def test_simulate_equals_the_cli(demo_home: Path) -> None:
    asyncio.run(_case_simulate_equals_the_cli(demo_home))


def test_simulate_refuses_a_recipient_without_domain(demo_home: Path) -> None:
    asyncio.run(_case_simulate_refuses_a_recipient_without_domain(demo_home))


def test_help_and_quit(demo_home: Path) -> None:
    asyncio.run(_case_help_and_quit(demo_home))


SNAPSHOT_LOG = Path("/tmp/qconsole-snapshot-log/current")  # the path shows on screen
T0 = 1_795_000_000  # 2026-11-18 11:06:40 UTC


def snapshot_log() -> Path:
    """A fixed log: deliveries of every kind (a failure after failed attempts, then its
    bounce), qmail-send's status lines, a garbage line, times in the past."""
    from tests.test_logs import OK_TEXT, delivery_lines, stamp, write

    SNAPSHOT_LOG.parent.mkdir(parents=True, exist_ok=True)
    SNAPSHOT_LOG.write_text("")
    fail = ("127.0.0.60 does not like recipient.\nRemote host said: 550 5.1.1 no such "
            "user\nGiving up on 127.0.0.60.\nFailed attempts: 127.0.0.50:2525 from "
            "127.0.0.1: cannot connect to 127.0.0.50:2525: Connection refused\n"
            "route=route5 local=127.0.0.1 remote=127.0.0.60:587 tls=none auth=none")
    defer = ("Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"
             "route=route4 local=127.0.0.4 remote=127.0.0.40:25 tls=none auth=none")
    for i in range(12):
        status, text = [("success", OK_TEXT), ("failure", fail), ("deferral", defer),
                        ("success", OK_TEXT)][i % 4]
        lines = delivery_lines(T0 + i * 240, i + 1, 5000 + i, f"user{i}@example{i % 3}.test",
                               status, text)
        lines.insert(3, f"{stamp(T0 + i * 240 + 1)} status: local 0/10 remote 1/20")
        if status == "failure":
            lines.insert(-1, f"{stamp(T0 + i * 240 + 5)} bounce msg {5000 + i} qp 42")
        write(SNAPSHOT_LOG, lines)
        if i == 5:
            write(SNAPSHOT_LOG, ["a garbage line that is not qmail-send's \x1b[31m[b]x[/b]"])
    return SNAPSHOT_LOG


@pytest.mark.parametrize("view", ["routes", "routemap", "simulate", "logs", "tcpto",
                                  "delivery"])
def test_snapshot(snap_compare, view: str, monkeypatch, demo_home: Path) -> None:
    import time

    from qremote.delivery.tcpto import Memory

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    home = demo_home
    Memory(home / "queue/lock/qremote-tcpto", lambda: T0 - 300).record(
        ("127.0.0.2", "127.0.0.20", 465))
    Memory(home / "queue/lock/qremote-tcpto", lambda: T0 - 120).record(
        ("*", "127.0.0.30", 587))

    async def before(pilot: Pilot) -> None:
        await pilot.press({"routes": "1", "routemap": "2", "simulate": "3", "logs": "4",
                           "tcpto": "5", "delivery": "4"}[view])
        if view == "simulate":
            await _simulate(pilot, "someone@domaine1.com", "a@domaine2.com b@relay.test")
        if view in ("logs", "delivery"):
            from qconsole.logs_view import LogsView

            logs = pilot.app.query_one(LogsView)
            while logs.index is None or not logs.index.history_done:
                await pilot.pause(0.05)
            logs.show_counters()
            await pilot.press("N")  # the newest failure or deferral
            if view == "delivery":
                await pilot.press("N", "enter")  # the failure before it: its story
            await pilot.pause()

    app = QConsole(home, demo=True, log=snapshot_log(), initial="routes",
                   clock=lambda: T0 + 3000)
    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=before)
    finally:
        monkeypatch.undo()
        time.tzset()
