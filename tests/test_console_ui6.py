"""Console defects found in session 5 (issue 11): the footer under a form, the story's
long lines at 80 columns, typed-ahead palette keys."""

from __future__ import annotations

import asyncio

import pytest
from textual import events

from qconsole.app import QConsole
from qconsole.form_screen import FormScreen
from tests.test_console import screen_text
from tests.test_console_edit import _home


@pytest.mark.parametrize("key", ["e", "a"])
def test_the_footer_under_a_form_shows_the_forms_keys(make_home, key: str) -> None:
    """Found in tmux: under a form the footer showed the routes view's keys (``a``
    Add, ``x`` Delete, ``r`` Reveal) and the views' numbers, none of which acts there.
    Should: the form's own keys."""

    async def case() -> str:
        app = QConsole(_home(make_home))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.press(key)
            await pilot.pause(0.3)
            assert isinstance(app.screen, FormScreen)
            return screen_text(app).splitlines()[-1]

    footer = asyncio.run(case())
    assert "OK" in footer and "Cancel" in footer and "Next field" in footer, footer
    for other in ("Add", "Delete", "Duplicate", "Reveal", "Routemap", "Quit"):
        assert other not in footer, footer


async def _palette_keys(app: QConsole, pilot, query: str, *keys: str,
                        burst: str) -> None:
    """ctrl+p, then the query and the keys: in one read (each key queued before the
    first is handled) or each once the palette has answered the one before."""
    await pilot.press("ctrl+p")
    await pilot.pause(0.3)
    typed = [*query, *keys]
    if burst == "read":
        for key in typed:
            app.post_message(events.Key(key, key if len(key) == 1 else None))
    else:
        for key in typed:
            await pilot.press(key)
            await pilot.pause(0.3)
    for _ in range(20):  # what the palette ran settles
        await pilot.pause(0.05)


@pytest.mark.parametrize("burst", ["slow", "read"])
@pytest.mark.parametrize(("keys", "tab"), [(("down", "enter"), "routemap"),
                                          (("down", "down", "up", "enter"), "routemap"),
                                          (("down", "down", "enter"), "routes")])
def test_down_in_the_palette_moves_in_the_list_the_query_gave(
        make_home, burst: str, keys: tuple[str, ...], tab: str) -> None:
    """``route``, Down, Enter in one read (a fast typist, a paste). Before: Down moved
    in the list of every command, which the search for ``route`` then replaced with
    its top match highlighted, and Enter ran that (Routes). Should: the second match,
    Routemap, as when typed slowly. (``route`` lists Routes, Routemap, Add route:
    twice Down is Add route, a form over the routes view.)"""

    async def case() -> tuple[str, str]:
        app = QConsole(_home(make_home))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await _palette_keys(app, pilot, "route", *keys, burst=burst)
            return (type(app.screen).__name__,
                    app.screen_stack[0].query_one("TabbedContent").active)

    screen, active = asyncio.run(case())
    assert active == tab, (screen, active)
    assert screen == (FormScreen.__name__ if tab == "routes" else "Screen"), screen
