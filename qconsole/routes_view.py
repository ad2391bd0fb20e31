"""The routes view: one row a route, passwords masked until an explicit reveal;
add, edit, duplicate and delete through a form checked by qremote's parser. A line
that does not parse is a red row (qmail-remote defers every delivery meanwhile),
and can be fixed or deleted from here.

Under 110 columns the table is narrower (the list separators ``&`` and ``|`` say
the mode; long lists are cut with ``…``) and a line under it shows the selected
route whole."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from qconsole import theme
from qconsole.control_view import BAD, ControlView, cut
from qconsole.editing import Edit
from qconsole.form_screen import Field
from qconsole.safe_text import plain
from qremote.control.routes import TLS_POLICIES, Route, format_route, route_from_fields

MODE = {"single": "", "failover": "failover", "roundrobin": "rr"}
COLUMNS = ("Name", "Local IPs", "Mode", "Remotes", "Mode", "AUTH user", "Password", "TLS")
NARROW_COLUMNS = ("Name", "Local IPs (&,|)", "Remotes (&,|)", "AUTH", "TLS")
WIDE = 110
LISTS = len(NARROW_COLUMNS[1]) + len(NARROW_COLUMNS[2])  # their titles
FIELDS = (
    Field("name", "Name (letters, digits, '-')", "route1"),
    Field("local_ips", "Local IPs: one, a&b (failover) or a|b (round robin); empty = "
          "defaultoutgoingip", "192.0.2.1&192.0.2.2"),
    Field("remotes", "Remotes: mx, host[:port], [ip][:port], with & or |; empty = mx",
          "mx&relay.example.net:587"),
    Field("user", "AUTH user (empty: no AUTH)"),
    Field("password", "AUTH password", secret=True),
    Field("tls", "TLS", choices=TLS_POLICIES),
)


def route_values(route: Route) -> dict[str, str]:
    """A route's fields as the form shows them."""
    return {"name": route.name, "local_ips": route.local_text(),
            "remotes": route.remotes_text(),
            "user": route.user, "password": route.password, "tls": route.tls}


def _route(values: dict[str, str]) -> Route:
    return route_from_fields(**values)


def _table_width(columns: tuple[str, ...], rows: list[tuple[int, str, list]]) -> int:
    """The width of a table of these rows (each cell padded by one on each side)."""
    return sum(max([len(name), *(cells[i].cell_len for _, _, cells in rows)]) + 2
               for i, name in enumerate(columns))


def line_values(text: str) -> dict[str, str]:
    """A routes line that does not parse, split into the form's fields as well as it
    goes (so that it can be fixed in the form)."""
    parts = [*text.split(";"), "", "", "", "", ""][:6]
    # the tls= item among the options (another one, unknown, is why the line is red:
    # fixing it must not turn tls=verify into the default)
    tls = next((value.strip().lower() for key, _, value in
                (item.partition("=") for item in parts[5].split(","))
                if key.strip().lower() == "tls"), "") or "may"
    return {"name": parts[0].strip(), "local_ips": parts[1].strip(),
            "remotes": parts[2].strip(), "user": parts[3].strip(),
            "password": parts[4].strip(), "tls": tls if tls in TLS_POLICIES else "may"}


class RoutesView(ControlView):
    """Routes of control/routes, with the findings about that file."""

    NAME = "routes"
    BINDINGS = [
        Binding("a", "add", "Add"),
        Binding("e", "edit", "Edit"),
        Binding("d", "duplicate", "Duplicate"),
        Binding("x,delete", "delete", "Delete"),
        Binding("r", "reveal", "Reveal"),
    ]
    DEFAULT_CSS = "RoutesView #routes-selected { height: auto; padding: 0 1; }"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.revealed = False
        self.wide: int | None = None  # the width the table was filled for

    def compose(self) -> ComposeResult:
        yield from super().compose()
        yield Static(id="routes-selected")

    def on_resize(self) -> None:
        width = self.size.width
        if width != self.wide:  # whether the wide table fits depends on the width
            self.wide = width
            self.refresh_view()

    def _password(self, route: Route) -> str:
        if not route.password:
            return ""
        return route.password if self.revealed else "•" * 6

    def fill(self, table: DataTable) -> None:
        width = self.size.width or self.app.size.width
        routes = sorted(self.config.routes.routes.values(), key=lambda r: r.line)
        bad = self.bad_lines({r.line for r in routes})
        columns, rows = COLUMNS, self._wide_rows(routes, bad) if width >= WIDE else []
        # The wide table only when every column fits (a long list of remotes or the
        # reason a line does not parse would push AUTH and TLS off the screen).
        if width < WIDE or _table_width(columns, rows) > width - 2:
            columns, rows = NARROW_COLUMNS, self._narrow_rows(routes, bad, width)
        table.add_columns(*columns)
        for _, key, cells in sorted(rows, key=lambda r: r[0]):
            table.add_row(*cells, key=key)

    def _wide_rows(self, routes: list[Route], bad: list) -> list[tuple[int, str, list]]:
        rows: list[tuple[int, str, list]] = []
        for route in routes:
            cells = [route.name, route.local_text() or "(defaultoutgoingip)",
                     MODE[route.local_mode], route.remotes_text(),
                     MODE[route.remote_mode], route.user or "-",
                     self._password(route) or "-", route.tls]
            rows.append((route.line, route.name, [plain(c) for c in cells]))
        for line in bad:
            cells = self.bad_row(line, 40, why_width=60)
            rows.append((line.number, f"{BAD}{line.number}",
                         [*cells, *[Text("")] * (len(COLUMNS) - len(cells))]))
        return rows

    def _narrow_rows(self, routes: list[Route], bad: list, width: int
                     ) -> list[tuple[int, str, list]]:
        # Every column fits in the width: TLS whole, the name and AUTH cut when they
        # must (an e-mail address as AUTH user is common), the two lists share the
        # rest, each at least as wide as its title; a line that does not parse is
        # "line N" alone when "does not parse" leaves the lists too little.
        auths = {r.name: f"{r.user} {self._password(r)}" if r.user else "-"
                 for r in routes}
        auth_full = max((cell_len(a) for a in auths.values()), default=4)
        free = width - 2 - 2 * len(NARROW_COLUMNS) - len("encrypt")  # scrollbar, padding
        # a long name is cut too: to a third of the room, and to what the lists' and
        # AUTH's titles leave
        name = min(max((cell_len(r.name) for r in routes), default=4),
                   max(len("Name"), min(free // 3, free - LISTS - len("AUTH"))))
        label = max((len(f"line {b.number}: does not parse") for b in bad), default=0)
        short = free - max(name, label) - auth_full < 2 * LISTS
        if short:
            label = max((len(f"line {b.number}") for b in bad), default=0)
        free -= max(name, label)
        auth_w = max(len("AUTH"), min(auth_full, free - LISTS))
        room = max(LISTS, free - auth_w)
        local_min, remote_min = len(NARROW_COLUMNS[1]), len(NARROW_COLUMNS[2])
        local_w = max(local_min, room * 11 // 20)
        remote_w = max(remote_min, room - local_w)
        if not bad:  # a list that needs less than its share leaves the rest to the other
            local_full = max((cell_len(r.local_text() or "(default IP)") for r in routes),
                             default=0)
            remote_full = max((cell_len(r.remotes_text()) for r in routes), default=0)
            if remote_full < remote_w:
                remote_w = max(remote_min, remote_full)
                local_w = max(local_min, room - remote_w)
            elif local_full < local_w:
                local_w = max(local_min, local_full)
                remote_w = max(remote_min, room - local_w)
        rows: list[tuple[int, str, list]] = []
        for route in routes:
            cells = [cut(route.name, name), cut(route.local_text() or "(default IP)", local_w),
                     cut(route.remotes_text(), remote_w), cut(auths[route.name], auth_w),
                     route.tls]
            rows.append((route.line, route.name, [plain(c) for c in cells]))
        for line in bad:
            cells = self.bad_row(line, local_w, why_width=remote_w, short=short)
            rows.append((line.number, f"{BAD}{line.number}",
                         [*cells, *[Text("")] * (len(NARROW_COLUMNS) - len(cells))]))
        return rows

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Under the table: the selected route whole (the narrow table cuts it)."""
        route = self.selected()
        shown = self.query_one("#routes-selected", Static)
        bad = self.bad_selected()
        if bad is not None:  # the row cuts the reason: here it is whole
            shown.update(plain(f"line {bad.number} does not parse: "
                               f"{self.bad_reason(bad)}", theme.style(self.app, "error")))
            return
        if route is None:
            shown.update("")
            return
        local = route.local_text() or "defaultoutgoingip"
        shown.update(plain(
            f"{route.name}: from {local} ({MODE[route.local_mode] or 'one IP'}) to "
            f"{route.remotes_text()} ({MODE[route.remote_mode] or 'one remote'}); AUTH "
            f"{route.user + ' ' + self._password(route) if route.user else 'none'}; "
            f"TLS {route.tls}  (control/routes line {route.line})"))

    def toggle_reveal(self) -> None:
        """Show or mask the passwords."""
        self.revealed = not self.revealed
        self.refresh_view()

    def action_reveal(self) -> None:
        """Show or mask the passwords."""
        self.toggle_reveal()

    def selected(self) -> Route | None:
        """The route under the cursor."""
        key = self.selected_key()
        return self.config.routes.routes.get(key) if key else None

    def action_add(self) -> None:
        """A new route, appended to the file."""
        def build(values: dict[str, str]) -> Edit:
            route = _route(values)
            edit = self.new_edit(f"Add route {route.name} to control/routes")
            edit.insert(len(edit.file.lines) + 1, format_route(route)).select = route.name
            return edit

        self.open_form("New route", FIELDS, {"tls": "may"}, build)

    def action_edit(self) -> None:
        """Change the selected route's line (or fix a line that does not parse)."""
        old = self.selected()
        bad = self.bad_selected()
        if bad is not None:
            def fix(values: dict[str, str]) -> Edit:
                route = _route(values)
                edit = self.new_edit(f"Fix control/routes line {bad.number}")
                edit.replace(bad.number, format_route(route)).select = route.name
                return edit

            self.open_form(f"Fix routes line {bad.number}", FIELDS,
                           line_values(bad.text or ""), fix)
            return
        if old is None:
            return

        def build(values: dict[str, str]) -> Edit:
            route = _route(values)
            edit = self.new_edit(f"Edit route {old.name} (control/routes line {old.line})")
            if route != old._replace(line=0):  # unchanged: keep the line as written
                edit.replace(old.line, format_route(route)).select = route.name
            return edit

        self.open_form(f"Edit route {old.name}", FIELDS, route_values(old), build)

    def action_duplicate(self) -> None:
        """A copy of the selected route, under a new name, just below it."""
        old = self.selected()
        if old is None:
            return
        values = route_values(old)
        values["name"] = f"{old.name}-copy"

        def build(values: dict[str, str]) -> Edit:
            route = _route(values)
            edit = self.new_edit(f"Add route {route.name}, a copy of {old.name}")
            edit.insert(old.line + 1, format_route(route)).select = route.name
            return edit

        self.open_form(f"Duplicate route {old.name}", FIELDS, values, build,
                       frozenset({"name"}))

    def action_delete(self) -> None:
        """Remove the selected route (refused while a routemap line uses it)."""
        old = self.selected()
        bad = self.bad_selected()
        if bad is not None:
            self.confirm(self.new_edit(f"Delete control/routes line {bad.number} (it "
                                       "does not parse)").replace(bad.number, None))
        if old is not None:
            self.confirm(self.new_edit(f"Delete route {old.name} (control/routes line "
                                       f"{old.line})").replace(old.line, None))
