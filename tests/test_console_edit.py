"""The console's edit flow: form → diff → save, compared byte for byte on disk."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static

from qconsole.app import QConsole
from qconsole.diff_screen import DiffScreen
from qconsole.form_screen import FormScreen
from qremote.control.cache import read_cache

SIZE = (120, 40)
ROUTES = (b"# routes of the relay\r\n"
          b"\n"
          b"alpha;127.0.0.1;[127.0.0.9]:2525;;\n"
          b"# beta is for the partner\n"
          b"beta;127.0.0.1&127.0.0.2;;user;secret;tls=verify\n"
          b"gamma;;;;")  # no final newline
ROUTEMAP = (b"# first match wins\n"
            b"*;partner.example;beta\n"
            b"a.example;*;gamma\n"
            b"\n"
            b"*;*;alpha\n")


def _home(make_home: Callable[..., Path]) -> Path:
    home = make_home(routes=ROUTES, routemap=ROUTEMAP)
    os.chmod(home / "control" / "routes", 0o640)
    return home


async def _fill(pilot: Pilot, **values: str) -> None:
    """Type each value into its form field (select fields are set)."""
    screen = pilot.app.screen
    assert isinstance(screen, FormScreen)
    for key, value in values.items():
        widget = screen.query_one(f"#field-{key}")
        if isinstance(widget, Select):
            widget.value = value
            continue
        assert isinstance(widget, Input)
        widget.focus()
        widget.value = ""
        await pilot.press(*value) if value else None
    await pilot.press("ctrl+s")
    await pilot.pause()


async def add_route(pilot: Pilot, name: str = "eps") -> None:
    """Add a route of a name alone (``a``, the form filled, its OK): the diff opens."""
    await pilot.press("a")
    await pilot.pause()
    await _fill(pilot, name=name, local_ips="", remotes="", user="", password="", tls="may")


async def _save(pilot: Pilot) -> None:
    """Save from the diff screen with its chord (after the held-key guard)."""
    assert isinstance(pilot.app.screen, DiffScreen), pilot.app.screen
    await pilot.pause(DiffScreen.REPEAT_GUARD + 0.05)
    await pilot.press("ctrl+s")
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def _cursor_to(app: QConsole, table_id: str, row: int) -> None:
    app.query_one(table_id, DataTable).move_cursor(row=row)


async def _case_edit_route_round_trip(home: Path) -> None:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        _cursor_to(app, "#routes-table", 1)
        await pilot.press("e")
        await _fill(pilot, remotes="relay.example.net:587", tls="encrypt")
        diff = str(app.screen.query_one("#diff-text", Static).render())
        assert "secret" not in diff  # masked on both sides until revealed
        assert "-beta;127.0.0.1&127.0.0.2;;user;********;tls=verify" in diff
        assert "+beta;127.0.0.1&127.0.0.2;relay.example.net:587;user;********;tls=encrypt" \
            in diff
        await pilot.press("r")
        diff = str(app.screen.query_one("#diff-text", Static).render())
        assert "-beta;127.0.0.1&127.0.0.2;;user;secret;tls=verify" in diff
        assert "+beta;127.0.0.1&127.0.0.2;relay.example.net:587;user;secret;tls=encrypt" \
            in diff
        await _save(pilot)
        assert not isinstance(app.screen, DiffScreen)
        table = app.query_one("#routes-table", DataTable)
        assert str(table.get_row_at(1)[3]) == "relay.example.net:587"
    control = home / "control"
    assert (control / "routes").read_bytes() == ROUTES.replace(
        b"beta;127.0.0.1&127.0.0.2;;user;secret;tls=verify",
        b"beta;127.0.0.1&127.0.0.2;relay.example.net:587;user;secret;tls=encrypt")
    assert (control / "routes.bak").read_bytes() == ROUTES
    assert (control / "routes").stat().st_mode & 0o777 == 0o640
    cached = read_cache(home)  # recompiled for the new files, hence not stale
    assert cached is not None and cached[0].routes["beta"].tls == "encrypt"


def test_edit_route_round_trip(make_home) -> None:
    asyncio.run(_case_edit_route_round_trip(_home(make_home)))


async def _case_add_duplicate_delete(home: Path) -> None:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await _fill(pilot, name="delta", local_ips="127.0.0.3|127.0.0.4", remotes="",
                    user="", password="", tls="none")
        await _save(pilot)
        _cursor_to(app, "#routes-table", 0)
        await pilot.press("d")
        await _fill(pilot)  # the proposed name alpha-copy
        await _save(pilot)
        table = app.query_one("#routes-table", DataTable)
        assert str(table.get_row_at(table.cursor_row)[0]) == "alpha-copy"
        await pilot.press("x")
        await _save(pilot)
    assert (home / "control" / "routes").read_bytes() == \
        ROUTES + b"\ndelta;127.0.0.3|127.0.0.4;mx;;;tls=none\n"


def test_add_duplicate_delete(make_home) -> None:
    asyncio.run(_case_add_duplicate_delete(_home(make_home)))


async def _case_validation_messages(home: Path) -> None:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await _fill(pilot, name="delta", local_ips="127.0.0.300")
        screen = app.screen
        assert isinstance(screen, FormScreen)
        error = str(screen.query_one("#error-local_ips", Static).render())
        assert "not a valid IPv4 address" in error
        assert app.focused is screen.query_one("#field-local_ips")
        await _fill(pilot, local_ips="", user="u")
        assert "USER and PASS go together" in str(
            screen.query_one("#error-password", Static).render())
        await _fill(pilot, name="alpha", user="")
        assert "already defined at line 3" in str(
            screen.query_one("#form-error", Static).render())
        assert isinstance(app.screen, FormScreen)
        await pilot.press("escape")
        # A route a routemap line uses cannot be deleted.
        _cursor_to(app, "#routes-table", 0)
        await pilot.press("x")
        await pilot.pause()
        assert not isinstance(app.screen, DiffScreen)
    assert (home / "control" / "routes").read_bytes() == ROUTES
    assert not (home / "control" / "routes.bak").exists()


def test_validation_messages(make_home) -> None:
    asyncio.run(_case_validation_messages(_home(make_home)))


async def _case_conflict_refused(home: Path) -> None:
    app = QConsole(home)
    theirs = ROUTES + b"\nepsilon;;;;\n"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        await _fill(pilot, tls="verify")
        (home / "control" / "routes").write_bytes(theirs)  # another operator saves
        await pilot.pause(DiffScreen.REPEAT_GUARD + 0.05)
        await pilot.press("ctrl+s")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DiffScreen)
        assert "changed on disk" in str(screen.query_one("#diff-status", Static).render())
        await pilot.press("escape")
        await pilot.pause()
        names = [str(app.query_one("#routes-table", DataTable).get_row_at(i)[0])
                 for i in range(4)]
        assert names == ["alpha", "beta", "gamma", "epsilon"]  # reloaded from disk
    assert (home / "control" / "routes").read_bytes() == theirs
    assert not (home / "control" / "routes.bak").exists()


def test_conflict_refused(make_home) -> None:
    asyncio.run(_case_conflict_refused(_home(make_home)))


async def _case_routemap_edits(home: Path) -> None:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        table = app.query_one("#routemap-table", DataTable)
        _cursor_to(app, "#routemap-table", 2)  # *;*;alpha
        await pilot.press("a")
        await _fill(pilot, sender="b.example", recipient="*", route="nosuch")
        assert "'nosuch' is not defined in control/routes" in str(
            app.screen.query_one("#form-error", Static).render())
        await _fill(pilot, route="beta")
        await _save(pilot)
        assert str(table.get_row_at(table.cursor_row)[1]) == "b.example"
        await pilot.press("K")  # above a.example;*;gamma
        await _save(pilot)
        assert str(table.get_row_at(table.cursor_row)[1]) == "b.example"
        _cursor_to(app, "#routemap-table", 0)
        await pilot.press("e")
        await _fill(pilot, recipient="Partner.Example.")  # the same domain: no change
        assert not isinstance(app.screen, DiffScreen)
        await pilot.press("e")
        await _fill(pilot, recipient="Partner.Example.ORG")
        await _save(pilot)
        _cursor_to(app, "#routemap-table", 3)
        await pilot.press("J")  # already last
        await pilot.pause()
        assert not isinstance(app.screen, DiffScreen)
        await pilot.press("x")
        await _save(pilot)
    assert (home / "control" / "routemap").read_bytes() == (
        b"# first match wins\n"
        b"*;partner.example.org;beta\n"
        b"b.example;*;beta\n"
        b"\n"  # the blank line and the comments stay where they were
        b"a.example;*;gamma\n")


def test_routemap_edits(make_home) -> None:
    asyncio.run(_case_routemap_edits(_home(make_home)))


async def _case_read_only_disables_edits(home: Path) -> None:
    app = QConsole(home, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        for key in ("a", "e", "d", "x", "enter"):
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, FormScreen | DiffScreen)
        await pilot.press("2")
        for key in ("a", "e", "x", "K", "J"):
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, FormScreen | DiffScreen)
    assert (home / "control" / "routes").read_bytes() == ROUTES
    assert (home / "control" / "routemap").read_bytes() == ROUTEMAP


def test_read_only_disables_edits(make_home) -> None:
    asyncio.run(_case_read_only_disables_edits(_home(make_home)))


async def _case_palette_runs_view_actions(home: Path) -> None:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"Duplicate route")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.5)
        assert isinstance(app.screen, FormScreen)
        assert app.screen.query_one("#field-name", Input).value == "alpha-copy"
        app.read_only = True
        titles = {c.title for c in app.get_system_commands(app.screen_stack[0])}
    assert "Routes" in titles and "Probe" in titles and "Next failure" in titles
    assert not titles & {"Add route", "Delete routemap rule", "Clear all failover pairs"}


def test_palette_runs_view_actions(make_home) -> None:
    asyncio.run(_case_palette_runs_view_actions(_home(make_home)))
