"""A confirmation that a stray key cannot give.

The dialog opens with the focus on Cancel: Enter, Escape or any printable key
leaves without a change (a line typed while the operator thought they were in a
text field never gets past its first letter). Confirming takes a deliberate move:
Tab (or the arrow keys) to the action's button, then Enter, or a click. A key typed
before the dialog was on screen (typed ahead, or the rest of a burst) is no answer
to it: a printable one cancels, any other is ignored, so a stray Tab and Enter
never reach the action's button.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class Deliberate:
    """Key rules of a screen that asks before it destroys (mixed into a ModalScreen
    that has ``action_cancel``): printable keys cancel, except those in ``KEEP``
    (bound to something harmless); keys typed before the screen was shown are no
    answer. ``PASS`` keys are left to their bindings even then (they guard
    themselves)."""

    KEEP: frozenset[str] = frozenset()
    PASS: frozenset[str] = frozenset()
    shown_at = float("inf")

    def on_mount(self) -> None:
        from textual._time import get_time  # the clock of events.Key.time

        self.shown_at = get_time()

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape" or event.key in self.PASS:
            return
        early = event.time < self.shown_at
        focused = self.focused  # type: ignore[attr-defined]
        if event.is_printable and (early or event.key not in self.KEEP):
            event.stop()
            event.prevent_default()
            self.action_cancel()  # type: ignore[attr-defined]
        elif early:
            event.stop()
            event.prevent_default()
        elif event.key == "enter" and isinstance(focused, Button):
            event.stop()  # pressed now, not when the button's message comes: a key
            event.prevent_default()  # typed right after is the screen's below
            self.pressed(focused)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.pressed(event.button)  # a click

    def pressed(self, button: Button) -> None:
        """The answer given by ``button`` (subclasses)."""
        raise NotImplementedError


class ConfirmScreen(Deliberate, ModalScreen[bool]):
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
                              "Escape or any letter cancels."), classes="hint")

    def pressed(self, button: Button) -> None:
        if self.is_active:
            self.dismiss(button.id == "confirm-ok")

    def action_cancel(self) -> None:
        """Leave without a change."""
        self.dismiss(False)
