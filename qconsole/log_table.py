"""A virtual table of deliveries: only the rows on screen are read and drawn.

The model is anything with ``len()``, ``row(i)``, ``status(i)`` and ``key(i)`` (a
:class:`~qconsole.logindex.LogIndex` or a filtered view of one), so millions of
rows cost nothing until they are looked at. Oldest at the top, newest at the
bottom; while following, the cursor stays on the newest row, like ``tail -F``.
"""

from __future__ import annotations

from typing import Protocol

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.events import Click
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from qconsole.logformat import Delivery, local_time

STYLES = {"success": "green", "deferral": "yellow", "failure": "bold red", "raw": "magenta"}
WIDE = (("Time", 19), ("Msg", 9), ("Recipient", 26), ("Result", 8), ("Route", 10),
        ("Local IP", 15), ("Remote", 21), ("TLS", 7), ("Dur", 6))
MEDIUM = (("Time", 8), ("Recipient", 24), ("Result", 8), ("Route", 10), ("Local IP", 15),
          ("Remote", 21))
NARROW = (("Time", 8), ("Recipient", 22), ("Result", 8), ("Route", 10), ("Remote", 15))


class Model(Protocol):
    """What the table shows."""

    def __len__(self) -> int: ...
    def row(self, i: int) -> Delivery: ...
    def status(self, i: int) -> int: ...
    def key(self, i: int) -> tuple: ...


def columns(width: int) -> tuple[tuple[str, int], ...]:
    """The columns that fit ``width``; the reply takes what is left."""
    return WIDE if width >= 150 else MEDIUM if width >= 110 else NARROW


def cells(row: Delivery, narrow: bool) -> dict[str, str]:
    """The text of each column of a row."""
    stamp = local_time(row.time)
    dur = "" if row.duration is None else f"{row.duration:.1f}s"
    return {"Time": stamp[11:] if narrow else stamp, "Msg": row.msg,
            "Recipient": row.recipient, "Result": row.status, "Route": row.route,
            "Local IP": row.local, "Remote": row.remote, "TLS": row.tls, "Dur": dur}


def header_text(width: int) -> Text:
    """The column titles for ``width``."""
    text = Text(style="bold")
    for name, w in columns(width):
        text.append(name[:w].ljust(w) + " ")
    text.append("Reply")
    return text


class LogTable(ScrollView, can_focus=True):
    """Rows of a :class:`Model`; up/down/page keys, a cursor, and follow mode."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "cursor(-1000000000)", "Oldest", show=False),
        Binding("end", "newest", "Newest", show=False),
    ]
    DEFAULT_CSS = "LogTable { height: 1fr; overflow-x: hidden; }"

    class Moved(Message):
        """The cursor moved to another row."""

    def __init__(self, model: Model, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.model = model
        self.cursor = max(0, len(model) - 1)
        self.following = True
        self._cache: dict[tuple, Delivery] = {}

    def set_model(self, model: Model) -> None:
        """Show another model (e.g. a filter), on its newest row."""
        self.model = model
        self._cache.clear()
        self.cursor = max(0, len(model) - 1)
        self.following = True
        self.grew(0)

    def grew(self, prepended: int) -> None:
        """The model changed: ``prepended`` older rows came in above the old ones."""
        n = len(self.model)
        self.virtual_size = Size(self.size.width, n)
        if self.following:
            self.cursor = max(0, n - 1)
            self.scroll_to(y=max(0, n - self.size.height), animate=False, immediate=True)
        elif prepended:
            self.cursor += prepended
            self.scroll_to(y=self.scroll_offset.y + prepended, animate=False, immediate=True)
        self.refresh()
        self.post_message(self.Moved())

    def selected(self) -> Delivery | None:
        """The row under the cursor."""
        if not len(self.model):
            return None
        return self._row(min(self.cursor, len(self.model) - 1))

    def _row(self, i: int) -> Delivery:
        key = self.model.key(i)
        row = self._cache.get(key)
        if row is None:
            if len(self._cache) > 2000:
                self._cache.clear()
            row = self._cache[key] = self.model.row(i)
        return row

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        i = self.scroll_offset.y + y
        if i >= len(self.model):
            return Strip.blank(width)
        row = self._row(i)
        text = Text(no_wrap=True, overflow="ellipsis")
        if row.status == "raw":
            text.append(local_time(row.time)[11:] + " " if row.time else "")
            text.append(row.reply, style=STYLES["raw"])
        else:
            cols = columns(width)
            values = cells(row, cols is not WIDE)
            for name, w in cols:
                value = values[name]
                value = value if len(value) <= w else value[:w - 1] + "…"
                text.append(value.ljust(w) + " ",
                            style=STYLES.get(row.status, "") if name == "Result" else "")
            text.append(row.reply)
        text.truncate(width, overflow="ellipsis", pad=True)
        strip = Strip(text.render(self.app.console), width)
        if i == self.cursor:
            strip = strip.apply_style(Style(reverse=True) if self.has_focus
                                      else Style(underline=True))
        return strip.crop(0, width)

    def move_to(self, i: int) -> None:
        """Put the cursor on row ``i`` and scroll it into view."""
        n = len(self.model)
        if not n:
            return
        self.cursor = max(0, min(i, n - 1))
        self.following = self.cursor == n - 1
        top, h = self.scroll_offset.y, max(1, self.size.height)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + h:
            self.scroll_to(y=self.cursor - h + 1, animate=False, immediate=True)
        self.refresh()
        self.post_message(self.Moved())

    def action_cursor(self, step: int) -> None:
        """Move the cursor by ``step`` rows."""
        self.move_to(self.cursor + step)

    def action_page(self, step: int) -> None:
        """Move the cursor by a page."""
        self.move_to(self.cursor + step * max(1, self.size.height - 1))

    def action_newest(self) -> None:
        """Jump to the newest row and follow."""
        self.move_to(len(self.model) - 1)

    def on_click(self, event: Click) -> None:
        self.move_to(self.scroll_offset.y + event.y)

    def on_resize(self) -> None:
        self.grew(0)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
