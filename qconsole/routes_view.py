"""The routes view: one row a route, passwords masked until an explicit reveal;
add, edit, duplicate and delete through a form checked by qremote's parser."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable

from qconsole.control_view import ControlView
from qconsole.editing import Edit
from qconsole.form_screen import Field
from qremote.routes import TLS_POLICIES, Route, format_route, route_from_fields

MODE = {"single": "", "failover": "failover", "roundrobin": "rr"}
COLUMNS = ("Name", "Local IPs", "Mode", "Remotes", "Mode", "AUTH user", "Password", "TLS")
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


class RoutesView(ControlView):
    """Routes of control/routes, with the findings about that file."""

    NAME = "routes"
    BINDINGS = [
        Binding("a", "add", "Add"),
        Binding("e", "edit", "Edit"),
        Binding("d", "duplicate", "Duplicate"),
        Binding("x,delete", "delete", "Delete"),
    ]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.revealed = False

    def fill(self, table: DataTable) -> None:
        table.add_columns(*COLUMNS)
        for route in sorted(self.config.routes.routes.values(), key=lambda r: r.line):
            password = route.password if self.revealed else ("•" * 6 if route.password else "")
            table.add_row(route.name,
                          route.local_text() or "(defaultoutgoingip)", MODE[route.local_mode],
                          route.remotes_text(), MODE[route.remote_mode], route.user or "-",
                          password or "-", route.tls, key=route.name)

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
        """Change the selected route's line."""
        old = self.selected()
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

        self.open_form(f"Duplicate route {old.name}", FIELDS, values, build)

    def action_delete(self) -> None:
        """Remove the selected route (refused while a routemap line uses it)."""
        old = self.selected()
        if old is not None:
            self.confirm(self.new_edit(f"Delete route {old.name} (control/routes line "
                                       f"{old.line})").replace(old.line, None))
