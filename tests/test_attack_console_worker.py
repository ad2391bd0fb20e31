"""Adversarial tests of the Worker view (key 6) with a real worker and deliveries in
flight whose host comes from outside.

qmail-remote's first argument, the host, is the recipient's domain: anyone can make
it what they like (a bounce goes to the envelope sender's domain, e.g. ``MAIL
FROM:<x@[/oops]>`` to a local user that does not exist). The worker shows it in its
status document; the console must show it as text, never as markup and never as
escape sequences for the terminal (README: "Nothing from a log reaches the terminal
raw"), and every table takes j/k, Home/End and g/G.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from textual.widgets import DataTable

from qconsole.app import QConsole
from qconsole.worker_view import WorkerView
from qremote.client.build import PYCLIENT
from tests.support.clients import relay_files, worker_home
from tests.support.pausing import PausingServer
from tests.support.rspawn import spawn
from tests.support.workerproc import WorkerProcess
from tests.test_console import screen_text

SIZE = (120, 40)
HIJACK = "x\x1b]0;HIJACK\x07\x1b[2J\x1b[31m.test"  # sets the title, clears the screen


@contextmanager
def deliveries_in_flight(make_home, hosts: list[str]) -> Iterator[Path]:
    """A worker with one delivery in flight per host (paused at MAIL FROM by the
    server); the qmail home is yielded, everything stopped afterwards."""
    server = PausingServer("mail").start()
    threads: list[threading.Thread] = []
    worker = None
    try:
        home = worker_home(make_home, **relay_files(server.port))
        worker = WorkerProcess(home).start()
        for host in hosts:
            argv = [sys.executable, "-I", "-S", str(PYCLIENT), host, "a@b.org",
                    f"y@{host}"]
            thread = threading.Thread(target=spawn, args=(
                argv, b"Subject: t\n\nhi\n", {"QMAIL_HOME": str(home)}), daemon=True)
            thread.start()
            threads.append(thread)
        server.wait_paused(len(hosts))
        yield home
    finally:
        server.release()
        for thread in threads:
            thread.join(60)
        if worker is not None:
            worker.close()
        server.stop()


async def _shown(pilot, app: QConsole, rows: int) -> DataTable:
    """The worker view, once its table holds ``rows`` rows."""
    await pilot.press("6")
    view = app.query_one(WorkerView)
    table = app.query_one("#worker-table", DataTable)
    for _ in range(600):  # the view asks the worker every second by itself
        if table.row_count == rows:
            break
        await pilot.pause(0.1)
    assert table.row_count == rows, view.error
    await pilot.pause()
    return table


async def _case_markup_host(home: Path) -> tuple[bool, str]:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await _shown(pilot, app, 2)
        await pilot.pause(0.3)
        return app.is_running, screen_text(app)


def test_a_host_that_looks_like_markup_neither_crashes_nor_styles(make_home) -> None:
    """The operator opens the Worker view (6) while two deliveries are in flight, to
    the hosts ``[/oops]`` and ``[bold red]evil.test`` (recipient domains anyone can
    choose).

    Today: the console dies with a traceback, ``MarkupError: closing tag '[/oops]' at
    position 0 doesn't match any open tag`` (the worker table's cells are plain
    strings, which DataTable reads as Rich markup; ``[bold red]`` would style the
    rest). Seen in tmux with a real worker.

    Should: both hosts shown as written, the console still running.
    """
    with deliveries_in_flight(make_home, ["[/oops]", "[bold red]evil.test"]) as home:
        running, shown = asyncio.run(asyncio.wait_for(_case_markup_host(home), 120))
    assert running
    assert "[/oops]" in shown and "[bold red]evil.test" in shown


async def _case_escape_host(home: Path) -> str:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await _shown(pilot, app, 1)
        return screen_text(app)


def test_escape_sequences_in_a_host_never_reach_the_terminal(make_home) -> None:
    """The operator opens the Worker view (6) while a delivery is in flight to the
    host ``x<ESC>]0;HIJACK<BEL><ESC>[2J<ESC>[31m.test``.

    Today: the escape sequences are written to the terminal as they are: in tmux the
    pane's title became ``HIJACK``, the screen was cleared at every refresh (every
    second: the view is unusable) and the rest of the line turned red.

    Should: the host shown escaped (``x\\x1b]0;HIJACK\\x07...``), as the logs view
    does with log text (qconsole.safe_text.plain).
    """
    with deliveries_in_flight(make_home, [HIJACK]) as home:
        shown = asyncio.run(asyncio.wait_for(_case_escape_host(home), 120))
    assert "\x1b" not in shown and "\x07" not in shown
    assert "x\\x1b]0;HIJACK\\x07" in shown


async def _case_table_keys(home: Path) -> list[int]:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        table = await _shown(pilot, app, 3)
        rows = []
        for key in ("G", "k", "g", "j", "end", "home"):
            await pilot.press(key)
            rows.append(table.cursor_row)
        return rows


def test_the_worker_table_takes_j_k_g_and_G(make_home) -> None:
    """Three deliveries in flight; on the Worker view the operator presses ``G``,
    ``k``, ``g``, ``j``, End, Home, as in every other table.

    Today: the cursor stays on the first row for all six keys: the table is a plain
    DataTable, not qconsole.table's Table (``j``/``k``/``G`` unbound, End and Home
    only scroll), and the view binds ``g`` to "Refresh".

    Should: README "Every table takes up/down and j/k, Home/End and g/G": the cursor
    goes to rows 2, 1, 0, 1, 2, 0 (the refresh needs another key).
    """
    hosts = ["a.test", "b.test", "c.test"]
    with deliveries_in_flight(make_home, hosts) as home:
        rows = asyncio.run(asyncio.wait_for(_case_table_keys(home), 120))
    assert rows == [2, 1, 0, 1, 2, 0]


def test_qremote_status_never_writes_escape_sequences() -> None:
    """(qremote's lane, same vector.) ``qremote status`` while a delivery to the host
    above is in flight: seen in tmux, ``qremote status | cat -v`` shows
    ``x^[]0;HIJACK^G^[[2J.test``: the terminal of the operator who runs it gets the
    title and the clear screen. Should: the host written with its control characters
    escaped (or as ``?``, as reports do)."""
    from qremote.worker.status import render

    doc = {"pid": 1, "uid": 0, "uptime": 1.0, "socket": "/s", "in_flight": [
        {"id": 1, "stage": "mail", "age": 1.0, "host": HIJACK, "recipients": 1,
         "client_pid": 2}], "connections": []}
    text = render(doc)
    assert "\x1b" not in text and "\x07" not in text
