"""A panel listing `qremote check` findings for one control file, where they apply."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from qconsole import theme
from qconsole.safe_text import printable
from qremote.control.findings import Finding

MAX = 6  # findings shown (with a line that counts them all when there are more)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


class FindingsPanel(Static):
    """Errors in red, warnings in yellow, one a line; a quiet line when all is well."""

    DEFAULT_CSS = f"""
    FindingsPanel {{ height: auto; max-height: {MAX + 2}; padding: 0 1;
        border-top: solid $primary; }}
    """

    lines = MAX + 1  # text lines the panel has (fewer on a short terminal)

    def show(self, findings: list[Finding], name: str) -> None:
        """Show ``findings`` (already filtered to control/``name``)."""
        self.shown = (findings, name)
        if not findings:
            self.update(Text(f"control/{name}: no findings", style=theme.style(self.app,
                                                                                "ok")))
            return
        # Errors first (qmail-remote defers every delivery while there is one); the
        # panel holds ``lines`` lines: when there are more, its first line counts them.
        ordered = sorted(findings, key=lambda f: f.severity != "error")
        most = self.lines - 1
        text = Text()
        if len(ordered) > most:
            errors = sum(f.severity == "error" for f in ordered)
            warnings = len(ordered) - errors
            text.append(f"control/{name}: {_count(errors, 'error')}, "
                        f"{_count(warnings, 'warning')} (qremote check lists them all):\n",
                        style="bold")
        for i, f in enumerate(ordered[:most]):
            if i:
                text.append("\n")
            text.append(printable(f.format()), style=theme.style(self.app, f.severity))
        self.update(text)

    def fit(self, height: int) -> None:
        """Take at most ``height`` lines, border included (a short terminal leaves the
        table above its rows); the findings are shown again to match."""
        self.styles.max_height = height
        if height - 1 != self.lines:
            self.lines = height - 1
            if getattr(self, "shown", None) is not None:
                self.show(*self.shown)
