"""A modal form for one routes or routemap line.

A value the console only proposes (the sender ``*`` of a new rule, the name of a
duplicate) is selected when its field is entered, so that typing replaces it.

Each field is validated by qremote's own parser (a :class:`FieldError` says which
field and why, shown under it); then the whole configuration as it would be saved
goes through ``qremote check``, and an error it would add is shown too. Only a
valid edit leaves the form, to be confirmed as a diff.

A form never takes a character it could not show: control characters and
invisible ones (pasted, or from a line that did not parse) are refused in every
field (:mod:`qconsole.fields`; a value that held some is shown escaped and must be
typed again). A secret field shows the same mask whatever the secret's length.
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
from textual.widgets import Button, Footer, Input, Label, Select, Static

from qconsole.editing import Edit
from qconsole.fields import ProposedInput, SafeInput, SecretInput
from qconsole.safe_text import printable, unsafe_char
from qremote.errors import FieldError


class Field(NamedTuple):
    """One form field: key, label, placeholder, and choices for a select."""

    key: str
    label: str
    placeholder: str = ""
    choices: tuple[str, ...] = ()
    secret: bool = False


FIRST_FIELD = "Input, Select"


class FormScreen(ModalScreen[Edit | None]):
    """Fields in, a validated :class:`Edit` out (None when cancelled).

    The first field has the focus when the form opens; Escape in a field leaves the
    field (for the buttons), Escape outside one cancels the form."""

    AUTO_FOCUS = None  # (on_mount)
    # Tab is the console's (a priority binding): listed here for the footer.
    BINDINGS = [Binding("tab", "app.move_focus(1)", "Next field"),
                Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "submit", "OK")]
    DEFAULT_CSS = """
    FormScreen { align: center middle; }
    FormScreen > VerticalScroll { width: 90; max-width: 100%; height: auto;
        max-height: 100%; border: thick $primary; padding: 0 1; background: $surface; }
    FormScreen .title { text-style: bold; }
    FormScreen Label { padding-top: 1; width: 100%; }  /* wrapped, not cut */
    FormScreen Input, FormScreen Select { width: 1fr; }
    FormScreen .field-error { color: $error; height: auto; display: none; }
    FormScreen .field-error.shown { display: block; }
    FormScreen #form-error { color: $error; height: auto; display: none; }
    FormScreen #form-error.shown { display: block; }
    FormScreen Horizontal { height: auto; padding-top: 1; }
    FormScreen Button { margin-right: 2; }
    """

    def __init__(self, title: str, fields: tuple[Field, ...], values: dict[str, str],
                 build: Callable[[dict[str, str]], Edit],
                 suggested: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.values = values
        self.build = build
        self.suggested = suggested  # fields whose value is only a proposal
        self.escaped: dict[str, str] = {}  # field: its value as shown, escaped

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
                elif f.secret:
                    yield SecretInput(value, placeholder=f.placeholder, compact=True,
                                      select_on_focus=False, id=f"field-{f.key}")
                else:
                    shown = printable(value)
                    if shown != value:  # kept escaped until retyped: never taken so
                        self.escaped[f.key] = shown
                    kind = ProposedInput if f.key in self.suggested else SafeInput
                    yield kind(shown, placeholder=f.placeholder, compact=True,
                               select_on_focus=False, id=f"field-{f.key}")
                yield Static("", classes="field-error", id=f"error-{f.key}")
            yield Static("", id="form-error")
            with Horizontal():
                yield Button("OK", variant="primary", compact=True, id="form-ok")
                yield Button("Cancel", compact=True, id="form-cancel")
        yield Footer()  # its own keys, not those of the view under it

    def on_mount(self) -> None:
        # Focused without scrolling it into view: Textual's auto focus centres a field
        # it cannot yet see whole (the form not laid out), which scrolled the form by
        # a line or more and put the title (what is edited, and the keys) above the
        # screen at 80x24. The first field is near the top: it is in view.
        self.set_focus(self.query(FIRST_FIELD).first(), scroll_visible=False)

    def current(self) -> dict[str, str]:
        """The values as entered."""
        out: dict[str, str] = {}
        for f in self.fields:
            widget = self.query_one(f"#field-{f.key}")
            out[f.key] = str(widget.value) if isinstance(widget, Select | Input) else ""
        return out

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.pressed(event.button)  # a click

    def pressed(self, button: Button) -> None:
        """OK or Cancel."""
        if not self.is_active:
            return
        if button.id == "form-ok":
            self.action_submit()
        else:
            self.dismiss(None)

    def on_key(self, event: events.Key) -> None:
        # Done now, not when the field's or button's message comes: the keys typed
        # right after go where this key leads.
        focused = self.focused
        if event.key == "escape" and isinstance(focused, Input):
            self.set_focus(self.query_one("#form-ok", Button))
            event.stop()
        elif event.key == "enter" and isinstance(focused, Input | Button):
            event.stop()
            event.prevent_default()
            if isinstance(focused, Button):
                self.pressed(focused)
            else:
                self.action_submit()

    def action_cancel(self) -> None:
        """Leave without a change."""
        self.dismiss(None)

    def action_submit(self) -> None:
        """Validate; leave with the edit, or say what is wrong where it is wrong."""
        for f in self.fields:
            self.query_one(f"#error-{f.key}", Static).remove_class("shown")
        general = self.query_one("#form-error", Static)
        general.update("")
        general.remove_class("shown")  # an empty line less: the form fits 80x24
        try:
            values = self.current()
            for key, value in values.items():
                if self.escaped.get(key) == value:
                    raise FieldError(key, "this value held control or invisible "
                                          "characters (shown escaped): type it again "
                                          "without them")
                bad = unsafe_char(value)
                if bad is not None:
                    raise FieldError(key, f"{printable(bad)} is a control or invisible "
                                          "character: it cannot be shown, so it is not "
                                          "taken; remove it")
            edit = self.build(values)
        except FieldError as exc:
            error = self.query_one(f"#error-{exc.field}", Static)
            error.update(Text(printable(str(exc))))
            error.add_class("shown")
            self.set_focus(self.query_one(f"#field-{exc.field}"))
            return
        errors = edit.new_errors()
        if errors:
            general.add_class("shown")
            general.update(Text(printable("\n".join(f.format() for f in errors),
                                          lines=True)))
            return
        edit.values = self.current()  # to come back to the form from the diff
        self.dismiss(edit)
