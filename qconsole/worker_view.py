"""The worker view: what ``qremote worker`` is doing, refreshed every second.

The same status document as ``qremote status`` (asked over the worker's socket, in a
thread so that a slow answer never freezes the screen): the worker's counts, its
deliveries in flight with their stage and age, and its cached connections.
"""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from qremote.worker.protocol import default_socket
from qremote.worker.status import WorkerUnavailable, query, summary


class WorkerView(Vertical):
    """Deliveries in flight in the worker of the qmail home ``home``."""

    BINDINGS = [Binding("g", "refresh_status", "Refresh")]
    DEFAULT_CSS = """
    WorkerView #worker-summary, WorkerView #worker-connections { height: auto;
        padding: 0 1; }
    """

    def __init__(self, home: Path, interval: float = 1.0, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.socket_path = default_socket(home)
        self.interval = interval
        self.doc: dict | None = None
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("asking the worker...", id="worker-summary")
        yield DataTable(cursor_type="row", zebra_stripes=True, id="worker-table")
        yield Static("", id="worker-connections")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("#", "Stage", "Age", "Host", "Recipients",
                                              "Client pid")
        self.action_refresh_status()
        self.set_interval(self.interval, self.action_refresh_status)

    def action_refresh_status(self) -> None:
        """Ask the worker again."""
        self._fetch()

    @work(thread=True, exclusive=True, group="worker-status")
    def _fetch(self) -> None:
        try:
            doc, error = query(self.socket_path, timeout=2.0), None
        except WorkerUnavailable as exc:
            doc, error = None, str(exc)
        self.app.call_from_thread(self.show, doc, error)

    def show(self, doc: dict | None, error: str | None) -> None:
        """Put a status document (or why there is none) on screen."""
        self.doc, self.error = doc, error
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        connections = self.query_one("#worker-connections", Static)
        if doc is None:
            self.query_one("#worker-summary", Static).update(
                f"{error}\nqmail-remote delivers in-process meanwhile. Start one with "
                "`qremote worker` (README: running the worker).")
            connections.update("")
            return
        self.query_one("#worker-summary", Static).update("\n".join(summary(doc)))
        for d in sorted(doc.get("in_flight", []), key=lambda d: d.get("id", 0)):
            table.add_row(str(d.get("id")), str(d.get("stage")), f"{d.get('age', 0):.1f} s",
                          str(d.get("host")), str(d.get("recipients")),
                          str(d.get("client_pid")))
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))
        cached = doc.get("connections", [])
        lines = [f"Cached connections: {len(cached)}, deliveries that reused one: "
                 f"{doc.get('reused', 0)}"]
        lines += ["  " + "  ".join(f"{k}={v}" for k, v in c.items()) for c in cached]
        connections.update("\n".join(lines))
