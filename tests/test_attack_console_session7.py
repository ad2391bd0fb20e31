"""Issue 11's logs view tried again as an operator would (session 7): qconsole in tmux at
80x24, 120x40 and 200x60 on 1 GB logs (multilog, syslog, splogger, a busy multilog
directory with rotated files) and logs made by hand, filters typed as fast as a person
does. Each test is one stumble found there, reproduced with Pilot.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Input

from qconsole.app import QConsole
from qconsole.delivery_screen import DeliveryScreen
from tests.test_console_keys import _log, _ready

# ctrl+q while the filter box has the focus did nothing: the filter of a 1 GB log was
# still searching, the operator pressed ctrl+q to leave, and the console stayed (quit
# was a single key, and single keys are typed in a text field). A control key is never
# text: ctrl+q quits from the filter box, Simulate's fields and the story alike.

async def _case_ctrl_q(log: Path, keys: tuple[str, ...]) -> tuple[bool, str]:
    app = QConsole(Path("/nonexistent-qmail-home"), log=log)
    async with app.run_test(size=(80, 24)) as pilot:
        await _ready(pilot)
        await pilot.press(*keys)
        await pilot.pause()
        where = "Input" if isinstance(app.focused, Input) else type(
            app.screen).__name__
        await pilot.press("ctrl+q")
        await pilot.pause()
        return app.is_running, where


def test_ctrl_q_quits_from_the_filter_box(tmp_path: Path) -> None:
    running, where = asyncio.run(_case_ctrl_q(_log(tmp_path), ("slash", *"anne")))
    assert where == "Input" and not running


def test_ctrl_q_quits_from_simulate_and_the_story(tmp_path: Path) -> None:
    log = _log(tmp_path)
    running, where = asyncio.run(_case_ctrl_q(log, ("3",)))
    assert where == "Input" and not running
    running, where = asyncio.run(_case_ctrl_q(log, ("enter",)))
    assert where == DeliveryScreen.__name__ and not running
