"""Adversarial tests of the console's keys (issue 11, tried again as an operator would).

Each test is a keystroke sequence an operator types, fast or thinking they are
somewhere else, and what README's "Keys that cannot destroy" promises about it:
no file changes without a deliberate confirmation ("Enter, Escape or any letter
leaves without a change"), and keys typed fast, arriving in one read over SSH, "land
where they were meant".
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual import events
from textual.widgets import Input

from qconsole.app import QConsole
from qconsole.form_screen import FormScreen
from qremote.delivery.tcpto import Memory
from tests.test_console_edit import ROUTEMAP, ROUTES, _home
from tests.test_logs import OK_TEXT, delivery_lines, write

SIZE = (120, 40)
_NAMES = {"@": "at", ".": "full_stop", " ": "space", "\t": "tab", "\r": "enter",
          "/": "slash", ":": "colon", "-": "minus", "*": "asterisk"}


def _burst(text: str) -> list[events.Key]:
    """Key events for ``text`` as a terminal sends them in one read (\\t Tab, \\r Enter)."""
    return [events.Key(_NAMES.get(c, c), None if c in "\t\r" else c) for c in text]


async def _type_in_one_read(app: QConsole, pilot, text: str) -> None:
    """Queue every key before the first is handled (fast typing over SSH), then wait."""
    for key in _burst(text):
        app.post_message(key)
    await pilot.pause(0.5)
    for _ in range(5):  # what the keys opened (forms, screens) settles
        await pilot.pause()


# A stray typed line: the confirmation must not be given by it ---------------------

async def _case_a_typed_line_clears_no_failover_pair(home: Path) -> None:
    (home / "queue" / "lock").mkdir(parents=True)
    memory = Memory.for_home(home)
    memory.record(("127.0.0.2", "127.0.0.20", 465))
    memory.record(("127.0.0.3", "127.0.0.30", 587))
    before = memory.read()
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        # The sequence, with an address that has no digit: typed on the
        # failover memory view (or after Escape left a field).
        await pilot.press(*"ops@mx.example.org", "tab", *"sales@example.com", "enter")
        await pilot.pause()
    assert memory.read() == before


def test_a_typed_address_line_clears_no_failover_pair(make_home) -> None:
    """The operator, on the Failover memory view (5) while thinking they were in
    Simulate, types ``ops@mx.example.org``, Tab, ``sales@example.com``, Enter.

    Today: the ``x`` of ``mx`` opens "Forget 127.0.0.2 → 127.0.0.20:465?", the
    letters that follow do nothing, Tab moves the focus to "Clear" and Enter clears
    the pair: qmail-remote tries a remote that still times out again.

    Should: README promises "Enter, Escape or any letter leaves without a change";
    the ``.`` or ``e`` right after the ``x`` leaves the dialog, nothing is cleared.
    """
    asyncio.run(_case_a_typed_line_clears_no_failover_pair(_home(make_home)))


async def _case_a_typed_line_deletes_no_rule(home: Path) -> None:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.press(*"ops@mx.example.org", "tab", *"sales@example.com", "tab",
                          *"bob", "enter")
        await pilot.pause()
    assert (home / "control" / "routemap").read_bytes() == ROUTEMAP
    assert (home / "control" / "routes").read_bytes() == ROUTES
    assert not (home / "control" / "routemap.bak").exists()


def test_a_typed_line_with_two_tabs_deletes_no_routemap_rule(make_home) -> None:
    """The operator, on the Routemap view (2), types a line of three fields:
    ``ops@mx.example.org`` Tab ``sales@example.com`` Tab ``bob`` Enter.

    Today: ``x`` opens the delete diff of the first rule (focus on Cancel); no letter
    leaves it; the first Tab focuses the diff text, the second the Save button, and
    Enter saves: ``control/routemap`` loses its first rule (``routemap.bak`` written).

    Should: deleting a rule "asks first ... Enter, Escape or any letter leaves
    without a change" (README): the first letter after ``x`` leaves the diff, and the
    file stays byte-identical.
    """
    asyncio.run(_case_a_typed_line_deletes_no_rule(_home(make_home)))


# Keys typed fast: they must land where they were meant ------------------------------

def _log(tmp_path: Path) -> Path:
    import time

    log = tmp_path / "current"
    write(log, delivery_lines(time.time() - 60, 1, 100, "anne@example.org", "success",
                              OK_TEXT))
    return log


async def _case_filter_typed_fast(log: Path, text: str) -> tuple[bool, str, str]:
    app = QConsole(Path("/nonexistent-qmail-home"), log=log)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        await _type_in_one_read(app, pilot, text)
        running = app.is_running and app.return_code is None
        tab = app.query_one("TabbedContent").active
        return running, tab, app.query_one("#log-filter", Input).value


def test_typing_a_filter_fast_does_not_quit(tmp_path: Path) -> None:
    """On the Logs view the operator types ``/qmail`` quickly (over SSH the six keys
    arrive in one read; tmux ``send-keys -l /qmail`` does the same).

    Today: the console quits. ``q`` is a priority binding, acted on by the App as soon
    as it arrives, while the ``/`` before it is still queued for the log table: the
    filter box does not have the focus yet, so ``q`` is taken as Quit.

    Should: the keys are handled in the order typed: ``/`` opens the filter, then
    ``qmail`` is typed into it (README: keys typed fast "land where they were meant").
    """
    running, tab, value = asyncio.run(_case_filter_typed_fast(_log(tmp_path), "/qmail"))
    assert running, "the console quit"
    assert (tab, value) == ("logs", "qmail")


def test_typing_a_filter_with_a_digit_fast_stays_in_the_filter(tmp_path: Path) -> None:
    """On the Logs view the operator types ``/route:route3`` quickly.

    Today: the ``3`` (a priority binding) is acted on before the ``/`` and the letters
    typed before it reach the logs view: the console switches to Simulate and the
    filter stays empty. The same happened by itself in tmux on a 600,000-delivery log
    while a search was running (the event loop busy: every key arrives "fast").

    Should: the Logs view stays, the filter holds ``route:route3``.
    """
    running, tab, value = asyncio.run(_case_filter_typed_fast(_log(tmp_path),
                                                              "/route:route3"))
    assert running
    assert (tab, value) == ("logs", "route:route3")


async def _case_form_typed_fast(home: Path, keys: str, field: str,
                                ) -> tuple[str, str] | None:
    """(the title of the form on top, the value of its ``field``) after ``keys``."""
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await _type_in_one_read(app, pilot, keys)
        screen = app.screen
        if not isinstance(screen, FormScreen):
            return None
        return screen.title_text, screen.query_one(f"#field-{field}", Input).value


def test_a_name_typed_right_after_a_opens_the_form_lands_in_it(make_home) -> None:
    """On the Routes view the operator types ``a`` (add) and at once the new route's
    name, ``newroute``.

    Today: the form opens but its name field is empty: the keys typed after ``a``
    were dispatched before the form's first field had the focus, and are lost.

    Should: README: "A view's first field takes the focus when it opens (Simulate,
    every form)" and keys typed fast "land where they were meant": the name field
    holds ``newroute``.
    """
    home = _home(make_home)
    assert asyncio.run(_case_form_typed_fast(home, "anewroute", "name")) == (
        "New route", "newroute")
    assert (home / "control" / "routes").read_bytes() == ROUTES


def test_a_rule_typed_right_after_a_lands_in_the_form(make_home) -> None:
    """On the Routemap view (2) the operator types ``a`` then the rule's fields,
    ``*`` Tab ``example.com`` Tab ``alpha`` (a route of this configuration) at once.

    Today: the form on screen is "Edit routemap line 2" holding that existing rule
    (``*``, ``partner.example``, ``beta``): the keys after ``2`` reached the routemap
    table out of order (the priority Tab and ``2`` first), and the ``e`` of
    ``example`` opened an edit of another rule; the fields typed are lost.

    Should: the "New routemap rule" form, its recipient field holding ``example.com``.
    """
    home = _home(make_home)
    title, recipient = asyncio.run(_case_form_typed_fast(
        home, "2a*\texample.com\talpha", "recipient")) or ("no form", "")
    assert (title.partition(" (")[0], recipient) == ("New routemap rule", "example.com")
    assert (home / "control" / "routemap").read_bytes() == ROUTEMAP
