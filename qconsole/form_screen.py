"""A modal form for one routes or routemap line.

Each field is validated by qremote's own parser (a :class:`FieldError` says which
field and why, shown under it); then the whole configuration as it would be saved
goes through ``qremote check``, and an error it would add is shown too. Only a
valid edit leaves the form, to be confirmed as a diff.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from qconsole.editing import Edit
from qremote.errors import FieldError


class Field(NamedTuple):
    """One form field: key, label, placeholder, and choices for a select."""

    key: str
    label: str
    placeholder: str = ""
    choices: tuple[str, ...] = ()
    secret: bool = False


class FormScreen(ModalScreen[Edit | None]):
    """Fields in, a validated :class:`Edit` out (None when cancelled).

    The first field has the focus when the form opens; Escape in a field leaves the
    field (for the buttons), Escape outside one cancels the form."""

    AUTO_FOCUS = "Input, Select"
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "submit", "OK")]
    DEFAULT_CSS = """
    FormScreen { align: center middle; }
    FormScreen > VerticalScroll { width: 90; max-width: 100%; height: auto;
        max-height: 100%; border: thick $primary; padding: 0 1; background: $surface; }
    FormScreen .title { text-style: bold; }
    FormScreen Label { padding-top: 1; }
    FormScreen Input, FormScreen Select { width: 1fr; }
    FormScreen .field-error { color: $error; height: auto; display: none; }
    FormScreen .field-error.shown { display: block; }
    FormScreen #form-error { color: $error; height: auto; }
    FormScreen Horizontal { height: auto; padding-top: 1; }
    FormScreen Button { margin-right: 2; }
    """

    def __init__(self, title: str, fields: tuple[Field, ...], values: dict[str, str],
                 build: Callable[[dict[str, str]], Edit]) -> None:
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.values = values
        self.build = build

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text.assemble((self.title_text, "bold"),
                                       ("   ctrl+s OK · escape leaves a field, then "
                                        "cancels", "dim")),
                         classes="title")
            for f in self.fields:
                yield Label(f.label, markup=False)
                value = self.values.get(f.key, "")
                if f.choices:
                    yield Select([(c, c) for c in f.choices], value=value or f.choices[0],
                                 allow_blank=False, compact=True, id=f"field-{f.key}")
                else:
                    yield Input(value, placeholder=f.placeholder, password=f.secret,
                                compact=True, select_on_focus=False, id=f"field-{f.key}")
                yield Static("", classes="field-error", id=f"error-{f.key}")
            yield Static("", id="form-error")
            with Horizontal():
                yield Button("OK", variant="primary", compact=True, id="form-ok")
                yield Button("Cancel", compact=True, id="form-cancel")

    def current(self) -> dict[str, str]:
        """The values as entered."""
        out: dict[str, str] = {}
        for f in self.fields:
            widget = self.query_one(f"#field-{f.key}")
            out[f.key] = str(widget.value) if isinstance(widget, Select | Input) else ""
        return out

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "form-ok":
            self.action_submit()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_submit()

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape" and isinstance(self.focused, Input):
            self.query_one("#form-ok", Button).focus()
            event.stop()

    def action_cancel(self) -> None:
        """Leave without a change."""
        self.dismiss(None)

    def action_submit(self) -> None:
        """Validate; leave with the edit, or say what is wrong where it is wrong."""
        for f in self.fields:
            self.query_one(f"#error-{f.key}", Static).remove_class("shown")
        general = self.query_one("#form-error", Static)
        general.update("")
        try:
            edit = self.build(self.current())
        except FieldError as exc:
            error = self.query_one(f"#error-{exc.field}", Static)
            error.update(Text(str(exc)))
            error.add_class("shown")
            self.query_one(f"#field-{exc.field}").focus()
            return
        errors = edit.new_errors()
        if errors:
            general.update(Text("\n".join(f.format() for f in errors)))
            return
        edit.values = self.current()  # to come back to the form from the diff
        self.dismiss(edit)
