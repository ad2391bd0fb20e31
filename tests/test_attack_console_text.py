"""Adversarial tests: text from a control file that never reaches the terminal raw.

qconsole/safe_text.py: "Text from outside (logs, control files, remote replies) made
safe for the terminal ... escape sequences are shown escaped, never sent to the
terminal". The routes view does so for a line that does not parse; the screens that
open from that row must too.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from qconsole.app import QConsole
from qconsole.diff_screen import DiffScreen
from qconsole.form_screen import FormScreen
from tests.test_console import screen_text
from tests.test_console_edit import ROUTEMAP, ROUTES

SIZE = (120, 40)
GARBAGE = b"bad\x1b]0;HIJACK\x07\x1b[2J line"  # sets the title, clears the screen


def _home(make_home) -> Path:
    return make_home(routes=ROUTES.replace(b"gamma;;;;", b"gamma;;;;\n" + GARBAGE + b"\n"),
                     routemap=ROUTEMAP)


async def _case(home: Path, key: str) -> tuple[str, str, str]:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = screen_text(app)
        await pilot.press("G", key)  # the last row: the line that does not parse
        await pilot.pause()
        return type(app.screen).__name__, table, screen_text(app)


def test_deleting_a_garbage_routes_line_shows_it_escaped(make_home) -> None:
    """``control/routes`` holds a line with escape sequences (a bad paste; it does not
    parse). The routes view shows it escaped, as a red row. The operator selects it
    (``G``) and presses ``x`` to delete it.

    Today: the diff screen writes the line as it is: ``ESC]0;HIJACK ESC[2J`` goes to
    the terminal (DiffScreen's diff_text puts the raw diff into a Text).

    Should: the diff shows the line escaped (``bad\\x1b]0;HIJACK...``), as the table
    does.
    """
    screen, table, shown = asyncio.run(_case(_home(make_home), "x"))
    assert screen == DiffScreen.__name__
    assert "\x1b" not in table  # the table is safe
    assert "\x1b" not in shown, shown.replace("\x1b", "<ESC>")
    assert "bad\\x1b]0" in shown


def test_fixing_a_garbage_routes_line_shows_it_escaped(make_home) -> None:
    """Same file; the operator selects the line and presses ``e`` to fix it in the
    form (README: a line that does not parse "can be fixed (``e`` opens the form on its
    fields)").

    Today: the form's fields hold the raw text (``bad ESC]0`` and ``HIJACK ESC[2J
    line``) and the Input widgets write it to the terminal.

    Should: nothing raw on screen (the fields show the control characters escaped, or
    the form refuses them with a message).
    """
    screen, _, shown = asyncio.run(_case(_home(make_home), "e"))
    assert screen == FormScreen.__name__
    assert "\x1b" not in shown, shown.replace("\x1b", "<ESC>")
