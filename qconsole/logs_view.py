"""The logs view: deliveries from qmail-send's log, followed live, filtered with ``/``.

History is indexed backwards in a worker thread (the newest page shows at once);
a timer follows the file like ``tail -F``; a filter (:mod:`qconsole.logquery`) is
searched in bulk over the raw history in another worker (:mod:`qconsole.logsearch`),
matches appearing as they are found, and keeps applying to new lines. Enter opens a
row's whole story (:mod:`qconsole.delivery_screen`).
"""

from __future__ import annotations

import textwrap
import threading
import time
from array import array
from pathlib import Path

from rich.cells import cell_len
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static
from textual.worker import get_current_worker

from qconsole import memory, theme
from qconsole.control_view import cut
from qconsole.fields import SafeInput, ViewField
from qconsole.log_table import LogTable, header_text
from qconsole.logformat import Delivery, local_time
from qconsole.logindex import DEFERRAL, FAILURE, RAW, LogIndex
from qconsole.logquery import QueryError, parse_query
from qconsole.logsearch import Search
from qconsole.logsource import LogError, LogSource
from qconsole.safe_text import plain, printable
from qconsole.table import clear_rows

SPARK = " ▁▂▃▄▅▆▇█"
SPARK_BARS = 30  # the counters' last hour, 2 minutes a bar (Counters.table)
COUNTER_COLUMNS = ("Kind", "Name", "Success", "Deferral", "Failure", "Last hour")
NAME_FLOOR = 16  # cells of a counter's name at least (an IPv6 address, a route)
FOLLOW_SECONDS = 0.25
NEWER_SLICE = 2000  # appended rows tested by the filter's worker between two posts
GROW_SECONDS = 0.5  # the filter's rows found: posted to the screen this often at most


def sparkline(values: list[int]) -> str:
    """Values as block characters, scaled to the largest."""
    top = max(values) or 1
    return "".join(SPARK[0 if v == 0 else max(1, round(v * 8 / top))] for v in values)


def said_first(row: Delivery) -> str:
    """The report in one line, what the remote said (the reason) first."""
    said = [line for line in row.lines if line.startswith("Remote host said:")]
    rest = [line for line in row.lines if not line.startswith("Remote host said:")]
    return " · ".join(said + rest) if row.lines else row.reply


def _line(text: Text, parts: list[tuple[str, str]], width: int) -> None:
    """Append one line of styled ``parts``, cut to ``width`` columns with "…"."""
    room = width
    for part, style in parts:
        if room <= 0:
            break
        if cell_len(part) > room:
            part = part[:max(0, room - 1)] + "…"
        text.append(part, style=style)
        room -= cell_len(part)


def detail_text(row: Delivery, app, width: int) -> Text:
    """The panel under the table (``width`` columns), what a narrow table cuts: why
    (the reply, the remote's words first, in two lines at most), how (TLS, AUTH,
    route) and who, a line each; Enter shows the whole story."""
    text = Text()
    width = max(20, width)
    if row.status == "raw":
        text.append("not a delivery line, shown as read: ", style="dim")
        text.append(row.reply)
        return text
    why = textwrap.wrap(f"{row.status} {said_first(row)}", width, max_lines=2,
                        placeholder=" …", break_on_hyphens=False) or [row.status]
    _line(text, [(row.status, theme.style(app, row.status)),
                 (why[0][len(row.status):], "")], width)
    for more in why[1:]:
        text.append("\n")
        _line(text, [(more, "")], width)
    text.append("\n")
    if row.channel == "local" and not row.detail:
        text.append("a local delivery (qmail-local)\n")
    elif row.status != "bounce":
        _line(text, [(f"TLS {row.tls} · AUTH {row.auth}", "bold"),
                     (f" · route={row.route} local={row.local} remote={row.remote}"
                      + (f" in {row.duration:.1f}s" if row.duration is not None else ""),
                      "")], width)
        text.append("\n")
    _line(text, [(f"{local_time(row.time)}  msg {row.msg or '?'}  "
                  f"{row.sender or '?'} → {row.recipient or '?'}", ""),
                 ("   enter: the whole story", "dim")], width)
    return text


def _no_delivery(index: LogIndex) -> bool:
    """Whether every row of the index is a raw line (none of qmail-send's events); a
    hundredth of a second for ten million rows (their status bytes counted)."""
    raw = bytes((RAW,))
    return all((s := rows.status.tobytes()).count(raw) == len(s)
               for rows in (index.older, index.newer))


class EmptyModel:
    """No log: no rows."""

    def __len__(self) -> int:
        return 0

    def row(self, i: int):
        raise IndexError(i)

    def status(self, i: int) -> int:
        raise IndexError(i)

    def key(self, i: int) -> tuple:
        raise IndexError(i)


FAILURES = Binding.Group("Next/prev failure")  # one place on the key line
# The filter field's hint, the longest that fits the width shown whole.
FILTER_HINTS = ("filter: text, route: ip: result: to: from: msg:, /regex/, -term to "
                "exclude; enter keeps, escape clears",
                "text, route: ip: result: to: from: msg:, /regex/, -term; ⏎ keeps, esc clears",
                "route: ip: result: to: from: msg: /regex/ -term (? help)")


class LogsView(Vertical):
    """Deliveries as rows; counters per route and local IP below."""

    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("n", "jump(1)", "Next failure", group=FAILURES),
        Binding("N,p", "jump(-1)", "Prev failure", group=FAILURES),
        Binding("f", "follow", "Follow"),
        Binding("c", "counters", "Counters"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]
    DEFAULT_CSS = """
    LogsView #log-filter { display: none; }
    LogsView #log-filter.shown { display: block; }
    LogsView #log-header { height: 1; background: $boost; }
    LogsView #log-header.stale { background: $warning-muted; text-style: bold;
                                 text-wrap: nowrap; text-overflow: ellipsis; }
    LogsView #log-detail { height: auto; max-height: 5; border-top: solid $primary;
                           padding: 0 1; }
    LogsView #log-status { height: 1; padding: 0 1; color: $text-muted; }
    LogsView #log-status.wrapped { height: auto; max-height: 3; }
    LogsView #log-counters { height: auto; max-height: 9; }
    LogsView #log-counters.hidden { display: none; }
    """

    def __init__(self, path: Path | None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.path = path
        self.source: LogSource | None = None
        self.index: LogIndex | None = None
        self.filtered: Search | None = None
        self.filter_error: str | None = None
        self.error: str | None = None
        self.stop = threading.Event()
        self._older_seen = 0
        self._newer_owed = 0  # appended rows the filter's worker tests (follow: after)
        self.counters_shown: bool | None = None  # None: by the terminal's height

    def compose(self) -> ComposeResult:
        yield FilterField(placeholder=FILTER_HINTS[0], id="log-filter", compact=True)
        yield Static(id="log-header")
        yield LogTable(EmptyModel(), id="log-table")
        yield Static(id="log-detail")
        yield Static(id="log-status")
        yield DataTable(id="log-counters", show_cursor=False, zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#log-counters", DataTable)
        table.add_columns(*COUNTER_COLUMNS)
        if self.path is None:
            self.error = ("No log opened. Start qconsole with --log PATH (qmail-send's "
                          "log: a multilog directory or file, or syslog).")
        else:
            try:
                self.source = LogSource(self.path)
            except LogError as exc:
                self.error = str(exc)
        if self.source is not None:
            self.index = LogIndex(self.source)
            self.query_one(LogTable).set_model(self.index)
            self._index_history()
            self.set_interval(FOLLOW_SECONDS, self.follow_tick)
        self.set_interval(2.0, self.show_counters)
        self.show_status()

    def on_unmount(self) -> None:
        self.stop.set()

    def on_resize(self) -> None:
        self.show_header()
        width = self.size.width - 1  # (the cursor's cell)
        self.query_one("#log-filter", SafeInput).placeholder = next(
            (h for h in FILTER_HINTS if len(h) <= width), FILTER_HINTS[-1])
        counters = self.query_one("#log-counters")
        if self.counters_shown is None:  # on a short terminal the rows come first
            counters.set_class(self.size.height < 26, "hidden")
        # Shown on a short terminal, they take a third of the view at most (the rows
        # keep the most of it: 9 lines of counters left one row at 60x20).
        counters.styles.max_height = max(3, min(9, self.size.height // 3))

    # History and following -------------------------------------------------

    @work(thread=True, group="log-history")
    def _index_history(self) -> None:  # pauses while a filter searches (the GIL)
        assert self.index is not None
        for _ in self.index.scan_history(self.stop):
            self.app.call_from_thread(self._history_grew)
        self.app.call_from_thread(self._history_grew)

    def _history_grew(self) -> None:
        if self.index is None:
            return
        seen = self.index.older_count()
        added, self._older_seen = seen - self._older_seen, seen
        if self.filtered is None:
            self.query_one(LogTable).grew(added)
        self.show_status()
        if self.index.history_done or self.index.hour_done:
            self.show_counters()

    def follow_tick(self) -> None:
        """Index what was appended; show it (the filter worker tests new rows)."""
        if self.index is None:
            return
        truncations = self.index.source.truncations
        waiting = self.index.source.waiting
        try:
            added = self.index.follow()
        except OSError as exc:
            self.error = f"cannot read {self.path}: {exc.strerror}"
            self.show_status()
            return
        if self.index.source.truncations != truncations:  # rows were dropped
            self._older_seen = self.index.older_count()
            # The filter shown (the box may hold one that cannot be read) is searched
            # again without the lost lines before the table reads its rows: the old
            # search's new rows are indices the index just dropped.
            if self.filtered is not None:
                error = self.filter_error
                self.apply_filter(self.filtered.query.text)
                self.filter_error = error
            self.query_one(LogTable).rows_dropped()
            self.show_header()
            self.show_status()
            return
        grew = added  # the status line counts every row, matching the filter or not
        if self.filtered is not None:  # once its worker tested those there before it
            added = (self.filtered.scan_newer()
                     if self.filtered.done_newer >= self._newer_owed else 0)
        if added:
            self.query_one(LogTable).grew(0)
        if added or grew or self.index.source.waiting != waiting:
            self.show_status()

    # Filter ----------------------------------------------------------------

    def action_filter(self) -> None:
        """Show the filter box."""
        box = self.query_one("#log-filter", Input)
        box.add_class("shown")
        self.screen.set_focus(box)  # now: the keys typed next go into it

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "log-filter":
            self.apply_filter(event.value)

    def on_key(self, event) -> None:
        box = self.query_one("#log-filter", Input)
        table = self.query_one(LogTable)
        if event.key == "enter" and self.screen.focused is table:
            event.stop()  # the story opens now: the keys typed next are its own
            event.prevent_default()
            if table.told:
                self.open_story()
            return
        if self.screen.focused is box and self.field_key(event.key):
            event.stop()

    def field_key(self, key: str) -> bool:
        """In the filter: Escape clears it, Enter keeps it (the keys typed next are the
        table's). True: done."""
        if key == "escape":
            self.action_clear_filter()
        elif key == "enter":
            self.screen.set_focus(self.query_one(LogTable))
        return key in ("escape", "enter")

    def action_clear_filter(self) -> None:
        """Clear the filter and hide its box."""
        box = self.query_one("#log-filter", Input)
        if not box.has_class("shown") and self.filtered is None:
            return
        box.value = ""
        box.remove_class("shown")
        self.apply_filter("")
        self.screen.set_focus(self.query_one(LogTable))

    def set_filter(self, text: str) -> None:
        """Show the filter box holding ``text`` and apply it."""
        box = self.query_one("#log-filter", Input)
        box.add_class("shown")
        with box.prevent(Input.Changed):
            box.value = text
        self.apply_filter(text)
        self.screen.set_focus(self.query_one(LogTable))

    def apply_filter(self, text: str) -> None:
        """Show only the rows that match ``text``; empty shows every row."""
        if self.index is None:
            return
        table = self.query_one(LogTable)
        try:
            query = parse_query(text)
        except QueryError as exc:
            # The rows of the last filter that parsed stay (a filter being typed
            # passes through such states: ``route:`` before its value), its search
            # going on; the header and the status line say whose rows they are.
            self.filter_error = str(exc)
            self.show_header()
            self.show_status()
            return
        self.filter_error = None
        self.workers.cancel_group(self, "log-filter")
        self.index.paused.clear()
        if self.filtered is not None:
            self.filtered.release()
        if not query.terms:
            self.filtered = None
            table.set_model(self.index)
        else:
            self.filtered = Search(self.index, query)
            # The rows appended since the log was opened (a day of them: seconds) are
            # tested by the worker, not on the thread that draws the screen.
            self._newer_owed = len(self.index.newer)
            table.set_model(self.filtered)
            self.index.paused.set()  # the history index waits: the search goes first
            self._run_filter(self.filtered, self._newer_owed)
        self.show_header()
        self.show_status()

    @work(thread=True, exclusive=True, group="log-filter")
    def _run_filter(self, search: Search, owed: int) -> None:
        worker = get_current_worker()

        def stop() -> bool:
            return worker.is_cancelled or self.stop.is_set() or search is not self.filtered

        try:
            done = 0
            while done < owed:  # the newest rows first, in slices
                if stop():
                    return
                end = min(owed, done + NEWER_SLICE)
                found = search.newer_matches(done, end)
                self.app.call_from_thread(self._newer_grew, search, end, found)
                done = end
            # The first rows at once, then a post every GROW_SECONDS: each post
            # draws the screen again, tens of ms the helpers' blocks would wait for.
            steps: list = []
            posted, shown = time.monotonic(), False
            for rows in search.run(stop):
                if stop():
                    return
                steps.append(rows)
                hit = any(c[0] for c in rows[0]) or bool(rows[1])
                if (hit and not shown) or time.monotonic() - posted >= GROW_SECONDS:
                    self.app.call_from_thread(self._filter_grew, search, steps)
                    steps, posted, shown = [], time.monotonic(), shown or hit
            if steps and not stop():
                self.app.call_from_thread(self._filter_grew, search, steps)
        finally:
            if self.index is not None and not worker.is_cancelled:
                self.index.paused.clear()
            memory.trim()  # what the previous filter's search held, freed by now
        if not stop():
            self.app.call_from_thread(self.show_status)

    def _newer_grew(self, search: Search, end: int, found: list[int]) -> None:
        if search is not self.filtered:
            return
        search.newer.extend(found)
        search.done_newer = end
        if found:
            self.query_one(LogTable).grew(0)  # below the history's rows
        self.show_status()

    def _filter_grew(self, search: Search, steps: list) -> None:
        if search is not self.filtered:
            return
        table = self.query_one(LogTable)
        mark = None  # the row under the cursor (its line), found before the merge
        if not table.following and len(search):
            here = search.locate(min(table.cursor, len(search) - 1))
            mark = here[0].result[here[1]]
        added = array("q")
        for rows in steps:
            added.extend(search.merge(rows))
        above = len(added)
        if mark is not None and added:
            above = sum(1 for r in added if r < mark)
        table.grew(above)
        self.show_status()

    # Keys ------------------------------------------------------------------

    def action_jump(self, step: int) -> None:
        """Move to the next (1) or previous (-1) failure or deferral."""
        table = self.query_one(LogTable)
        model = table.model
        i = table.cursor + step
        for _ in range(2_000_000):
            if not 0 <= i < table.told:
                break
            if model.status(table.model_index(i)) in (DEFERRAL, FAILURE):
                table.move_to(i)
                return
            i += step
        self.app.notify("No " + ("later" if step > 0 else "earlier") +
                        " failure or deferral.")

    def action_follow(self) -> None:
        """Jump to the newest row and keep following."""
        self.query_one(LogTable).action_newest()

    def action_counters(self) -> None:
        """Show or hide the counters."""
        counters = self.query_one("#log-counters")
        counters.toggle_class("hidden")
        self.counters_shown = not counters.has_class("hidden")

    # Panels ----------------------------------------------------------------

    def on_log_table_moved(self, event: LogTable.Moved) -> None:
        table = self.query_one(LogTable)
        self.show_header()
        row = table.selected()
        detail = self.query_one("#log-detail", Static)
        if row is None:
            _update(detail, Text())
            return
        _update(detail, detail_text(row, self.app, self.size.width - 2))
        self.show_status()

    def refresh_colours(self) -> None:
        """Draw again the panels that hold theme colours (after a change of theme): the
        detail line, the status line, the counters."""
        self.on_log_table_moved(LogTable.Moved())
        self.show_status()
        self.show_counters()

    def on_log_table_opened(self, event: LogTable.Opened) -> None:
        self.open_story()  # a double click (Enter: on_key)

    def open_story(self) -> None:
        """The whole story of the row under the cursor."""
        from qconsole.delivery_screen import DeliveryScreen

        table = self.query_one(LogTable)
        i = table.model_index(min(table.cursor, table.told - 1))
        rows, j = table.model.locate(i)
        row = table.model.row(i)  # joins a search row first
        assert self.index is not None
        self.app.push_screen(DeliveryScreen(self.index, rows, j, row), self.app.go_on)

    def shown_rows(self) -> str:
        """Whose rows the table shows while the filter typed does not parse."""
        if self.filtered is None:
            return "every row is shown, unfiltered"
        return (f"the rows shown are for the previous filter "
                f"'{printable(str(self.filtered.query))}'")

    def show_header(self) -> None:
        """The column titles above the rows; while the filter typed does not parse,
        in their place, whose rows these are."""
        header = self.query_one("#log-header", Static)
        header.set_class(bool(self.filter_error), "stale")
        if self.filter_error:
            whose = ("every row, unfiltered" if self.filtered is None else
                     f"the rows of the previous filter '{printable(str(self.filtered.query))}'")
            # (what happened first: a narrow terminal cuts the end, with an ellipsis)
            _update(header, Text(f"The filter typed does not parse (why: below); {whose}"))
            return
        _update(header, header_text(self.size.width, self.query_one(LogTable).dated),
                layout=False)

    def show_status(self) -> None:
        """One line: what the filter is doing first (at 80 columns the end is cut),
        then the rows, what is going on, the file; a filter error gets the lines it
        needs."""
        status = self.query_one("#log-status", Static)
        status.set_class(bool(self.filter_error) and not self.error, "wrapped")
        if self.error:
            _update(status, plain(self.error, theme.style(self.app, "error")))
            return
        if self.index is None:
            return
        text = Text()
        if self.filter_error:
            text.append(printable(self.filter_error), style=theme.style(self.app, "error"))
            text.append(f" · {self.shown_rows()}", style="bold")
            if self.filtered is not None:
                found = len(self.filtered)
                text.append(f" ({found:,} match{'' if found == 1 else 'es'}"
                            f"{'' if self.filtered.complete else ' so far'})")
            text.append(" · ")
        elif self.filtered is not None:
            state = ("" if self.filtered.complete else
                     f" (searching… {self.filtered.progress:.0%})")
            found = len(self.filtered)
            text.append(f"{found:,} match{'' if found == 1 else 'es'}{state} for "
                        f"'{printable(str(self.filtered.query))}' · ")  # as typed
        rows = len(self.index)
        parts = [f"{rows:,} row{'' if rows == 1 else 's'}"]
        if not self.index.history_done:
            parts.append("reading history…" if not self.index.paused.is_set()
                         else "history waits for the filter")
        if self.index.source.waiting:  # the file named is not there (yet)
            parts.append(printable(self.index.source.waiting))
        if self.index.source.unreadable:  # rotated files left out
            parts.append(printable(self.index.source.unreadable[0]) + (
                f" (and {len(self.index.source.unreadable) - 1} more)"
                if len(self.index.source.unreadable) > 1 else ""))
        if self.index.skipped and _no_delivery(self.index):  # (qmail-send's lines
            # under another name? a journal's "-- Boot --" line is a raw row of its own)
            parts.append(f"{self.index.skipped:,} lines of "
                         f"{printable(self.index.skipped_program)} hold qmail-send's words, "
                         "skipped as another program's (README: Other programs' lines)")
        if self.index.concurrency is not None:
            said = self.index.concurrency[1]
            parts.append(f"qmail-send {said.removeprefix('status: ')}")
        table = self.query_one(LogTable)
        parts.append("following" if table.following else "f: follow")
        parts.append(printable(str(self.path)))
        text.append(" · ".join(parts))
        _update(status, text, layout=status.has_class("wrapped"))

    def show_counters(self) -> None:
        """Success, deferral and failure per route and local IP over the last hour."""
        if self.index is None:
            return
        with self.index.lock:
            rows = self.index.counters.table(time.time())
        table = self.query_one("#log-counters", DataTable)
        clear_rows(table)  # (and the widths a name shown on a wider terminal gave)
        # A long route name (a provisioning script's) pushed the counts off the right
        # edge at 80 columns: the name gives way first, down to NAME_FLOOR cells.
        fixed = len("local IP") + len("Success") + len("Deferral") + len("Failure")
        width = table.size.width or self.size.width or self.app.size.width  # (hidden: 0)
        name_width = max(NAME_FLOOR, width - fixed - 2 * 6 - SPARK_BARS)
        for kind, name, ok, deferred, failed, spark in rows:
            label = plain(name)
            if label.cell_len > name_width:
                label = Text(cut(label.plain, name_width), style=label.style)
            table.add_row(kind, label, Text(str(ok), style=theme.style(self.app, "ok")),
                          Text(str(deferred), style=theme.style(self.app, "deferral")),
                          Text(str(failed), style=theme.style(self.app, "failure")),
                          sparkline(spark))


def _update(widget: Static, text: Text, layout: bool = True) -> None:
    """Show ``text`` in ``widget`` unless it shows that already (``layout`` False: its
    height is fixed). Each update with a layout lays the whole screen out again, and a
    search's posts of rows ask for one a few times a second: the selected row's detail
    and the header stay the same, the status line is one line."""
    shown = getattr(widget, "_qc_text", None)
    # (Text's == reads its spans, not its own style: a text all of one style is another
    # text in another theme's colours)
    if shown is None or shown != text or shown.style != text.style:
        widget._qc_text = text  # type: ignore[attr-defined]
        widget.update(text, layout=layout)


class FilterField(ViewField):
    """The filter's field."""

    BINDINGS = [Binding("enter", "field_key('enter')", "Keep filter", priority=True),
                Binding("escape", "field_key('escape')", "Clear filter", priority=True)]
