"""Session 8: what the key line says while a view's text field has the focus, and
that the keys it names do what it says."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

FIELD_KEYS = {
    "3": ("⏎ Simulate", "esc Leave field", "tab Next field", "^q Quit"),
    "/": ("⏎ Keep filter", "esc Clear filter", "^q Quit"),
}


async def _case_field_keys(home: Path, log: Path, size: tuple[int, int]) -> dict:
    from qconsole.app import QConsole
    from qconsole.log_table import LogTable
    from qconsole.simulate_view import SimulateView
    from tests.test_console import screen_text
    from tests.test_console_story import _ready

    app = QConsole(home, log=log, initial="logs")
    out: dict = {}
    async with app.run_test(size=size) as pilot:
        await _ready(pilot, app)
        await pilot.press("/")  # the filter's field
        await pilot.pause()
        out["/"] = screen_text(app).splitlines()[-1]
        await pilot.press(*"x.org", "enter")  # kept: the table has the focus
        await pilot.pause()
        out["kept"] = (app.focused is app.query_one(LogTable),
                       app.query_one("#log-filter").value)
        await pilot.press("/", "escape")  # cleared
        await pilot.pause()
        out["cleared"] = app.query_one("#log-filter").value
        await pilot.press("3")  # the sender field has the focus
        await pilot.pause()
        out["3"] = screen_text(app).splitlines()[-1]
        await pilot.press("escape")  # left: the view's keys again
        await pilot.pause()
        view = app.query_one(SimulateView)
        out["left"] = app.focused is view.query_one("#simulate-scroll")
    return out


def test_a_view_field_with_the_focus_says_its_keys(tmp_path: Path, demo_home: Path) -> None:
    """At 60x20, 80x24 and 120x40, with the Simulate view's sender field or the logs
    filter's field focused, the key line was empty: the view's own keys are typed
    into the field then, and the field's keys were shown nowhere.

    Should: the key line names Enter, Escape, Tab and Ctrl+Q as they act there, and
    they do it (Enter keeps the filter, Escape clears it; Escape leaves the sender
    field)."""
    from tests.test_console_story import story_log

    log = tmp_path / "current"
    story_log(log, time.time())
    for size in ((60, 20), (80, 24), (120, 40)):
        shown = asyncio.run(_case_field_keys(demo_home, log, size))
        missing = [(where, key) for where, keys in FIELD_KEYS.items() for key in keys
                   if key not in shown[where]]
        assert not missing, (size, missing, shown["3"], shown["/"])
        assert shown["kept"] == (True, "x.org"), shown["kept"]
        assert shown["cleared"] == "" and shown["left"], shown


def test_a_row_whose_report_is_over_64_kb_shows_its_route(tmp_path: Path) -> None:
    """A deferral whose report (a remote's long reply) makes its log line 200 KB: the
    row read the line's first 64 KB only, so its detail line (the line's end) was not
    seen: route ``?``, while ``route:relay`` found the row.

    Should: the row shows the route, local IP and remote of its detail line, and says
    how much of the report is not shown."""
    from qconsole.logindex import LogIndex
    from qconsole.logsource import LogSource
    from tests.test_logs import _search, delivery_lines

    now = time.time()
    long_text = ("Remote host said: 451 " + "x" * 200_000 + "/route=relay local=127.0.0.2 "
                 "remote=127.0.0.9:25 tls=none auth=none")
    log = tmp_path / "current"
    log.write_text("\n".join(delivery_lines(now, 1, 1, "a@x.org", "deferral", long_text)
                             + delivery_lines(now + 1, 2, 2, "b@x.org", "success",
                                              "ok/route=other local=- remote=- tls=none "
                                              "auth=none")) + "\n")
    index = LogIndex(LogSource(log))
    found = _search(index, "route:relay")
    assert len(found) == 1
    row = found.row(0)
    assert (row.recipient, row.route, row.local, row.remote) == (
        "a@x.org", "relay", "127.0.0.2", "127.0.0.9:25"), row
    assert "bytes not shown]" in row.reply and len(row.reply) < 70_000
    assert row.reply.startswith("Remote host said: 451 xxx")
