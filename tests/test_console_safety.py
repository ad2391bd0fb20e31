"""Keys that cannot destroy, and log text that never reaches the terminal raw."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from textual import events
from textual.widgets import Button, DataTable, Input

from qconsole.app import QConsole
from qconsole.confirm_screen import ConfirmScreen
from qconsole.delivery_screen import DeliveryScreen
from qconsole.diff_screen import DiffScreen
from qconsole.form_screen import FormScreen
from qconsole.log_table import LogTable
from qconsole.logs_view import LogsView
from qconsole.simulate_view import SimulateView
from qremote.delivery.tcpto import Memory
from tests.test_console import screen_text
from tests.test_console_edit import ROUTEMAP, ROUTES, _home
from tests.test_logs import delivery_lines, stamp, write

SIZE = (120, 40)


def _files(home: Path) -> tuple[bytes, bytes]:
    return ((home / "control" / "routes").read_bytes(),
            (home / "control" / "routemap").read_bytes())


async def _case_typing_an_address_in_simulate_changes_no_file(home: Path) -> None:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        # The sequence: "3", an address, Tab, another, as fast as a person.
        await pilot.press("3", *"ops1@mx.example.org", "tab", *"sales@example.com")
        await pilot.press("enter")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert app.query_one("TabbedContent").active == "simulate"
        assert not isinstance(app.screen, FormScreen | DiffScreen | ConfirmScreen)
        assert app.query_one("#sender", Input).value == "ops1@mx.example.org"
        assert app.query_one("#recipients", Input).value == "sales@example.com"
        assert app.query_one(SimulateView).result is not None  # enter planned it
    assert app.return_code is None or app.return_code == 0
    assert _files(home) == (ROUTES, ROUTEMAP)
    assert not (home / "control" / "routes.bak").exists()


def test_typing_an_address_in_simulate_changes_no_file(make_home) -> None:
    asyncio.run(_case_typing_an_address_in_simulate_changes_no_file(_home(make_home)))


def _burst(text: str) -> list[events.Key]:
    """Key events for ``text`` as a terminal sends them (\t Tab, \r Enter)."""
    names = {"@": "at", ".": "full_stop", " ": "space", "\t": "tab", "\r": "enter"}
    return [events.Key(names.get(c, c), None if c in "\t\r" else c) for c in text]


async def _case_a_burst_of_keys_lands_where_it_is_typed(home: Path) -> None:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        # Over SSH, keys typed fast arrive in one read: all queued before the first is
        # handled. The view switch and Tab must move the focus before the rest.
        for key in _burst("3ops1@mx.example.org\tsales@example.com xs\r"):
            app.post_message(key)
        await pilot.pause(0.3)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.query_one("TabbedContent").active == "simulate"
        assert app.query_one("#sender", Input).value == "ops1@mx.example.org"
        assert app.query_one("#recipients", Input).value == "sales@example.com xs"
        assert app.focused is app.query_one("#recipients", Input)
        assert not isinstance(app.screen, FormScreen | DiffScreen | ConfirmScreen)
    assert _files(home) == (ROUTES, ROUTEMAP)


def test_a_burst_of_keys_lands_where_it_is_typed(make_home) -> None:
    asyncio.run(_case_a_burst_of_keys_lands_where_it_is_typed(_home(make_home)))


async def _case_escape_leaves_a_field_and_forms_take_the_focus(home: Path) -> None:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        assert app.focused is app.query_one("#sender", Input)
        await pilot.press("escape", "1")  # out of the field: keys act again
        assert app.query_one("TabbedContent").active == "routes"
        await pilot.press("e")
        form = app.screen
        assert isinstance(form, FormScreen)
        assert app.focused is form.query_one("#field-name", Input)
        await pilot.press(*"x1")  # typed into the name, nothing else
        assert form.query_one("#field-name", Input).value == "alphax1"
        await pilot.press("escape")  # leaves the field, the form stays
        assert app.screen is form and isinstance(app.focused, Button)
        await pilot.press("escape")  # now cancels
        assert not isinstance(app.screen, FormScreen)
    assert _files(home) == (ROUTES, ROUTEMAP)


def test_escape_leaves_a_field_and_forms_take_the_focus(make_home) -> None:
    asyncio.run(_case_escape_leaves_a_field_and_forms_take_the_focus(_home(make_home)))


async def _case_destroying_needs_a_deliberate_confirmation(home: Path) -> None:
    (home / "queue" / "lock").mkdir(parents=True)
    memory = Memory.for_home(home)
    memory.record(("127.0.0.2", "127.0.0.20", 465))
    assert len(memory.read()) == 1
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "x")  # delete the first rule: the diff opens
        assert isinstance(app.screen, DiffScreen)
        assert app.focused is app.screen.query_one("#diff-cancel", Button)
        await pilot.press("s")  # a stray letter leaves it
        assert not isinstance(app.screen, DiffScreen)
        await pilot.press("x")
        assert isinstance(app.screen, DiffScreen)
        await pilot.press("down", "enter")  # stray keys: Enter is on Cancel
        assert not isinstance(app.screen, DiffScreen)
        await pilot.press("5", "X")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("x", "X", "y", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert len(memory.read()) == 1
    assert _files(home) == (ROUTES, ROUTEMAP)


def test_destroying_needs_a_deliberate_confirmation(make_home) -> None:
    asyncio.run(_case_destroying_needs_a_deliberate_confirmation(_home(make_home)))


def test_a_held_ctrl_s_does_not_save_the_diff_it_opened(make_home) -> None:
    """The form's OK (ctrl+s) opens the diff; the same key still held (auto-repeat)
    must not save it: only a ctrl+s after a pause does."""
    from qconsole.editing import Edit
    from qremote.control.config import load_config

    home = _home(make_home)
    screen = DiffScreen(Edit(load_config(home), "routes", "test").replace(3, None))
    saves: list[bool] = []
    screen.action_save = lambda: saves.append(True)  # type: ignore[method-assign]
    screen.action_save_key()  # arrives with the screen
    screen.action_save_key()  # and again, a repeat
    assert saves == []
    screen.last_key -= DiffScreen.REPEAT_GUARD * 2  # the key was released a while ago
    screen.action_save_key()
    assert saves == [True]


async def _case_cancelling_the_diff_goes_back_to_the_form(home: Path) -> None:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        app.query_one("#routes-table", DataTable).move_cursor(row=1)
        await pilot.press("e")
        form = app.screen
        remotes = form.query_one("#field-remotes", Input)
        remotes.value = "relay.example.net:587"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, DiffScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, FormScreen)  # as it was filled
        assert app.screen.query_one("#field-remotes", Input).value == \
            "relay.example.net:587"
        assert app.screen.query_one("#field-user", Input).value == "user"
    assert _files(home) == (ROUTES, ROUTEMAP)


def test_cancelling_the_diff_goes_back_to_the_form(make_home) -> None:
    asyncio.run(_case_cancelling_the_diff_goes_back_to_the_form(_home(make_home)))


async def _case_read_only_says_why(home: Path) -> None:
    app = QConsole(home, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x")
        await pilot.pause()
        said = [n.message for n in app._notifications]
        assert any("Read-only" in m and "--read-only" in m for m in said), said
        assert not isinstance(app.screen, DiffScreen)
    assert _files(home) == (ROUTES, ROUTEMAP)


def test_read_only_says_why_an_edit_key_does_nothing(make_home) -> None:
    asyncio.run(_case_read_only_says_why(_home(make_home)))


HOSTILE_REPLY = ("127.0.0.9 does not like recipient.\n"
                 "Remote host said: 550 \x1b[31mred\x1b[0m [bold red]no[/bold red] \x07\x9b2J\n"
                 "Giving up on 127.0.0.9.\n"
                 "route=route1 local=127.0.0.2 remote=127.0.0.9:25 tls=none auth=none")


async def _case_escape_sequences_are_shown_escaped(log: Path) -> None:
    app = QConsole(Path("/nonexistent-qmail-home"), log=log)
    async with app.run_test(size=(160, 40)) as pilot:
        view = app.query_one(LogsView)
        while view.index is None or not view.index.history_done:
            await pilot.pause(0.05)
        await pilot.pause()
        shown = screen_text(app)
        assert "\x1b" not in shown and "\x07" not in shown and "\x9b" not in shown
        assert "\\x1b[2J garbage \\x1b]0;title\\x07" in shown  # the raw line, escaped
        table = app.query_one(LogTable)
        table.move_to(0)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DeliveryScreen)
        story = screen_text(app)
        assert "\x1b" not in story and "\x07" not in story and "\x9b" not in story
        assert "550 \\x1b[31mred\\x1b[0m" in story
        assert "[bold red]no[/bold red]" in story


def test_escape_sequences_in_a_log_are_shown_escaped(tmp_path: Path) -> None:
    log = tmp_path / "current"
    now = time.time()
    # qmail-send logs control bytes as "_"; a line written by something else (or a
    # syslog relay) can carry them raw.
    lines = delivery_lines(now, 1, 1, "x@example.com", "failure", "")
    lines[3] = f"{stamp(now + 2)} delivery 1: failure: " + HOSTILE_REPLY.replace(
        " ", "_").replace("\n", "/")
    write(log, lines)
    write(log, [f"{stamp(now + 3)} \x1b[2J garbage \x1b]0;title\x07"])
    asyncio.run(_case_escape_sequences_are_shown_escaped(log))
