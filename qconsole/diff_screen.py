"""Confirm an edit: its diff and its findings, then a safe save (or a clear refusal).

Passwords in the diff of ``routes`` are masked on both sides; ``r`` reveals them, as
in the routes view (an explicit action each time the screen opens). The lines are
shown as safe text (a control file's escape sequences are written escaped). As in
:mod:`qconsole.confirm_screen`, any other printable key leaves without saving, and
keys typed before the diff was on screen are no answer to it.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static

from qconsole.confirm_screen import Deliberate
from qconsole.editing import Edit
from qconsole.safe_text import printable
from qremote.control.controlwrite import ConflictError, mask_diff


def diff_text(diff: str) -> Text:
    """A unified diff coloured as ``git diff`` does, every line as safe text."""
    text = Text()
    for line in diff.split("\n")[:-1] if diff.endswith("\n") else diff.split("\n"):
        line = line.removesuffix("\r")  # a CRLF file's line ending, not its text
        style = ("bold" if line.startswith(("+++", "---")) else
                 "green" if line.startswith("+") else
                 "red" if line.startswith("-") else
                 "cyan" if line.startswith("@@") else "")
        text.append(printable(line) + "\n", style=style)
    return text


class DiffScreen(Deliberate, ModalScreen[bool]):
    """Shows the change; ``ctrl+s`` (or Tab to Save, Enter) saves: no single letter
    does (any but ``r`` goes back), and the focus starts on Cancel. Dismissed with
    True when the file on disk is not the one the console shows any more (saved, or
    changed by someone else)."""

    AUTO_FOCUS = "#diff-cancel"
    KEEP = frozenset({"r"})
    PASS = frozenset({"ctrl+s"})  # a held one is ignored by action_save_key
    REPEAT_GUARD = 0.4  # a ctrl+s this soon after the screen or the last one: a held key
    BINDINGS = [Binding("escape", "cancel", "Back"), Binding("ctrl+s", "save_key", "Save"),
                Binding("r", "reveal", "Reveal passwords"),
                Binding("up", "scroll('up')", show=False),
                Binding("down", "scroll('down')", show=False),
                Binding("pageup", "scroll('page_up')", show=False),
                Binding("pagedown", "scroll('page_down')", show=False)]
    MAX_WARNINGS = 3  # more would push the buttons off a 24-line terminal
    DEFAULT_CSS = """
    DiffScreen { align: center middle; }
    DiffScreen > Vertical { width: 100; max-width: 100%; height: auto; max-height: 100%;
        border: thick $primary; padding: 0 1; background: $surface; }
    DiffScreen VerticalScroll { height: auto; max-height: 45vh; }
    DiffScreen #diff-status { height: auto; padding-top: 1; }
    DiffScreen Horizontal { height: auto; padding-top: 1; }
    DiffScreen Button { margin-right: 2; }
    """

    def __init__(self, edit: Edit) -> None:
        super().__init__()
        self.edit = edit
        self.saved = False
        self.conflict = False
        self.revealed = False
        self.last_key = time.monotonic()  # opened by ctrl+s in the form, perhaps held

    def shown_diff(self) -> str:
        """The diff as shown: passwords masked unless revealed."""
        text = self.edit.diff()
        return text if self.revealed else mask_diff(self.edit.name, text)

    def compose(self) -> ComposeResult:
        status = Text("ctrl+s (or Tab to Save, then Enter) writes a backup (.bak), then "
                      "replaces the file atomically; escape or a letter goes back.")
        warnings = self.new_warnings()
        for f in warnings[:self.MAX_WARNINGS]:
            status.append("\n" + printable(f.format()), style="yellow")
        if len(warnings) > self.MAX_WARNINGS:
            status.append(f"\n… and {len(warnings) - self.MAX_WARNINGS} more warnings "
                          "(qremote check lists them)", style="yellow")
        with Vertical():
            yield Static(Text(self.edit.summary, style="bold"))
            # Not in the focus chain: Tab goes from Cancel to Save (the arrow and
            # page keys scroll the diff).
            with VerticalScroll(can_focus=False):
                yield Static(diff_text(self.shown_diff()), id="diff-text")
            yield Static(status, id="diff-status")
            with Horizontal():
                yield Button("Save", variant="primary", compact=True, id="diff-save")
                yield Button("Cancel", compact=True, id="diff-cancel")
        yield Footer()  # its own keys, not those of the view under it

    def on_mount(self) -> None:
        self.call_after_refresh(self._show_first_change)

    def _show_first_change(self) -> None:
        """Scroll the diff to its first changed line (one line of context above): on
        a 24-line terminal the box holds ten lines, and the headers, three lines of
        context and a wrapped long line left the added line below it."""
        scroll = self.query_one(VerticalScroll)
        width = scroll.scrollable_content_region.width
        if width <= 0 or scroll.max_scroll_y <= 0:
            return
        rows = 0
        lines = diff_text(self.shown_diff()).split("\n")
        for i, line in enumerate(lines):
            if line.plain[:1] in "+-" and not line.plain.startswith(("+++", "---")):
                above = lines[i - 1] if i else None
                if above is not None and above.plain[:1] == " ":  # its context
                    rows -= len(above.wrap(self.app.console, width))
                scroll.scroll_to(y=max(0, rows), animate=False)
                return
            rows += len(line.wrap(self.app.console, width))

    def new_warnings(self) -> list:
        """The warnings the edit brings, in any file (a rule deleted leaves its route
        unused): not those the configuration already had (a CRLF file warns on each
        line, and those would hide the buttons)."""
        return self.edit.brought(getattr(self.app, "findings", []), "warning")

    def action_scroll(self, where: str) -> None:
        """Scroll the diff."""
        getattr(self.query_one(VerticalScroll), f"scroll_{where}")()

    def pressed(self, button: Button) -> None:
        if not self.is_active:
            return
        if button.id == "diff-save":
            self.action_save()
        else:
            self.action_cancel()

    def action_reveal(self) -> None:
        """Show or mask the passwords in the diff."""
        self.revealed = not self.revealed
        self.query_one("#diff-text", Static).update(diff_text(self.shown_diff()))

    def action_cancel(self) -> None:
        """Close; nothing is written (or it was written already)."""
        self.dismiss(self.saved or self.conflict)

    def action_save_key(self) -> None:
        """ctrl+s saves, unless it comes with the key that opened the screen, held, or
        was typed before the diff was on screen (a busy machine shows it late: the
        time it took is no guard)."""
        now = time.monotonic()
        held = now - self.last_key < self.REPEAT_GUARD
        self.last_key = now
        key = getattr(self.app, "key_in_hand", None) if self.is_attached else None
        if not held and not (key is not None and key.time < self.shown_at):
            self.action_save()

    def action_save(self) -> None:
        """Write the file; on a conflict nothing is written and the screen says so."""
        if self.saved:
            return
        status = self.query_one("#diff-status", Static)
        try:
            backup = self.edit.save()
        except ConflictError as exc:
            self.conflict = True
            status.update(Text(str(exc), style="bold red"))
            self.query_one("#diff-save", Button).disabled = True
            cancel = self.query_one("#diff-cancel", Button)
            cancel.label = "Close and reload"
            cancel.refresh(layout=True)  # as wide as its new label
            return
        except OSError as exc:
            # (the path: a control file that is a link is written in its target's
            # directory, which may be what cannot be written)
            where = f": {exc.filename}" if exc.strerror and exc.filename else ""
            status.update(Text(f"cannot write control/{self.edit.name}: "
                               f"{exc.strerror or exc}{where}", style="bold red"))
            return
        self.saved = True
        self.app.notify(f"control/{self.edit.name} saved"
                        + (f"; previous file kept as {backup.name}" if backup else ""))
        self.dismiss(True)
