"""The routemap view: rules in order, shadowed rules and unknown routes highlighted."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

from qconsole.findings_panel import FindingsPanel
from qremote.config import Config
from qremote.findings import Finding


class RoutemapView(Vertical):
    """Rules of control/routemap; the first matching line wins."""

    def __init__(self, config: Config, findings: list[Finding], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.findings = [f for f in findings if f.file == "routemap"
                         or (f.file == "routes" and "not used by any routemap" in f.text)]

    def compose(self) -> ComposeResult:
        yield DataTable(cursor_type="row", zebra_stripes=True, id="routemap-table")
        yield FindingsPanel(id="routemap-findings")

    def on_mount(self) -> None:
        self.refresh_view()

    def refresh_view(self) -> None:
        """Fill the table; a note says why a rule is highlighted."""
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_columns("Line", "Sender domain", "Recipient domain", "Route", "Note")
        routes = self.config.routes.routes
        for rule in self.config.routemap.rules:
            shadow = self.config.routemap.shadowing(rule)
            if rule.route not in routes:
                note = Text("route not defined", style="bold red")
            elif shadow is not None:
                note = Text(f"never matches: line {shadow.line} first", style="yellow")
            else:
                note = Text("")
            table.add_row(str(rule.line), rule.sender, rule.recipient, rule.route, note,
                          key=str(rule.line))
        self.query_one(FindingsPanel).show(self.findings, "routemap")
