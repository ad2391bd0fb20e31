"""What the routes and routemap views share: a table of one control file's lines,
its findings below, edit keys that ``--read-only`` disables, and the edit flow
(form → diff → save → reload)."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.cells import cell_len, set_cell_size
from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import DataTable

from qconsole.diff_screen import DiffScreen
from qconsole.editing import Edit
from qconsole.findings_panel import FindingsPanel
from qconsole.form_screen import Field, FormScreen
from qconsole.safe_text import plain
from qconsole.table import Table
from qremote.control.config import Config
from qremote.control.controlfile import Line
from qremote.control.findings import Finding

EDIT_ACTIONS = {"add", "edit", "duplicate", "delete", "move_up", "move_down",
                "clear_one", "clear_all"}
BAD = "bad:"  # the row key prefix of a line that does not parse


def say_read_only(app: App) -> None:
    """Say why nothing is changed, once while the notice is on screen (a burst of
    edit keys stacked one notice each over the view)."""
    now = time.monotonic()
    if now - getattr(app, "_read_only_said", -app.NOTIFICATION_TIMEOUT) \
            < app.NOTIFICATION_TIMEOUT:
        return
    app._read_only_said = now  # type: ignore[attr-defined]
    app.notify(f"Read-only: {app.read_only_reason}; nothing is changed.",  # type: ignore[attr-defined]
               title="Read-only", severity="warning", markup=False)


def refuse_read_only(widget: Widget, event: events.Key) -> bool:
    """In --read-only mode, an edit key says why nothing happens (and is consumed)."""
    app = widget.app
    if not getattr(app, "read_only", False):
        return False
    for binding in widget._bindings.key_to_bindings.get(event.key, ()):
        if binding.action in EDIT_ACTIONS or (event.key == "enter"
                                              and isinstance(widget, ControlView)):
            say_read_only(app)
            event.stop()
            return True
    return False


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` terminal cells (a wide character takes two)."""
    if cell_len(text) <= width:
        return text
    return set_cell_size(text, max(1, width - 1)).rstrip() + "…"


class ControlView(Vertical):
    """A table of control/``NAME``; subclasses fill it and build the edits."""

    NAME = ""
    # The table takes what the findings below leave: a long file never pushes them
    # (and the routes view's selected line) off the screen.
    DEFAULT_CSS = "ControlView > DataTable { height: 1fr; }"

    def __init__(self, config: Config, findings: list[Finding], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.findings = self.relevant(findings)
        self.follow: str | None = None

    def relevant(self, findings: list[Finding]) -> list[Finding]:
        """The findings this view shows."""
        return [f for f in findings if f.file == self.NAME]

    def compose(self) -> ComposeResult:
        yield Table(cursor_type="row", zebra_stripes=True, id=f"{self.NAME}-table")
        yield FindingsPanel(id=f"{self.NAME}-findings")

    def on_mount(self) -> None:
        self.refresh_view()

    def on_resize(self) -> None:
        # On a short terminal the findings give way to the table (the panel's first
        # line counts them all): at 60x20 they left it one row.
        from qconsole.findings_panel import MAX

        self.query_one(FindingsPanel).fit(max(4, min(MAX + 2, self.size.height // 3)))

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

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        await self._edit_selected()  # a click on the row (Enter: on_key)

    async def _edit_selected(self) -> None:
        if self.check_action("edit", ()):
            await self.run_action("edit")
        elif getattr(self.app, "read_only", False):
            say_read_only(self.app)

    async def on_key(self, event: events.Key) -> None:
        if refuse_read_only(self, event):
            return
        if event.key == "enter" and self.app.focused is self.query_one(DataTable):
            event.stop()  # edit now, not when the table's message comes: the keys
            event.prevent_default()  # typed next are for the form
            await self._edit_selected()

    def bad_lines(self, known: set[int]) -> list[Line]:
        """Content lines of the file that gave no entry (they did not parse)."""
        source = self.config.files.get(self.NAME)
        if source is None or not source.exists:
            return []
        return [ln for ln in source.lines if ln.is_content and ln.number not in known]

    def bad_row(self, line: Line, width: int, why_width: int | None = None,
                short: bool = False) -> list[Text]:
        """The cells of a line that does not parse: its number, its text and why, in
        red. ``why_width`` cuts the reason (the findings below give it whole), so that
        it never pushes the next columns (AUTH, TLS) off the screen; ``short`` says
        only the line number, for a narrow table."""
        from qconsole import theme
        from qconsole.logformat import decode

        error = theme.style(self.app, "error")
        why = self.bad_reason(line)
        raw = self.shown_text(decode(line.raw))
        label = f"line {line.number}" if short else f"line {line.number}: does not parse"
        return [Text(label, style=error), plain(cut(raw, width), error),
                plain(why if why_width is None else cut(why, why_width), error)]

    def bad_reason(self, line: Line) -> str:
        """Why a line did not parse (``check``'s error for it)."""
        return next((f.text for f in self.findings
                     if f.line == line.number and f.severity == "error"), "not read")

    def shown_text(self, raw: str) -> str:
        """A line as it may be shown: in ``routes``, nothing after the USER field (a line
        that does not parse cannot tell its PASS from what follows: a ';' in a password
        splits it), whatever ``r`` reveals."""
        if self.NAME != "routes":
            return raw
        from qremote.control.routes import MASK

        fields = raw.split(";")
        if not "".join(fields[4:]).strip():
            return raw  # no PASS, nothing after it
        return ";".join([*fields[:4], MASK])

    def bad_selected(self) -> Line | None:
        """The unparsed line under the cursor, if the cursor is on one."""
        key = self.selected_key()
        if key is None or not key.startswith(BAD):
            return None
        number = int(key[len(BAD):])
        source = self.config.files.get(self.NAME)
        return source.lines[number - 1] if source is not None else None

    def new_edit(self, summary: str) -> Edit:
        """An edit of this view's file, from the configuration as shown."""
        return Edit(self.config, self.NAME, summary)

    def open_form(self, title: str, fields: tuple[Field, ...], values: dict[str, str],
                  build: Callable[[dict[str, str]], Edit],
                  suggested: frozenset[str] = frozenset()) -> None:
        """Ask for the fields, then confirm and save; going back from the diff opens
        the form again, as it was filled. ``suggested``: the fields whose value is a
        proposal, replaced by what is typed."""
        def filled(edit: Edit | None) -> None:
            if edit is not None:
                again = edit.values or values
                self.confirm(edit, lambda: self.open_form(title, fields, again, build))

        self.app.push_screen(FormScreen(title, fields, values, build, suggested), filled)

    def confirm(self, edit: Edit | None, back: Callable[[], None] | None = None) -> None:
        """Show the diff of a valid edit; saving reloads the whole console."""
        if edit is None:
            return
        if edit.after == edit.before:
            self.app.notify("No change.")
            return
        errors = edit.new_errors()
        if errors:
            self.app.notify("\n".join(f.format() for f in errors), title="Refused",
                            severity="error", timeout=10, markup=False)
            return
        self.follow = edit.select

        def done(changed: bool | None) -> None:
            if changed:
                self.app.reload_config(saved=True)
            elif back is not None:
                back()

        self.app.push_screen(DiffScreen(edit), done)
