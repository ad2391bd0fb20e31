"""The console's worker view (key 6): the same status as ``qremote status``, live."""

from __future__ import annotations

import asyncio
import threading

from textual.widgets import DataTable, Static

from qconsole.app import QConsole
from qconsole.worker_view import WorkerView
from tests.support.clients import clients, relay_files, worker_home
from tests.support.pausing import PausingServer
from tests.support.rspawn import Spawned, spawn
from tests.support.workerproc import WorkerProcess

__all__ = ["clients"]

SIZE = (120, 40)


async def _refreshed(pilot, view: WorkerView) -> None:
    """The view shows the worker's answer to a question asked now (the view's own
    refresh, every second, may ask meanwhile: an older answer never counts)."""
    asked = view.action_refresh_status()
    for _ in range(600):
        if view.answered >= asked:
            break
        await pilot.pause(0.05)
    assert view.answered >= asked, "the worker view got no answer"
    await pilot.pause()


async def _case_live(home, server: PausingServer, clients) -> None:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        view = app.query_one(WorkerView)
        await _refreshed(pilot, view)
        assert view.doc is None and "no worker is running" in (view.error or "")
        assert "delivers in-process" in str(app.query_one("#worker-summary",
                                                          Static).render())
        worker = WorkerProcess(home).start()
        try:
            done: list[Spawned] = []
            argv, env = clients.command("c", ["x.org", "a@b.org", "y@x.org"])
            thread = threading.Thread(target=lambda: done.append(
                spawn(argv, b"Subject: t\n\nhi\n", env)))
            thread.start()
            server.wait_paused()
            await _refreshed(pilot, view)
            table = app.query_one("#worker-table", DataTable)
            assert table.row_count == 1
            row = [str(cell) for cell in table.get_row_at(0)]
            assert (row[1], row[3], row[4]) == ("mail", "x.org", "1")
            summary = str(app.query_one("#worker-summary", Static).render())
            assert "in flight 1" in summary and f"worker pid {worker.proc.pid}" in summary
            assert "Cached connections: 0" in str(app.query_one("#worker-connections",
                                                                Static).render())
            server.release()
            thread.join(60)
            assert done[0].letter == "K"
            worker.wait_line(lambda line: line.startswith("delivery 1:"))
            # the view refreshes by itself (every second)
            for _ in range(600):
                if view.doc is not None and view.doc.get("deliveries") == 1:
                    break
                await pilot.pause(0.1)
            assert table.row_count == 0
            assert "deliveries 1 (K 1" in str(app.query_one("#worker-summary",
                                                             Static).render())
        finally:
            worker.close()


def test_worker_view_follows_the_worker(clients, make_home) -> None:
    server = PausingServer("mail").start()
    try:
        home = worker_home(make_home, **relay_files(server.port))
        clients.use(home)
        asyncio.run(asyncio.wait_for(_case_live(home, server, clients), 120))
    finally:
        server.stop()
