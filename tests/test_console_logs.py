"""The logs and failover-memory views, driven with Pilot."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from qconsole.app import QConsole
from qconsole.log_table import LogTable
from qconsole.logs_view import LogsView
from qremote.delivery.tcpto import Memory
from tests.conftest import run_cli
from tests.test_logs import OK_TEXT, delivery_lines, write

SIZE = (120, 40)


async def _wait(pilot, predicate, seconds: float = 10.0) -> None:
    """Let the app run until ``predicate()`` holds (the follow timer is 0.25 s)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the view"
        await pilot.pause(0.05)


async def _case_follow_rotation_filter_and_jumps(home: Path, log: Path) -> None:
    app = QConsole(home, log=log)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogsView)
        table = app.query_one(LogTable)
        await _wait(pilot, lambda: view.index is not None and view.index.history_done)
        assert app.query_one("TabbedContent").active == "logs"
        assert len(table.model) == 2 and table.cursor == 1
        await pilot.press("slash", *"y.org")
        await _wait(pilot, lambda: view.filtered is not None and view.filtered.complete
                    and len(table.model) == 1)
        # Rotation while filtering: the new current holds two matches and one other.
        os.rename(log, log.with_name("@400000006b000000000000cc.s"))
        now = time.time()
        write(log, delivery_lines(now, 5, 10, "carol@y.org", "failure", "no such user"))
        write(log, delivery_lines(now, 6, 11, "dave@z.org", "success", OK_TEXT))
        write(log, delivery_lines(now, 7, 12, "erin@y.org", "success", OK_TEXT))
        await _wait(pilot, lambda: len(table.model) == 3)
        assert [table.model.row(i).recipient for i in range(3)] == \
            ["bob@y.org", "carol@y.org", "erin@y.org"]
        assert table.cursor == 2  # following: on the newest match
        await pilot.press("enter")  # leave the filter box, keep the filter
        await pilot.press("N")
        assert table.selected().recipient == "carol@y.org"
        await pilot.press("N")
        assert table.selected().recipient == "bob@y.org"  # a deferral
        await pilot.press("n")
        assert table.selected().recipient == "carol@y.org"
        await pilot.press("slash", "escape")  # clear the filter
        await _wait(pilot, lambda: len(table.model) == 5)
        detail = str(app.query_one("#log-detail").render())
        assert "erin@y.org" in detail and "route=route1" in detail


def test_follow_rotation_filter_and_jumps(tmp_path: Path, demo_home: Path) -> None:
    log = tmp_path / "current"
    now = time.time()
    write(log, delivery_lines(now, 1, 1, "alice@x.org", "success", OK_TEXT))
    write(log, delivery_lines(now, 2, 2, "bob@y.org", "deferral", "try later"))
    asyncio.run(_case_follow_rotation_filter_and_jumps(demo_home, log))


async def _case_unreadable_log(home: Path, log: Path) -> None:
    app = QConsole(home, log=log)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        status = str(app.query_one("#log-status").render())
        assert "cannot read" in status and str(log) in status


def test_unreadable_log_is_said_on_screen(tmp_path: Path, demo_home: Path) -> None:
    asyncio.run(_case_unreadable_log(demo_home, tmp_path / "missing" / "current"))


async def _case_tcpto_view(home: Path, read_only: bool) -> None:
    memory = Memory.for_home(home)
    memory.record(("127.0.0.2", "127.0.0.20", 465))
    memory.record(("*", "127.0.0.30", 587))
    app = QConsole(home, read_only=read_only)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        table = app.query_one("#tcpto-table")
        assert table.row_count == 2
        first = tuple(table.get_row_at(0)[:2])
        await pilot.press("x")
        await pilot.pause()
        if read_only:
            assert len(memory.read()) == 2
            return
        await pilot.press("tab", "enter")  # the confirmation: its default is Cancel
        await pilot.pause()
        left = list(memory.read())
        assert len(left) == 1 and left[0][:2] != first
        assert tuple(table.get_row_at(0)[:2]) == left[0][:2]
        await pilot.press("X", "tab", "enter")
        await pilot.pause()
        assert memory.read() == {} and table.row_count == 0


def test_tcpto_view_clears_one_then_all(demo_home: Path) -> None:
    asyncio.run(_case_tcpto_view(demo_home, read_only=False))


def test_tcpto_view_read_only(demo_home: Path) -> None:
    asyncio.run(_case_tcpto_view(demo_home, read_only=True))


async def _case_probe_shows_progress_and_equals_the_cli(home: Path) -> None:
    from qconsole.simulate_view import SimulateView
    from tests.test_console import _simulate

    app = QConsole(home, demo=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        seen: list[tuple[int, int]] = []
        view = app.query_one(SimulateView)
        original = view._progress

        def spy(generation, done, total, result):
            seen.append((done, total))
            original(generation, done, total, result)

        view._progress = spy
        await _simulate(pilot, "someone@domaine1.com", "a@domaine2.com", button="#probe")
        shown = view.result
    assert seen == [(0, 2), (1, 2), (2, 2)]
    attempts = shown["deliveries"][0]["attempts"]
    assert attempts[1]["probe"]["ok"] and attempts[1]["probe"]["tls"] == "none"
    cli = run_cli("--qmail-home", str(home), "simulate", "--json", "--no-dns", "--probe",
                  "someone@domaine1.com", "a@domaine2.com")
    assert shown == json.loads(cli.stdout)


def test_probe_shows_progress_and_equals_the_cli(demo_home: Path) -> None:
    from qconsole.demo_live import LiveDemo

    # The demo's loopback SMTP sinks, on ports of their own: at the demo's fixed
    # ports another run's sink (another test session's demo) could answer, or close
    # in the middle of the probe.
    live = LiveDemo(demo_home, free_ports=True).start(deliveries=False)
    try:
        asyncio.run(_case_probe_shows_progress_and_equals_the_cli(demo_home))
    finally:
        live.close()


async def _case_live_demo_rows_arrive(home: Path) -> None:
    from qconsole.demo_live import LiveDemo

    live = LiveDemo(home, interval=0.2, free_ports=True).start()
    try:
        app = QConsole(home, demo=True, log=live.log)
        async with app.run_test(size=SIZE) as pilot:
            table = app.query_one(LogTable)
            await _wait(pilot, lambda: len(table.model) >= 4, seconds=60)
            statuses = {table.model.row(i).status for i in range(len(table.model))}
            assert "success" in statuses and statuses <= {"success", "deferral", "failure"}
    finally:
        live.close()


def test_live_demo_rows_arrive(demo_home: Path) -> None:
    asyncio.run(_case_live_demo_rows_arrive(demo_home))


async def _case_filter_that_does_not_parse(log: Path) -> list[tuple[str, str, list]]:
    from tests.test_console import screen_text

    app = QConsole(Path("/nonexistent-qmail-home"), log=log)
    seen = []
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(LogsView)
        table = app.query_one(LogTable)
        await _wait(pilot, lambda: view.index is not None and view.index.history_done)
        for keys in ((), ("slash", *"anne"), ("space", *"route:"), ("backspace",) * 7):
            if keys:
                await pilot.press(*keys)
            else:  # as "every delivery of this message" sets it
                view.set_filter("route:")
            await _wait(pilot, lambda: view.filtered is None or view.filtered.complete)
            await pilot.pause(0.1)
            shown = " ".join(screen_text(app).split())
            seen.append((app.query_one("#log-header").render().plain, shown,
                         [table.model.row(i).recipient for i in range(len(table.model))]))
    return seen


def test_a_filter_that_does_not_parse_says_whose_rows_are_shown(tmp_path: Path) -> None:
    """Issue 11, session 5: with a filter that does not parse (``route:`` before its
    value) the table kept the rows of the last filter that parsed, saying only why
    the new one does not. Chosen: the rows stay (a filter being typed passes through
    such states; blanking the table at each would hide what the operator is looking
    at), and the line above them and the status line say plainly whose rows they
    are."""
    log = tmp_path / "current"
    now = time.time() - 60
    write(log, delivery_lines(now, 1, 100, "anne@example.org", "success", OK_TEXT))
    write(log, delivery_lines(now + 1, 2, 101, "bob@example.org", "success", OK_TEXT))
    (no_filter, anne, previous, fixed) = asyncio.run(_case_filter_that_does_not_parse(log))
    header, shown, rows = no_filter
    assert header == ("The filter typed does not parse (why: below); every row, "
                      "unfiltered"), header
    assert "route: needs a value" in shown and "every row is shown" in shown, shown
    assert rows == ["anne@example.org", "bob@example.org"]
    header, shown, rows = anne
    assert header.startswith("Time") and "1 match for 'anne'" in shown, shown
    header, shown, rows = previous
    assert header == ("The filter typed does not parse (why: below); the rows of the "
                      "previous filter 'anne route'"), header
    assert "route: needs a value" in shown, shown
    assert "the rows shown are for the previous filter 'anne route' (1 match)" in shown
    assert rows == ["anne@example.org"]
    header, shown, rows = fixed
    assert header.startswith("Time") and "previous filter" not in shown, shown
