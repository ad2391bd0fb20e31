"""The root exception of qremote and its few specialisations.

Every error the package raises on purpose derives from :class:`QremoteError`, so a
caller (qmail-remote above all) can turn any of them into a clear report.
"""

from __future__ import annotations


class QremoteError(Exception):
    """Root of every error qremote raises on purpose."""


class LineError(QremoteError):
    """One line of a control file is malformed; ``str()`` says why and how to fix it."""


class FieldError(LineError):
    """One field of a console form is invalid; ``field`` names it."""

    def __init__(self, field: str, text: str) -> None:
        self.field = field
        super().__init__(text)


class DnsError(QremoteError):
    """A DNS lookup failed; ``permanent`` is true only for NXDOMAIN."""

    def __init__(self, name: str, text: str, permanent: bool = False) -> None:
        self.name = name
        self.permanent = permanent
        super().__init__(text)
