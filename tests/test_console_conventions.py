"""Operator conventions: table keys, the filter language, dates, theme colours, help
at 80x24, 80 columns, no terminal, --log without a qmail home, --demo's clean-up."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from textual.widgets import DataTable

from qconsole import app as app_module
from qconsole import theme
from qconsole.app import QConsole
from qconsole.help_screen import HelpScreen
from qconsole.log_table import LogTable
from qconsole.logs_view import LogsView
from tests.test_console import screen_text
from tests.test_console_edit import _home
from tests.test_console_story import story_log
from tests.test_logs import OK_TEXT, delivery_lines, write

SIZE = (120, 40)


async def _ready(pilot, app: QConsole) -> LogTable:
    view = app.query_one(LogsView)
    while view.index is None or not view.index.history_done:
        await pilot.pause(0.05)
    await pilot.pause()
    return app.query_one(LogTable)


async def _case_table_keys(home: Path, log: Path) -> None:
    app = QConsole(home, log=log, initial="routes")
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one("#routes-table", DataTable)
        await pilot.press("G")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1
        await pilot.press("g")
        assert table.cursor_row == 0
        await pilot.press("j", "end")
        assert table.cursor_row == 2
        await pilot.press("home")
        assert table.cursor_row == 0
        await pilot.press("4")
        logs = await _ready(pilot, app)
        await pilot.press("g")
        assert logs.cursor == 0
        await pilot.press("j", "j")
        assert logs.cursor == 2
        await pilot.press("G")
        assert logs.cursor == len(logs.model) - 1
        await pilot.press("home")
        assert logs.cursor == 0


def test_home_end_g_and_j_k_in_every_table(make_home, tmp_path: Path) -> None:
    log = tmp_path / "current"
    story_log(log, time.time())
    asyncio.run(_case_table_keys(_home(make_home), log))


async def _case_filter_with_fields(home: Path, log: Path) -> None:
    app = QConsole(home, log=log)
    async with app.run_test(size=SIZE) as pilot:
        table = await _ready(pilot, app)
        view = app.query_one(LogsView)

        async def shown(query: str) -> list[str]:
            await pilot.press("slash", "ctrl+u", *query, "enter")
            while view.filtered is None or not view.filtered.complete:
                await pilot.pause(0.05)
            return [table.model.row(i).recipient for i in range(len(table.model))]

        assert await shown("route:route2") == ["anne@domaine2.com"]
        assert await shown("-route:route2 result:success") == [
            "bob@relay.test", "c@d.org", "e@here.org"]
        assert await shown("ip:127.0.0.* to:relay.test") == ["bob@relay.test"]
        assert await shown("/ANNE|bob@/") == ["bob@relay.test"]  # upper case: exact case
        assert await shown("/anne|bob@/") == ["anne@domaine2.com", "bob@relay.test"]
        assert await shown('"no such user" from:shop.test') == ["anne@domaine2.com"]
        assert await shown("result:bounce") == ["shop@shop.test"]
        await pilot.press("slash", "ctrl+u", *"result:nothing")
        assert "result:nothing: write one of" in str(app.query_one("#log-status").render())
        await pilot.press("escape")
        assert view.filtered is None and len(table.model) == 5


def test_a_filter_with_fields_regex_and_exclusion(tmp_path: Path, demo_home: Path,
                                                   ) -> None:
    log = tmp_path / "current"
    story_log(log, time.time())
    asyncio.run(_case_filter_with_fields(demo_home, log))


async def _case_dates_when_rows_span_days(home: Path, log: Path) -> None:
    app = QConsole(home, log=log)
    async with app.run_test(size=(100, 30)) as pilot:
        table = await _ready(pilot, app)
        assert table.dated
        shown = screen_text(app)
        assert "11-18 11:06:43" in shown and "11-20 11:06:43" in shown


def test_dates_show_in_the_time_column_when_rows_span_days(tmp_path: Path, monkeypatch,
                                                            demo_home: Path) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        log = tmp_path / "current"
        t0 = 1_795_000_000  # 2026-11-18 11:06:40 UTC
        write(log, delivery_lines(t0, 1, 1, "a@x.org", "success", OK_TEXT))
        write(log, delivery_lines(t0 + 2 * 86400, 2, 2, "b@x.org", "success", OK_TEXT))
        asyncio.run(_case_dates_when_rows_span_days(demo_home, log))
    finally:
        monkeypatch.undo()
        time.tzset()


async def _case_theme_colours(home: Path, log: Path) -> None:
    app = QConsole(home, log=log, theme_name="textual-light")
    async with app.run_test(size=SIZE) as pilot:
        table = await _ready(pilot, app)
        light = theme.style(app, "failure").color
        assert light is not None
        failure_row = next(i for i in range(len(table.model))
                           if table.model.row(i).status == "failure")
        y = failure_row - table.scroll_offset.y
        styles = {seg.style.color for seg in table.render_line(y) if seg.style}
        assert light in styles  # the theme's text-error, not a fixed red
        app.theme = "textual-dark"
        await pilot.pause()
        assert theme.style(app, "failure").color != light


def test_colours_come_from_the_theme(tmp_path: Path, demo_home: Path) -> None:
    log = tmp_path / "current"
    story_log(log, time.time())
    asyncio.run(_case_theme_colours(demo_home, log))


async def _case_help_at_80x24(home: Path) -> None:
    app = QConsole(home, demo=True)
    async with app.run_test(size=(80, 24)) as pilot:
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert "Help" in titles
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = screen_text(app)
        for said in ("Everywhere", "Routes", "Routemap", "Simulate", "Logs", "Delivery",
                     "Failover", "escape, ? or q closes this help."):
            assert said in shown, said
        await pilot.press("escape")
        await pilot.press("ctrl+p", *"Help")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, HelpScreen)


def test_help_reads_at_80x24_and_is_in_the_palette(demo_home: Path) -> None:
    asyncio.run(_case_help_at_80x24(demo_home))


async def _case_80_columns(home: Path, log: Path) -> None:
    app = QConsole(home, demo=True, log=log, initial="routes")
    async with app.run_test(size=(80, 24)) as pilot:
        shown = screen_text(app)
        assert "AUTH" in shown and "TLS" in shown and "admin ••••••" in shown
        await pilot.press("4")
        await _ready(pilot, app)
        await pilot.press("g")
        shown = screen_text(app)  # the selected row's TLS and AUTH, under the table
        assert "TLS TLSv1.3 · AUTH PLAIN" in shown


def test_usable_at_80_columns(tmp_path: Path, demo_home: Path) -> None:
    log = tmp_path / "current"
    story_log(log, time.time())
    asyncio.run(_case_80_columns(demo_home, log))


def test_without_a_terminal_it_exits_at_once() -> None:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "qconsole.app", "--demo"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and "needs a terminal" in done.stderr
    assert time.monotonic() - started < 10


def _as_if_on_a_terminal(monkeypatch, runs: list) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(QConsole, "run", lambda self: runs.append(self))


def test_log_works_without_a_qmail_home(tmp_path: Path, monkeypatch) -> None:
    log = tmp_path / "current"
    story_log(log, time.time())
    runs: list[QConsole] = []
    _as_if_on_a_terminal(monkeypatch, runs)
    assert app_module.main(["--qmail-home", str(tmp_path / "none"),
                            "--log", str(log)]) == 0
    app = runs[0]
    assert app.read_only and app.initial == "logs"

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            table = await _ready(pilot, app)
            assert len(table.model) == 5
            assert "No qmail home at" in screen_text(app)

    monkeypatch.undo()
    asyncio.run(run())


def test_demo_cleans_up_its_temporary_home(monkeypatch) -> None:
    runs: list[QConsole] = []
    _as_if_on_a_terminal(monkeypatch, runs)
    assert app_module.main(["--demo"]) == 0
    home = runs[0].home
    assert not home.exists() and not home.parent.exists()
