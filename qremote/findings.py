"""Findings: what `qremote check` (and every parser) says about a control file line."""

from __future__ import annotations

from typing import Literal, NamedTuple

Severity = Literal["error", "warning"]


class Finding(NamedTuple):
    """One error or warning about one line (``line`` 0 means the file as a whole)."""

    file: str
    line: int
    severity: Severity
    text: str

    def format(self) -> str:
        """The contract's form: ``control/FILE:LINE: error: TEXT``."""
        return f"control/{self.file}:{self.line}: {self.severity}: {self.text}"

