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
        """The contract's form: ``control/FILE:LINE: error: TEXT`` (``control/: ...``
        for a finding about the control files as a whole, ``file`` empty)."""
        if not self.file:
            return f"control/: {self.severity}: {self.text}"
        return f"control/{self.file}:{self.line}: {self.severity}: {self.text}"

