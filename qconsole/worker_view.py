"""The worker view: what ``qremote worker`` is doing, refreshed every second.

The same status document as ``qremote status`` (asked over the worker's socket, in a
thread so that a slow answer never freezes the screen): the worker's counts, its
deliveries in flight with their stage and age, and its cached connections.

What the worker says is outside text (a delivery's host is the recipient's domain,
anyone's choice): every cell and line is shown as safe text, never as markup or
escape sequences. Answers are numbered: one that comes late, after the answer to a
newer question, is not shown.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from qconsole.control_view import cut
from qconsole.safe_text import plain
from qconsole.table import Table, clear_rows
from qremote.worker.protocol import default_socket
from qremote.worker.status import WorkerUnavailable, query, summary

COLUMNS = ("#", "Stage", "Age", "Host", "Recipients", "Client pid")
HOST = COLUMNS.index("Host")
HOST_FLOOR = 16  # cells of a host at least, however narrow the terminal


class WorkerView(Vertical):
    """Deliveries in flight in the worker of the qmail home ``home``."""

    BINDINGS = [Binding("r", "refresh_status", "Refresh")]
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
        self.asked = 0  # questions asked to the worker
        self.answered = 0  # the number of the question whose answer is shown

    def compose(self) -> ComposeResult:
        yield Static("asking the worker...", id="worker-summary")
        yield Table(cursor_type="row", zebra_stripes=True, id="worker-table")
        yield Static("", id="worker-connections")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.action_refresh_status()
        self.set_interval(self.interval, self._tick)

    def _tick(self) -> None:
        if self.answered >= self.asked:  # not while a question is still out
            self.action_refresh_status()

    def action_refresh_status(self) -> int:
        """Ask the worker again; returns the question's number (see ``answered``)."""
        self.asked += 1
        self._fetch(self.asked)
        return self.asked

    @work(thread=True, group="worker-status")
    def _fetch(self, number: int) -> None:
        try:
            doc, error = query(self.socket_path, timeout=2.0), None
        except WorkerUnavailable as exc:
            doc, error = None, str(exc)
        self.app.call_from_thread(self.show, doc, error, number)

    def show(self, doc: dict | None, error: str | None, number: int | None = None,
             ) -> None:
        """Put a status document (or why there is none) on screen; the answer to
        question ``number`` is not shown once a newer one is."""
        if number is not None:
            if number < self.answered:
                return
            self.answered = number
        self.doc, self.error = doc, error
        table = self.query_one(DataTable)
        row = table.cursor_row
        clear_rows(table)  # (and the widths a long host gone gave the columns)
        connections = self.query_one("#worker-connections", Static)
        if doc is None:
            self.query_one("#worker-summary", Static).update(plain(
                f"{error}\nqmail-remote delivers in-process meanwhile. Start one with "
                "`qremote worker` (README: running the worker).", lines=True))
            connections.update("")
            return
        self.query_one("#worker-summary", Static).update(plain("\n".join(summary(doc)),
                                                               lines=True))
        rows = []
        for d in sorted(doc.get("in_flight", []), key=lambda d: d.get("id", 0)):
            age = d.get("age", 0)
            rows.append([plain(str(c)) for c in (
                d.get("id"), d.get("stage"),
                f"{age:.1f} s" if isinstance(age, int | float) else age,
                d.get("host"), d.get("recipients"), d.get("client_pid"))])
        # A long host (anyone's choice) is cut so that the columns after it show.
        others = sum(max([len(title), *(r[i].cell_len for r in rows)])
                     for i, title in enumerate(COLUMNS) if i != HOST)
        width = table.size.width or self.size.width or self.app.size.width  # (hidden: 0)
        width = max(HOST_FLOOR, width - others - 2 * len(COLUMNS) - 2)  # (padding, bar)
        for r in rows:
            if r[HOST].cell_len > width:
                r[HOST] = Text(cut(r[HOST].plain, width), style=r[HOST].style)
            table.add_row(*r)
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))
        cached = doc.get("connections", [])
        lines = [f"Cached connections: {len(cached)}, deliveries that reused one: "
                 f"{doc.get('reused', 0)}"]
        lines += ["  " + "  ".join(f"{k}={v}" for k, v in c.items()) for c in cached]
        connections.update(plain("\n".join(lines), lines=True))
