"""A panel listing `qremote check` findings for one control file, where they apply."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from qconsole import theme
from qconsole.safe_text import printable
from qremote.control.findings import Finding


class FindingsPanel(Static):
    """Errors in red, warnings in yellow, one a line; a quiet line when all is well."""

    DEFAULT_CSS = """
    FindingsPanel { height: auto; max-height: 8; padding: 0 1; border-top: solid $primary; }
    """

    def show(self, findings: list[Finding], name: str) -> None:
        """Show ``findings`` (already filtered to control/``name``)."""
        if not findings:
            self.update(Text(f"control/{name}: no findings", style=theme.style(self.app,
                                                                                "ok")))
            return
        text = Text()
        for i, f in enumerate(findings):
            if i:
                text.append("\n")
            text.append(printable(f.format()), style=theme.style(self.app, f.severity))
        self.update(text)
