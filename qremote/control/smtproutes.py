"""qmail's ``smtproutes``: ``domain:relay[:port]`` with qmail's own lookup order.

For HOST ``a.b.example.com`` qmail tries ``a.b.example.com``, ``.b.example.com``,
``.example.com``, ``.com`` and finally the empty key (the ``:relay`` default line).
An empty relay means "look up the MX as usual". As with qmail's constmap, when a key
is written twice the later line wins (``qremote check`` warns about it).
"""

from __future__ import annotations

from typing import NamedTuple

from qremote.control.addresses import parse_endpoint
from qremote.control.controlfile import ControlFile
from qremote.control.findings import Finding
from qremote.control.routes import Remote
from qremote.errors import LineError


class SmtpRoute(NamedTuple):
    """One smtproutes entry; ``relay`` None means MX lookup."""

    key: str
    relay: Remote | None
    line: int = 0


def parse_smtproute(text: str, line: int = 0) -> SmtpRoute:
    """Parse one smtproutes line (trailing white space already removed)."""
    key, sep, value = text.partition(":")
    if not sep:
        raise LineError("no ':' in the line; write domain:relay, domain:relay:port "
                        "or :relay for the default")
    key = key.strip().lower()
    if any(c.isspace() for c in key):
        raise LineError(f"domain {key!r} contains white space")
    value = value.strip()
    if not value:
        return SmtpRoute(key, None, line)
    host, is_ip, port = parse_endpoint(value)
    return SmtpRoute(key, Remote(host, port, is_ip), line)


class SmtpRoutes:
    """Parsed smtproutes: entries by key (the later line wins), findings."""

    def __init__(self, source: ControlFile, findings: list[Finding] | None = None) -> None:
        self.source = source
        self.entries: dict[str, SmtpRoute] = {}
        self.findings: list[Finding] = findings or []

    def lookup(self, host: str) -> SmtpRoute | None:
        """The entry qmail would use for HOST, or None."""
        host = host.lower()
        entries = self.entries
        if not entries:
            return None
        for i in range(len(host) + 1):
            if i == 0 or i == len(host) or host[i] == ".":
                entry = entries.get(host[i:])
                if entry is not None:
                    return entry
        return None


def parse_smtproutes(source: ControlFile) -> SmtpRoutes:
    """Parse an smtproutes file; malformed lines become findings."""
    result = SmtpRoutes(source, findings=source.line_findings())
    for entry in source.parsed(lambda text, n: parse_smtproute(text.rstrip(" \t"), n),
                               result.findings):
        earlier = result.entries.get(entry.key)
        if earlier is not None:
            result.findings.append(Finding(
                source.name, earlier.line, "warning",
                f"entry for {entry.key or '(default)'!r} is overridden by line "
                f"{entry.line} (as in qmail, the later line wins)"))
        result.entries[entry.key] = entry
    return result
