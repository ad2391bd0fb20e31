"""Console defects found in session 5 (issue 11): the footer under a form, the story's
long lines at 80 columns, typed-ahead palette keys."""

from __future__ import annotations

import asyncio

import pytest

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
