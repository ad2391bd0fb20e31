"""The console's text fields: they never show a character raw, nor a secret's length.

A key typed on the keyboard is printable or it is no text; what could bring a
control character or an escape sequence into a field is a paste. :class:`SafeInput`
refuses such a paste (and says why) instead of writing it to the terminal.
:class:`SecretInput`, for a password, shows :data:`MASK` whatever the password's
length (not one bullet a character), and the first key that edits it after it
gets the focus starts the password anew: one cannot see what one would append to.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.strip import Strip
from textual.widgets import Input

from qconsole.safe_text import printable, unsafe_char

MASK = "•" * 8  # a secret as shown: the same whatever its length


class SafeInput(Input):
    """An Input that refuses a paste holding control or invisible characters."""

    def _on_paste(self, event: events.Paste) -> None:
        line = event.text.splitlines()[0] if event.text else ""
        bad = unsafe_char(line)
        if bad is None:
            return  # Input pastes it
        event.stop()
        event.prevent_default()  # not Input's own paste
        self.app.notify(f"Not pasted: the text holds {printable(bad)}, a control or "
                        "invisible character.", severity="warning", markup=False)


class ViewField(SafeInput):
    """A text field of a view (not of a form, whose screen says its keys): the key line
    says what Enter, Escape and Tab do while it has the focus (the view's own keys are
    typed into it then, and showed nothing). The view does what the keys do: its
    ``field_key(key)`` handles ``"enter"`` and ``"escape"`` (True: done)."""

    BINDINGS = [  # (priority: the app's own Tab and Ctrl+Q are, and would hide these)
        Binding("enter", "field_key('enter')", "Go", priority=True),
        Binding("escape", "field_key('escape')", "Leave field", priority=True),
        Binding("tab", "app.move_focus(1)", "Next field", priority=True),
        Binding("ctrl+q", "app.quit_now", "Quit", priority=True),
    ]

    async def action_field_key(self, key: str) -> None:
        for node in self.ancestors:
            handler = getattr(node, "field_key", None)
            if handler is not None and handler(key):
                return
        if key == "enter":
            await self.action_submit()


class ProposedInput(SafeInput):
    """A field holding a value the console only proposes (``*``, ``name-copy``): the
    value is selected when the field is entered, so that typing replaces it (it
    stays selected until something is typed or the cursor moves); once the field
    was left, what it holds is edited like any other field."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs["select_on_focus"] = True
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def _on_blur(self, event: events.Blur) -> None:
        self.select_on_focus = False


class SecretInput(SafeInput):
    """A password field: shows :data:`MASK` (nothing when empty), never one bullet a
    character; the first key that edits it after it gets the focus starts it anew."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fresh = True  # the next edit replaces the value

    @property
    def _value(self) -> Text:
        return Text(MASK if self.value else "", no_wrap=True, overflow="ignore", end="")

    @property
    def _cursor_offset(self) -> int:
        return len(MASK) if self.value else 0

    def render_line(self, y: int) -> Strip:
        if y != 0 or not self.value:
            return super().render_line(y)  # the placeholder tells no length
        text = Text(MASK, no_wrap=True, overflow="ignore", end="")
        if self.has_focus and self._cursor_visible:
            text.pad_right(1)
            text.stylize(self.get_component_rich_style("input--cursor"), len(MASK))
        width = self.scrollable_content_region.width
        strip = Strip(self.app.console.render(
            text, self.app.console_options.update_width(width + 1)))
        return strip.crop(0, width + 1).extend_cell_length(width + 1).apply_style(
            self.rich_style)

    def _start_anew(self) -> None:
        if self.fresh:
            self.fresh = False
            self.value = ""
            self.cursor_position = 0

    def _on_key(self, event: events.Key) -> None:
        if event.is_printable or event.key in ("backspace", "delete", "ctrl+h"):
            self._start_anew()

    def _on_paste(self, event: events.Paste) -> None:
        line = event.text.splitlines()[0] if event.text else ""
        if unsafe_char(line) is None:  # (SafeInput refuses the other)
            self._start_anew()

    def _on_blur(self, event: events.Blur) -> None:
        self.fresh = True
