"""Keys typed ahead of the console (issue 11, session 5 attack over tmux): the
palette runs what the typed query matches, the keys after its Enter reach the field
it focused, and Escape typed fast before a letter is Escape then the letter."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from textual import events
from textual.command import CommandPalette
from textual.widgets import Input

from qconsole.app import QConsole
from qconsole.escape_key import EscapeFirstParser
from qconsole.form_screen import FormScreen
from qconsole.help_screen import HelpScreen
from tests.test_console_edit import ROUTES, _home
from tests.test_console_keys import _NAMES, SIZE, _log, _ready

NAMES = {**_NAMES, "\x10": "ctrl+p", "\x0f": "shift+tab", "-": "minus"}


async def _reads(app: QConsole, pilot, *reads: str) -> None:
    """Each read's keys queued at once (\\x10 is ctrl+p, \\x1b Escape), the app idle
    between two reads."""
    for text in reads:
        for c in text:
            app.post_message(events.Key(NAMES.get(c, c), c if c.isprintable() else None))
        await pilot.pause()
    await pilot.pause(0.3)


async def _case_palette_burst(home: Path, *reads: str) -> tuple:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await _reads(app, pilot, *reads)
        for _ in range(20):  # what the palette ran settles
            await pilot.pause(0.05)
        screen = app.screen
        base = app.screen_stack[0]
        return (type(screen).__name__, base.query_one("TabbedContent").active,
                base.query_one("#sender", Input).value,
                base.query_one("#recipients", Input).value)


def test_the_palette_runs_what_the_query_matches_when_enter_comes_with_it(
        make_home) -> None:
    """ctrl+p, ``Help``, Enter in one read (a paste, a fast typist). Before: the
    palette ran its first entry ("Add route": a form opened), since Enter came
    before the search for ``Help`` had replaced the list. Should: the help."""
    home = _home(make_home)
    shown = asyncio.run(_case_palette_burst(home, "\x10Help\r"))
    assert shown[0] == HelpScreen.__name__, shown
    assert (home / "control" / "routes").read_bytes() == ROUTES


def test_a_query_that_matches_nothing_runs_nothing(make_home) -> None:
    home = _home(make_home)
    shown = asyncio.run(_case_palette_burst(home, "\x10zzzzqqqq\r"))
    assert shown[0] in ("Palette", CommandPalette.__name__), shown  # still open
    assert (home / "control" / "routes").read_bytes() == ROUTES


def test_keys_after_the_palettes_enter_reach_the_field_it_focused(make_home) -> None:
    """ctrl+p, ``Simulate``, Enter, then an address at once: every key of it in the
    sender field, in order (before: lost, or in the palette's query)."""
    home = _home(make_home)
    shown = asyncio.run(_case_palette_burst(home, "\x10Simulate\rops1@mx.example.org"
                                            "\tsales@example.com"))
    assert shown == ("Screen", "simulate", "ops1@mx.example.org", "sales@example.com")


def test_keys_after_the_palettes_enter_in_later_reads(make_home) -> None:
    home = _home(make_home)
    shown = asyncio.run(_case_palette_burst(home, "\x10Sim", "ulate\rop",
                                            "s1@mx.example.org"))
    assert shown == ("Screen", "simulate", "ops1@mx.example.org", "")


async def _case_palette_form(home: Path) -> tuple:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await _reads(app, pilot, "\x10Add route\rnew1")
        for _ in range(10):
            await pilot.pause(0.05)
        screen = app.screen
        assert isinstance(screen, FormScreen), screen
        return screen.query_one("#field-name", Input).value


def test_a_name_typed_after_add_route_lands_in_the_form(make_home) -> None:
    assert asyncio.run(_case_palette_form(_home(make_home))) == "new1"


# Escape typed fast before a key ------------------------------------------------------

def _parsed(parser_class: type, data: str) -> list[tuple[str, str | None]]:
    """The keys a parser makes of ``data`` read at once (no time for ESCDELAY)."""
    parser = parser_class()
    return [(e.key, e.character) for e in parser.feed(data) if isinstance(e, events.Key)]


@pytest.mark.parametrize(("data", "keys"), [
    ("\x1bq", [("escape", "\x1b"), ("q", "q")]),  # Textual: alt+q, after 100 ms
    ("\x1bQ", [("escape", "\x1b"), ("Q", "Q")]),
    ("\x1b2", [("escape", "\x1b"), ("2", "2")]),  # Textual: ™
    ("\x1b/", [("escape", "\x1b"), ("slash", "/")]),  # Textual: / alone
    ("\x1bf", [("escape", "\x1b"), ("f", "f")]),  # Textual: ctrl+right
    ("\x1b é", [("escape", "\x1b"), ("space", " "), ("é", "é")]),
    ("\x1b\x1bq", [("escape", "\x1b"), ("escape", "\x1b"), ("q", "q")]),
    ("\x1b[A", [("up", None)]),  # what starts a longer sequence is Textual's
    ("\x1bOP", [("f1", None)]),
    ("\x1b[1;3A", [("alt+up", None)]),
    ("\x1b\x7f", [("ctrl+w", None)]),  # Alt+Backspace: delete a word
    ("\x1b\r", [("escape", "\x1b"), ("enter", "\r")]),  # Textual: Enter alone
    ("\x1b\t", [("escape", "\x1b"), ("tab", "\t")]),  # Textual: shift+Tab
    ("q\x1b2x", [("q", "q"), ("escape", "\x1b"), ("2", "2"), ("x", "x")]),
])
def test_escape_then_a_character_read_at_once_is_two_keys(data: str, keys: list) -> None:
    assert _parsed(EscapeFirstParser, data) == keys


def test_the_console_reads_keys_with_that_parser(tmp_path: Path) -> None:
    """Whatever driver Textual picks for the terminal, it builds its parser by the
    name XTermParser of its module: the console's driver reads with
    EscapeFirstParser."""
    driver = QConsole(tmp_path).get_driver_class()
    assert sys.modules[driver.__module__].XTermParser is EscapeFirstParser


async def _case_escape_then_2(log: Path, data: str) -> tuple:
    app = QConsole(Path("/nonexistent-qmail-home"), log=log)
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        await pilot.press("slash", *"anne")
        for event in EscapeFirstParser().feed(data):  # as the terminal driver does
            app.post_message(event)
        await pilot.pause(0.3)
        box = app.query_one("#log-filter", Input)
        return box.value, app.query_one("TabbedContent").active


def test_escape_then_2_typed_fast_leaves_the_filter_then_shows_routemap(
        tmp_path: Path) -> None:
    """Escape then ``2`` in one read, in the logs filter: Escape clears the filter and
    leaves it, ``2`` shows the routemap (before: ``™`` typed into the filter)."""
    assert asyncio.run(_case_escape_then_2(_log(tmp_path), "\x1b2")) == ("", "routemap")


def test_escape_then_q_typed_fast_quits(tmp_path: Path) -> None:
    async def case() -> int | None:
        app = QConsole(Path("/nonexistent-qmail-home"), log=_log(tmp_path))
        async with app.run_test(size=SIZE) as pilot:
            await _ready(pilot)
            await pilot.press("slash", *"anne")
            for event in EscapeFirstParser().feed("\x1bq"):
                app.post_message(event)
            await pilot.pause(0.3)
            return app.return_code
    assert asyncio.run(case()) == 0


# A proposed value is replaced by what is typed -----------------------------------------

async def _case_proposed(home: Path, keys: str, *reads: str) -> dict[str, str]:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press(*keys)
        await _reads(app, pilot, *reads)
        form = app.screen
        assert isinstance(form, FormScreen), form
        return form.current()


def test_a_domain_typed_into_a_new_rules_sender_replaces_the_proposed_star(
        make_home) -> None:
    """Routemap, ``a`` (Add above): the sender field holds ``*``; typing
    ``example.com`` gave ``*example.com``. Should: ``example.com``; Tab past it
    keeps ``*``, still selected when the field is entered again; once something
    was typed into it, the field is edited as any other (entering it selects
    nothing)."""
    home = _home(make_home)
    assert asyncio.run(_case_proposed(home, "2", "aexample.com"))["sender"] == "example.com"
    assert asyncio.run(_case_proposed(home, "2a", "\tb.example"))["sender"] == "*"
    assert asyncio.run(_case_proposed(home, "2a", "\t", "\x0f", "x"))["sender"] == "x"
    assert asyncio.run(_case_proposed(home, "2a", "a.org\t", "\x0f", "x"))[
        "sender"] == "a.orgx"


def test_a_name_typed_into_a_duplicate_replaces_the_proposed_one(make_home) -> None:
    home = _home(make_home)
    assert asyncio.run(_case_proposed(home, "1", "dalpha2"))["name"] == "alpha2"


def test_change_theme_then_a_theme_typed_at_once(make_home) -> None:
    """The palette's "Theme" opens a palette of themes: the same rules (before:
    Textual's own, whose Enter ran the first theme listed)."""
    async def case() -> str:
        app = QConsole(_home(make_home))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await _reads(app, pilot, "\x10Theme\rtextual-light\r")
            for _ in range(10):
                await pilot.pause(0.05)
            return app.theme
    assert asyncio.run(case()) == "textual-light"


def test_the_palette_over_a_form_offers_no_view(make_home) -> None:
    """Found in tmux: ``a`` (a new route's form), ctrl+p, ``Logs``, Enter. The palette
    switched to the logs view under the form and gave the focus to its table: the
    form no longer took Escape (the console looked frozen) and the keys went to the
    view under it. Over a form the palette offers no view; the form still closes."""
    home = _home(make_home)

    async def case() -> tuple:
        app = QConsole(home)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await _reads(app, pilot, "a", "\x10Logs\r")
            for _ in range(10):
                await pilot.pause(0.05)
            on_top = type(app.screen).__name__  # nothing ran: the palette is open
            await pilot.press("escape")
            await pilot.pause(0.6)
            form = app.screen
            focus_in_form = app.focused is not None and app.focused.screen is form
            titles = {c.title for c in app.get_system_commands(form)}
            await pilot.press("escape")  # out of the field
            await pilot.pause(0.6)
            await pilot.press("escape")  # then the form
            await pilot.pause(0.3)
            return (on_top, type(form).__name__, focus_in_form, "Logs" in titles,
                    "Help" in titles, app.screen is app.screen_stack[0],
                    app.query_one("TabbedContent").active)
    assert asyncio.run(case()) == ("Palette", "FormScreen", True, False, True, True,
                                   "routes")
    assert (home / "control" / "routes").read_bytes() == ROUTES


def test_the_diffs_footer_shows_its_own_keys(make_home) -> None:
    """Found in tmux: under the diff the footer showed the routes view's keys (``a``
    Add, ``x`` Delete), which do nothing there (a letter goes back to the form)."""
    from tests.test_console import screen_text

    async def case() -> str:
        app = QConsole(_home(make_home))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await _reads(app, pilot, "anew1\t127.0.0.1")
            await pilot.press("ctrl+s")
            await pilot.pause(0.3)
            assert type(app.screen).__name__ == "DiffScreen"
            return screen_text(app).splitlines()[-1]
    footer = asyncio.run(case())
    assert "Save" in footer and "Back" in footer and "Duplicate" not in footer, footer
