"""Keys handled in order (qconsole.keys), confirmations a burst cannot give, one key
closing one thing, and what a form takes (a secret's mask, control characters)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from textual import events
from textual.widgets import Input, Static

from qconsole.app import QConsole
from qconsole.delivery_screen import DeliveryScreen
from qconsole.diff_screen import DiffScreen, diff_text
from qconsole.fields import MASK
from qconsole.form_screen import FormScreen
from qconsole.log_table import LogTable
from qconsole.logs_view import LogsView
from qconsole.worker_view import WorkerView
from qremote.delivery.tcpto import Memory
from tests.test_console import screen_text
from tests.test_console_edit import ROUTEMAP, ROUTES, _home
from tests.test_logs import OK_TEXT, delivery_lines, write

SIZE = (120, 40)
_NAMES = {"@": "at", ".": "full_stop", " ": "space", "\t": "tab", "\r": "enter",
          "/": "slash", ":": "colon", "\x1b": "escape"}


async def _burst(app: QConsole, pilot, text: str) -> None:
    """Every key of ``text`` queued before the first is handled (one read over SSH;
    \\t Tab, \\r Enter, \\x1b Escape), then what they opened settles."""
    for c in text:
        app.post_message(events.Key(_NAMES.get(c, c), None if c in "\t\r\x1b" else c))
    await pilot.pause(0.3)
    for _ in range(5):
        await pilot.pause()


# A burst cannot confirm --------------------------------------------------------------

async def _case_burst_in_failover_memory(home: Path) -> dict:
    memory = Memory.for_home(home)
    async with QConsole(home).run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await _burst(pilot.app, pilot, "x\t\r")  # clear, Tab to Clear, Enter: in one read
        assert not isinstance(pilot.app.screen, DiffScreen)
    return memory.read()


def test_a_tab_and_enter_typed_ahead_do_not_confirm(make_home) -> None:
    """``x`` opens "Forget ...?"; the Tab and Enter that came in the same read were
    typed before the question was on screen: they are no answer to it."""
    home = _home(make_home)
    (home / "queue" / "lock").mkdir(parents=True)
    memory = Memory.for_home(home)
    memory.record(("127.0.0.2", "127.0.0.20", 465))
    before = memory.read()
    assert asyncio.run(_case_burst_in_failover_memory(home)) == before


async def _case_burst_in_routemap(home: Path) -> None:
    async with QConsole(home).run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await _burst(pilot.app, pilot, "x\t\t\r")  # delete, Tab Tab to Save, Enter


def test_a_delete_diff_is_not_saved_by_keys_typed_ahead(make_home) -> None:
    home = _home(make_home)
    asyncio.run(_case_burst_in_routemap(home))
    assert (home / "control" / "routemap").read_bytes() == ROUTEMAP
    assert not (home / "control" / "routemap.bak").exists()


# Enter on a row, and keys that follow a screen ---------------------------------------

async def _case_enter_edits(home: Path) -> tuple[str, str]:
    async with QConsole(home).run_test(size=SIZE) as pilot:
        await pilot.pause()
        await _burst(pilot.app, pilot, "\rX")  # Enter on alpha, then a key for the form
        screen = pilot.app.screen
        assert isinstance(screen, FormScreen), screen
        return screen.title_text, screen.query_one("#field-name", Input).value


def test_enter_on_a_route_opens_its_form_and_the_next_key_lands_in_it(make_home) -> None:
    """README: "e/enter edit". Enter on a row edits it at once: the key typed right
    after is the form's."""
    assert asyncio.run(_case_enter_edits(_home(make_home))) == ("Edit route alpha",
                                                                "alphaX")


def _log(tmp_path: Path) -> Path:
    log = tmp_path / "current"
    now = time.time() - 60
    write(log, delivery_lines(now, 1, 100, "anne@example.org", "deferral",
                              "Remote host said: 451 greylisted\nroute=alpha "
                              "local=127.0.0.1 remote=127.0.0.9:2525 tls=none auth=none"))
    write(log, delivery_lines(now + 1, 2, 101, "bob@example.org", "success", OK_TEXT))
    return log


async def _ready(pilot) -> LogsView:
    view = pilot.app.query_one(LogsView)
    while view.index is None or not view.index.history_done:
        await pilot.pause(0.05)
    await pilot.pause()
    return view


async def _case_story_then_route_then_edit(home: Path, log: Path) -> tuple[str, str]:
    app = QConsole(home, log=log, initial="logs")
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        await pilot.press("g")  # anne's deferral, by route alpha
        await _burst(app, pilot, "\rre")  # its story, its route, edit that route
        screen = app.screen
        assert isinstance(screen, FormScreen), screen
        return app.query_one("TabbedContent").active, screen.title_text


def test_keys_after_the_story_go_where_it_leads(make_home, tmp_path: Path) -> None:
    """Enter (the whole story), ``r`` (go to the route), ``e`` (edit it), in one read:
    the ``e`` waits until the routes view shows the route."""
    assert asyncio.run(_case_story_then_route_then_edit(_home(make_home), _log(tmp_path))
                       ) == ("routes", "Edit route alpha")


async def _case_filter_enter_then_key(log: Path) -> tuple[str, bool, bool]:
    app = QConsole(Path("/nonexistent-qmail-home"), log=log)
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        await pilot.press("g")
        await _burst(app, pilot, "/bob\rf")  # filter, keep it, follow (the table's f)
        table = app.query_one(LogTable)
        return (app.query_one("#log-filter", Input).value, app.focused is table,
                table.following)


def test_enter_keeps_the_filter_and_the_next_key_is_the_tables(tmp_path: Path) -> None:
    assert asyncio.run(_case_filter_enter_then_key(_log(tmp_path))) == ("bob", True, True)


# A key that moves the focus: the keys behind it go into the field it focused ------------

async def _reads(app: QConsole, pilot, *reads: str) -> None:
    """Each read's keys queued at once, the app idle between two reads: tmux
    ``send-keys "/" \\; send-keys -l remote``, or a typist faster than the event loop
    (the field's Focus event, queued, is handled between two keys)."""
    for text in reads:
        for c in text:
            app.post_message(events.Key(_NAMES.get(c, c),
                                        None if c in "\t\r\x1b" else c))
        await pilot.pause()
    await pilot.pause(0.3)


async def _case_filter_in_two_reads(log: Path, *reads: str) -> tuple:
    app = QConsole(Path("/nonexistent-qmail-home"), log=log)
    async with app.run_test(size=SIZE) as pilot:
        view = await _ready(pilot)
        table = app.query_one(LogTable)
        before = (table.following, view.counters_shown)
        await _reads(app, pilot, *reads)
        box = app.query_one("#log-filter", Input)
        return (box.value, app.focused is box, app.query_one("TabbedContent").active,
                app.return_code, (table.following, view.counters_shown)
                == before)


def test_the_filter_holds_every_key_typed_after_the_slash(tmp_path: Path) -> None:
    """``/`` then ``remote`` (issue 11, typed as fast as a person does).

    Before: the box showed ``mote``: the keys after ``/`` went into the box before it
    had handled its Focus event, which then selected them (select_on_focus), and the
    ``m`` replaced the selection.

    Should: ``remote``, the focus still in the box, no view change, no table action
    (follow, counters)."""
    assert asyncio.run(_case_filter_in_two_reads(_log(tmp_path), "/re", "mote")) == (
        "remote", True, "logs", None, True)


def test_keys_that_are_logs_actions_go_into_the_filter(tmp_path: Path) -> None:
    """``f`` (follow), ``c`` (counters), ``n`` (next failure), ``g`` (oldest) right after
    ``/``: text of the filter, not actions of the view or its table."""
    assert asyncio.run(_case_filter_in_two_reads(_log(tmp_path), "/fc", "ng")) == (
        "fcng", True, "logs", None, True)


async def _case_simulate_in_reads(home: Path, *reads: str) -> tuple:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await _reads(app, pilot, *reads)
        return (app.query_one("TabbedContent").active, app.screen is app.screen_stack[0],
                app.query_one("#sender", Input).value,
                app.query_one("#recipients", Input).value)


def test_an_address_typed_right_after_3_lands_whole_in_simulate(make_home) -> None:
    """``3`` (Simulate: its sender field takes the focus), ``ops1@mx.example.org``,
    Tab, ``sales@example.com``, as they come over tmux: every key in its field, in
    order (before: the sender lost the keys typed before its Focus event, and so did
    the recipients after the Tab), and the routes file untouched."""
    home = _home(make_home)
    assert asyncio.run(_case_simulate_in_reads(
        home, "3op", "s1@mx.example.org\tsa", "les@example.com")) == (
        "simulate", True, "ops1@mx.example.org", "sales@example.com")
    assert (home / "control" / "routes").read_bytes() == ROUTES


# One key closes one thing --------------------------------------------------------------

async def _case_double_q(log: Path, pause: float) -> tuple[bool, str]:
    app = QConsole(Path("/nonexistent-qmail-home"), log=log)
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        await pilot.press("enter")
        assert isinstance(app.screen, DeliveryScreen)
        if pause:
            await pilot.press("q")
            await pilot.pause(pause)
            await pilot.press("q")
        else:
            await _burst(app, pilot, "qq")  # pressed twice to be sure it closes
        return app.return_code is None, type(app.screen).__name__


def test_q_pressed_twice_closes_the_story_and_not_the_console(tmp_path: Path) -> None:
    running, screen = asyncio.run(_case_double_q(_log(tmp_path), 0))
    assert running and screen != DeliveryScreen.__name__


def test_q_pressed_again_later_quits(tmp_path: Path) -> None:
    running, _ = asyncio.run(_case_double_q(_log(tmp_path), 0.7))
    assert not running


async def _case_double_escape(log: Path) -> tuple[str, bool]:
    app = QConsole(Path("/nonexistent-qmail-home"), log=log)
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        await pilot.press("slash", *"anne", "enter")  # a kept filter
        await pilot.press("enter")  # the story of its row
        assert isinstance(app.screen, DeliveryScreen)
        await _burst(app, pilot, "\x1b\x1b")
        assert not isinstance(app.screen, DeliveryScreen)
        box = app.query_one("#log-filter", Input)
        return box.value, box.has_class("shown")


def test_escape_pressed_twice_closes_the_story_and_keeps_the_filter(tmp_path: Path,
                                                                     ) -> None:
    assert asyncio.run(_case_double_escape(_log(tmp_path))) == ("anne", True)


# What a form takes ---------------------------------------------------------------------

async def _case_secret(home: Path) -> tuple[str, str, str]:
    async with QConsole(home).run_test(size=SIZE) as pilot:
        await pilot.press("down", "e")  # beta: user "user", password "secret"
        screen = pilot.app.screen
        assert isinstance(screen, FormScreen)
        field = screen.query_one("#field-password", Input)
        shown = field.render_line(0).text
        await pilot.press("tab", "tab", "tab", "tab", *"n3w")  # to PASS, type
        assert pilot.app.focused is field
        typed = field.render_line(0).text
        return shown, field.value, typed


def test_a_password_field_hides_the_length_and_typing_replaces_it(make_home) -> None:
    shown, value, typed = asyncio.run(_case_secret(_home(make_home)))
    assert shown.strip() == MASK  # 8 bullets for the 6 letters of "secret"
    assert value == "n3w"  # not "secretn3w": one cannot see what one would append to
    assert typed.strip() == MASK  # 8 bullets for 3 letters too


async def _case_paste(home: Path, field: str) -> tuple[str, str, str]:
    async with QConsole(home).run_test(size=SIZE) as pilot:
        await pilot.press("down", "e")
        screen = pilot.app.screen
        assert isinstance(screen, FormScreen)
        widget = screen.query_one(f"#field-{field}", Input)
        screen.set_focus(widget)
        pilot.app.post_message(events.Paste("us\x1b[2Jer"))
        await pilot.pause()
        refused, shown = widget.value, screen_text(pilot.app)
        pilot.app.post_message(events.Paste("-ok"))  # a paste without any goes in
        await pilot.pause()
        return refused, shown, widget.value


def test_a_paste_with_control_characters_is_refused(make_home) -> None:
    home = _home(make_home)
    for field, before, after in (("user", "user", "user-ok"),
                                 ("password", "secret", "-ok")):
        value, shown, pasted = asyncio.run(_case_paste(home, field))
        assert value == before and "\x1b" not in shown
        assert pasted == after


async def _case_control_characters(home: Path) -> tuple[str, bool]:
    async with QConsole(home).run_test(size=SIZE) as pilot:
        await pilot.press("down", "e")
        screen = pilot.app.screen
        assert isinstance(screen, FormScreen)
        # e.g. a password read from a line that did not parse (the field masks it)
        screen.query_one("#field-password", Input).value = "pa\x07ss"
        await pilot.press("ctrl+s")
        await pilot.pause()
        error = str(screen.query_one("#error-password", Static).render())
        return error, isinstance(pilot.app.screen, FormScreen)


def test_a_password_with_control_characters_is_refused(make_home) -> None:
    home = _home(make_home)
    error, still = asyncio.run(_case_control_characters(home))
    assert "\\x07 is a control or invisible character" in error and still
    assert (home / "control" / "routes").read_bytes() == ROUTES


async def _case_fix_unchanged(home: Path) -> str:
    async with QConsole(home).run_test(size=SIZE) as pilot:
        await pilot.press("G", "e")  # the line that does not parse: fix it
        screen = pilot.app.screen
        assert isinstance(screen, FormScreen)
        screen.query_one("#field-name", Input).value = "fixed"
        await pilot.press("ctrl+s")  # the user field still holds the escaped text
        await pilot.pause()
        assert isinstance(pilot.app.screen, FormScreen)
        return str(screen.query_one("#error-user", Static).render())


def test_an_escaped_value_is_not_taken_as_typed(make_home) -> None:
    """A line that does not parse holds an escape sequence in its USER field; the fix
    form shows it escaped (``\\x1b``), and refuses to save those characters as
    typed: the operator types the value again."""
    routes = ROUTES.replace(b"gamma;;;;", b"gamma;;;;\nbad name;;;u\x1bser;pw")
    home = make_home(routes=routes, routemap=ROUTEMAP)
    assert "type it again" in asyncio.run(_case_fix_unchanged(home))
    assert (home / "control" / "routes").read_bytes() == routes


def test_the_diff_shows_control_characters_escaped() -> None:
    text = diff_text("--- a\n+++ b\n-old\n+new\x1b]0;T\x07\r\n").plain
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "+new\\x1b]0;T\\x07\n" in text


# The worker view: a late answer --------------------------------------------------------

async def _case_late_answer(home: Path) -> list[str]:
    async with QConsole(home).run_test(size=SIZE) as pilot:
        await pilot.press("6")
        view = pilot.app.query_one(WorkerView)
        newer = {"in_flight": [{"id": 2, "stage": "data", "host": "new.test"}]}
        older = {"in_flight": [{"id": 1, "stage": "mail", "host": "old.test"}]}
        view.show(newer, None, view.asked + 2)
        view.show(older, None, view.asked + 1)  # asked before, answered after
        table = pilot.app.query_one("#worker-table")
        return [str(table.get_row_at(i)[3]) for i in range(table.row_count)]


def test_a_late_worker_answer_does_not_overwrite_a_newer_one(make_home) -> None:
    assert asyncio.run(_case_late_answer(_home(make_home))) == ["new.test"]


async def _case_form_after_tab_switch(home: Path, log: Path) -> tuple:
    app = QConsole(home, log=log, initial="logs")
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        await _reads(app, pilot, "/q\r1aq")
        form = app.screen
        focused_on_form = app.focused is not None and app.focused.screen is form
        for _ in range(2):  # out of the field, then the form (a double press is one)
            await _reads(app, pilot, "\x1b")
            await pilot.pause(0.6)
        return (isinstance(form, FormScreen), focused_on_form,
                app.screen is app.screen_stack[0])


def test_a_form_opened_right_after_a_tab_switch_keeps_the_focus(make_home,
                                                                tmp_path: Path) -> None:
    """Enter in the filter, ``1`` (Routes), ``a`` (a new route), ``q``, in one read
    (found in tmux): the Routes tab's late activation put the focus on the routes
    table under the open form, so the form's Escape did nothing and the table's own
    keys (x delete, e edit) fired behind it. The focus stays in the form, and Escape
    (out of the field, then out of the form) closes it."""
    home = _home(make_home)
    assert asyncio.run(_case_form_after_tab_switch(home, _log(tmp_path))) == (
        True, True, True)
    assert (home / "control" / "routes").read_bytes() == ROUTES
