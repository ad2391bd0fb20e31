"""A confirmation that a stray key cannot give.

The dialog opens with the focus on Cancel: Enter, Escape or any letter leaves
without a change. Confirming takes a deliberate move: Tab (or the arrow keys) to
the action's button, then Enter, or a click.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    """A question; dismissed with True only when the action's button is pressed."""

    AUTO_FOCUS = "#confirm-cancel"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("left,right", "app.focus_next", "Other button", show=False),
    ]
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 70; max-width: 100%; height: auto;
        border: thick $warning; padding: 1 2; background: $surface; }
    ConfirmScreen Horizontal { height: auto; padding-top: 1; }
    ConfirmScreen Button { margin-right: 2; }
    ConfirmScreen .hint { color: $text-muted; padding-top: 1; }
    """

    def __init__(self, question: Text | str, action: str) -> None:
        super().__init__()
        self.question = question if isinstance(question, Text) else Text(question)
        self.action_label = action

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question)
            with Horizontal():
                yield Button("Cancel", compact=True, id="confirm-cancel")
                yield Button(self.action_label, variant="error", compact=True,
                             id="confirm-ok")
            yield Static(Text(f"Tab to {self.action_label} then Enter to confirm; "
                              "Escape cancels."), classes="hint")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-ok")

    def action_cancel(self) -> None:
        """Leave without a change."""
        self.dismiss(False)
