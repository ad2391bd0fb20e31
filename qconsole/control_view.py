"""What the routes and routemap views share: a table of one control file's lines,
its findings below, edit keys that ``--read-only`` disables, and the edit flow
(form → diff → save → reload)."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

from qconsole.diff_screen import DiffScreen
from qconsole.editing import Edit
from qconsole.findings_panel import FindingsPanel
from qconsole.form_screen import Field, FormScreen
from qremote.config import Config
from qremote.findings import Finding

EDIT_ACTIONS = {"add", "edit", "duplicate", "delete", "move_up", "move_down"}


class ControlView(Vertical):
    """A table of control/``NAME``; subclasses fill it and build the edits."""

    NAME = ""

    def __init__(self, config: Config, findings: list[Finding], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.findings = self.relevant(findings)
        self.follow: str | None = None

    def relevant(self, findings: list[Finding]) -> list[Finding]:
        """The findings this view shows."""
        return [f for f in findings if f.file == self.NAME]

    def compose(self) -> ComposeResult:
        yield DataTable(cursor_type="row", zebra_stripes=True, id=f"{self.NAME}-table")
        yield FindingsPanel(id=f"{self.NAME}-findings")

    def on_mount(self) -> None:
        self.refresh_view()

    def fill(self, table: DataTable) -> None:
        """Add the columns and rows (subclasses)."""
        raise NotImplementedError

    def refresh_view(self) -> None:
        """Refill the table, keeping the cursor where it was."""
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear(columns=True)
        self.fill(table)
        if self.follow is not None:
            try:
                row = table.get_row_index(self.follow)
            except Exception:  # the row is gone: keep the position
                pass
            self.follow = None
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))
        self.query_one(FindingsPanel).show(self.findings, self.NAME)

    def reload(self, config: Config, findings: list[Finding]) -> None:
        """Show a freshly read configuration."""
        self.config = config
        self.findings = self.relevant(findings)
        self.refresh_view()

    def selected_key(self) -> str | None:
        """The row key under the cursor, if any."""
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Edit keys show as disabled in --read-only mode."""
        if action in EDIT_ACTIONS and getattr(self.app, "read_only", False):
            return None
        return True

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if self.check_action("edit", ()):
            self.run_action("edit")

    def new_edit(self, summary: str) -> Edit:
        """An edit of this view's file, from the configuration as shown."""
        return Edit(self.config, self.NAME, summary)

    def open_form(self, title: str, fields: tuple[Field, ...], values: dict[str, str],
                  build: Callable[[dict[str, str]], Edit]) -> None:
        """Ask for the fields, then confirm and save."""
        self.app.push_screen(FormScreen(title, fields, values, build), self.confirm)

    def confirm(self, edit: Edit | None) -> None:
        """Show the diff of a valid edit; saving reloads the whole console."""
        if edit is None:
            return
        if edit.after == edit.before:
            self.app.notify("No change.")
            return
        errors = edit.new_errors()
        if errors:
            self.app.notify("\n".join(f.format() for f in errors), title="Refused",
                            severity="error", timeout=10)
            return
        self.follow = edit.select
        self.app.push_screen(DiffScreen(edit), self.after_save)

    def after_save(self, changed: bool | None) -> None:
        if changed:
            self.app.reload_config(saved=True)
