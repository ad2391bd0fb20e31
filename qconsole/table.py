"""The console's tables: a DataTable with the keys operators expect in every table
(``j``/``k``, ``g``/``G``, Home/End to the first and last row)."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable


class Table(DataTable):
    """A row-cursor table with vi and Home/End keys."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g,home", "first_row", "First", show=False),
        Binding("G,end", "last_row", "Last", show=False),
    ]

    def watch_virtual_size(self) -> None:
        # Columns are measured when the app is idle; rows drawn before (a refill
        # on a resize is drawn at once) were cached with the header's widths and
        # stayed so. Measured columns change the virtual size: draw every row again.
        self.notify_style_update()

    def action_first_row(self) -> None:
        """To the first row."""
        if self.row_count:
            self.move_cursor(row=0)

    def action_last_row(self) -> None:
        """To the last row."""
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)


def clear_rows(table: DataTable) -> None:
    """Remove the rows, and forget the widths they gave the columns: DataTable's
    ``clear()`` keeps each column as wide as its widest cell ever (a long host or
    route name gone, or a terminal made narrower, held the next columns off the
    screen)."""
    table.clear()
    for column in table.columns.values():
        column.content_width = column.label.cell_len
