"""The routes view: one row a route, passwords masked until an explicit reveal."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

from qconsole.findings_panel import FindingsPanel
from qremote.config import Config
from qremote.findings import Finding

MODE = {"single": "", "failover": "failover", "roundrobin": "rr"}
COLUMNS = ("Name", "Local IPs", "Mode", "Remotes", "Mode", "AUTH user", "Password", "TLS")


class RoutesView(Vertical):
    """Routes of control/routes, with the findings about that file."""

    def __init__(self, config: Config, findings: list[Finding], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.findings = [f for f in findings if f.file == "routes"]
        self.revealed = False

    def compose(self) -> ComposeResult:
        table: DataTable = DataTable(cursor_type="row", zebra_stripes=True, id="routes-table")
        yield table
        yield FindingsPanel(id="routes-findings")

    def on_mount(self) -> None:
        self.refresh_view()

    def refresh_view(self) -> None:
        """Fill the table from the configuration."""
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_columns(*COLUMNS)
        for route in sorted(self.config.routes.routes.values(), key=lambda r: r.line):
            password = route.password if self.revealed else ("•" * 6 if route.password else "")
            table.add_row(route.name,
                          route.local_text() or "(defaultoutgoingip)", MODE[route.local_mode],
                          route.remotes_text(), MODE[route.remote_mode], route.user or "-",
                          password or "-", route.tls, key=route.name)
        self.query_one(FindingsPanel).show(self.findings, "routes")

    def toggle_reveal(self) -> None:
        """Show or mask the passwords."""
        self.revealed = not self.revealed
        self.refresh_view()
