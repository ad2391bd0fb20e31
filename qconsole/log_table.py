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

from qconsole import theme
from qconsole.logformat import Delivery, local_time

WIDE = (("Time", 19), ("Msg", 9), ("Recipient", 26), ("Result", 8), ("Route", 10),
        ("Local IP", 15), ("Remote", 21), ("TLS", 7), ("Dur", 6))
MEDIUM = (("Time", 8), ("Recipient", 24), ("Result", 8), ("Route", 10), ("Local IP", 15),
          ("Remote", 21))
NARROW = (("Time", 8), ("Recipient", 22), ("Result", 8), ("Route", 10), ("Remote", 15))
DATED = 14  # the width of the time column when the rows span several days
DATE_LOOK = 50  # rows looked at from each end for one with a time


class Model(Protocol):
    """What the table shows."""

    def __len__(self) -> int: ...
    def row(self, i: int) -> Delivery: ...
    def status(self, i: int) -> int: ...
    def key(self, i: int) -> tuple: ...


def columns(width: int, dated: bool = False) -> tuple[tuple[str, int], ...]:
    """The columns that fit ``width``; the reply takes what is left. ``dated``: the
    rows span several days, so a short time column shows the date too."""
    cols = WIDE if width >= 150 else MEDIUM if width >= 110 else NARROW
    if dated and cols is not WIDE:
        cols = (("Time", DATED), *cols[1:])
    return cols


def stamp_text(when: float | None, width: int) -> str:
    """The time column: the whole stamp, month-day and time, or the time alone."""
    stamp = local_time(when)
    if when is None or width >= 19:
        return stamp
    return stamp[5:] if width >= DATED else stamp[11:]


def cells(row: Delivery, time_width: int) -> dict[str, str]:
    """The text of each column of a row."""
    dur = "" if row.duration is None else f"{row.duration:.1f}s"
    return {"Time": stamp_text(row.time, time_width), "Msg": row.msg,
            "Recipient": row.recipient, "Result": row.status, "Route": row.route,
            "Local IP": row.local, "Remote": row.remote, "TLS": row.tls, "Dur": dur}


def header_text(width: int, dated: bool = False) -> Text:
    """The column titles for ``width``; a hint where TLS and AUTH went when they do not
    fit."""
    cols = columns(width, dated)
    text = Text(style="bold")
    for name, w in cols:
        text.append(name[:w].ljust(w) + " ")
    text.append("Reply")
    hint = "   (TLS, AUTH: under the table)"
    if cols[-1][0] != "Dur" and len(text) + len(hint) + 20 <= width:  # where they went
        text.append(hint, style="dim")
    return text


class LogTable(ScrollView, can_focus=True):
    """Rows of a :class:`Model`; up/down/page keys, a cursor, and follow mode."""

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False),
        Binding("pagedown,ctrl+f,space", "page(1)", "Page down", show=False),
        Binding("home,g", "oldest", "Oldest", show=False),
        Binding("end,G", "newest", "Newest", show=False),
        Binding("enter", "open", "Details"),
    ]
    DEFAULT_CSS = "LogTable { height: 1fr; overflow-x: hidden; }"

    class Moved(Message):
        """The cursor moved to another row."""

    class Opened(Message):
        """Enter on a row: show its whole story."""

    def __init__(self, model: Model, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.model = model
        self.cursor = max(0, len(model) - 1)
        self.following = True
        self.dated = False  # the rows span several days
        self._cache: dict[tuple, Delivery] = {}
        # The rows the table was told of (grew): its cursor and scroll count those. A
        # model may have more already, older ones added above by another thread (the
        # history read backwards) before it tells: they are skipped until then.
        self.told = 0

    def set_model(self, model: Model) -> None:
        """Show another model (e.g. a filter), on its newest row."""
        self.model = model
        self._cache.clear()
        self.cursor = max(0, len(model) - 1)
        self.following = True
        self.grew(0)

    def grew(self, prepended: int) -> None:
        """The model changed: ``prepended`` older rows came in above the old ones."""
        n = self.told = len(self.model)
        self._check_dates(n)
        size, height = Size(self.size.width, n), self.container_size.height
        if (self.show_vertical_scrollbar and self.virtual_size.width == size.width
                and min(n, self.virtual_size.height) > height):
            # (the scroll bar stays: only it is drawn again, not the whole screen's
            # layout, which cost a search's posts a second of the screen's time)
            self.set_reactive(ScrollView.virtual_size, size)
            self._scroll_update(size)
        else:
            self.virtual_size = size
        # (force: rows that just passed a screenful have no scroll bar until the next
        # layout, and a widget without one refuses to scroll: the table stayed at its
        # top while the cursor followed the newest row; the bar that the layout shows
        # is then told where the rows are, as scrolling tells only a bar shown)
        if self.following:
            self.cursor = max(0, n - 1)
            self.scroll_to(y=max(0, n - self.size.height), animate=False, immediate=True,
                           force=True)
        elif prepended:
            self.cursor += prepended
            self.scroll_to(y=self.scroll_offset.y + prepended, animate=False, immediate=True,
                           force=True)
        if not self.show_vertical_scrollbar and n > height:
            self.call_after_refresh(self._place_thumb)
        self.refresh()
        self.post_message(self.Moved())

    def _place_thumb(self) -> None:
        """The scroll bar's thumb where the rows shown are."""
        if self.show_vertical_scrollbar:
            self.vertical_scrollbar.position = self.scroll_offset.y

    def rows_dropped(self) -> None:
        """Rows left the model (lost to a truncation of the log): what was read of
        them is forgotten."""
        self._cache.clear()
        self.cursor = min(self.cursor, max(0, len(self.model) - 1))
        self.grew(0)

    def _check_dates(self, n: int) -> None:
        """Show dates in the time column once the rows span more than a day: the
        first and the last rows that have a time are compared (a line without a
        stamp, garbage, may be either end)."""
        first = self._time_from(range(min(n, DATE_LOOK)))
        last = self._time_from(range(n - 1, max(-1, n - 1 - DATE_LOOK), -1))
        dated = (first is not None and last is not None
                 and local_time(first)[:10] != local_time(last)[:10])
        if dated != self.dated:
            self.dated = dated
            self.post_message(self.Moved())  # the view redraws its header

    def _time_from(self, rows: range) -> float | None:
        """The time of the first of ``rows`` that has one."""
        for i in rows:
            when = self._row(i).time
            if when is not None:
                return when
        return None

    def selected(self) -> Delivery | None:
        """The row under the cursor."""
        if not self.told or not len(self.model):
            return None
        return self._row(min(self.cursor, self.told - 1))

    def untold(self) -> int:
        """Rows added above the others since the table was last told (see ``told``)."""
        return max(0, len(self.model) - self.told)

    def model_index(self, i: int) -> int:
        """The model's index of the table's row ``i``."""
        return i + self.untold()

    def _row(self, i: int) -> Delivery:
        i = min(self.model_index(i), len(self.model) - 1)
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
        base = self.rich_style  # the theme's colours, not the terminal's defaults
        if i >= self.told or self.model_index(i) >= len(self.model):
            return Strip.blank(width, base)
        row = self._row(i)
        text = Text(no_wrap=True, overflow="ellipsis", style=base)
        result_style = theme.style(self.app, row.status)
        cols = columns(width, self.dated)
        if row.status == "raw":
            if row.time:
                text.append(stamp_text(row.time, cols[0][1]) + " ")
            text.append(row.reply, style=result_style)
        else:
            values = cells(row, cols[0][1])
            for name, w in cols:
                value = values[name]
                value = value if len(value) <= w else value[:w - 1] + "…"
                text.append(value.ljust(w) + " ",
                            style=result_style if name == "Result" else "")
            text.append(row.reply)
        text.truncate(width, overflow="ellipsis", pad=True)
        strip = Strip(text.render(self.app.console), width)
        if i == self.cursor:
            strip = strip.apply_style(Style(reverse=True) if self.has_focus
                                      else Style(underline=True))
        return strip.crop(0, width)

    def move_to(self, i: int) -> None:
        """Put the cursor on row ``i`` and scroll it into view."""
        n = self.told
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
        self.move_to(self.told - 1)

    def action_oldest(self) -> None:
        """Jump to the oldest row."""
        self.move_to(0)

    def action_open(self) -> None:
        """Show the whole story of the row under the cursor."""
        if self.told:
            self.post_message(self.Opened())

    def on_click(self, event: Click) -> None:
        self.move_to(self.scroll_offset.y + event.y)
        if event.chain == 2:  # a double click opens the row
            self.action_open()

    def on_resize(self) -> None:
        self.grew(0)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
