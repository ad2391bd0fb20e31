"""The failover memory view: (local IP, remote, port) pairs skipped after a connect
timed out; clear one or all (the same file as ``qremote tcpto`` / ``tcpok``), each
after a confirmation whose default is Cancel."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from qconsole.confirm_screen import ConfirmScreen
from qconsole.control_view import refuse_read_only
from qconsole.table import Table
from qremote.delivery.tcpto import EXPIRY, FILE, Key, Memory


class TcptoView(Vertical):
    """Pairs currently skipped by qmail-remote, oldest first."""

    BINDINGS = [
        Binding("x,delete", "clear_one", "Clear"),
        Binding("X", "clear_all", "Clear all"),
    ]
    # The table takes what the note leaves: many pairs never push it off the screen.
    DEFAULT_CSS = """
    TcptoView #tcpto-table { height: 1fr; }
    TcptoView #tcpto-note { height: auto; padding: 0 1; }
    """

    def __init__(self, memory: Memory, clock: Callable[[], float] = time.time,
                 **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.memory = memory
        self.clock = clock
        self.keys: list[Key] = []

    def compose(self) -> ComposeResult:
        yield Table(cursor_type="row", zebra_stripes=True, id="tcpto-table")
        yield Static(f"A pair whose connect timed out is tried last for {EXPIRY // 60} "
                     f"minutes. File: {FILE} in the qmail home.", id="tcpto-note")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("Local IP", "Remote address", "Port",
                                              "Timed out", "Skipped for")
        self.action_reload()
        self.set_interval(5.0, self.action_reload)

    def on_key(self, event: events.Key) -> None:
        refuse_read_only(self, event)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Clearing is an edit: disabled with --read-only."""
        if action.startswith("clear") and getattr(self.app, "read_only", False):
            return None
        return True

    def action_reload(self) -> None:
        """Read the file again."""
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        now = self.clock()
        entries = sorted(self.memory.read().items(), key=lambda kv: kv[1])
        self.keys = [k for k, _ in entries]
        for (local, address, port), when in entries:
            table.add_row(local, address, str(port), f"{now - when:.0f} s ago",
                          f"{max(0, EXPIRY - (now - when)) / 60:.0f} min more")
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))

    def action_clear_one(self) -> None:
        """Forget the selected pair (after a confirmation): qmail-remote tries it in
        its turn again."""
        table = self.query_one(DataTable)
        if not self.keys:
            return
        key = self.keys[min(table.cursor_row, len(self.keys) - 1)]

        def clear(yes: bool | None) -> None:
            if yes:
                self.memory.forget(key)
                self.app.notify(f"Cleared {key[0]} → {key[1]}:{key[2]}", markup=False)
            self.action_reload()

        self.app.push_screen(ConfirmScreen(Text(
            f"Forget {key[0]} → {key[1]}:{key[2]}? qmail-remote will try this pair in "
            "its turn again, even if it still times out."), "Clear"), clear)

    def action_clear_all(self) -> None:
        """Forget every pair (after a confirmation)."""
        if not self.keys:
            self.app.notify("The failover memory is empty.")
            return
        count = len(self.keys)

        def clear(yes: bool | None) -> None:
            if yes:
                self.memory.forget(None)
                self.app.notify(f"Cleared {count} pair(s)")
            self.action_reload()

        self.app.push_screen(ConfirmScreen(Text(
            f"Forget all {count} pair(s) of the failover memory? qmail-remote will try "
            "each in its turn again, even those that still time out."), "Clear all"),
            clear)
