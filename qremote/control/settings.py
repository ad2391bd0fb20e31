"""qmail's single-value control files and the project's ``defaultoutgoingip`` and
``dnsservers``: each parsed from a :class:`ControlFile` into a value plus findings."""

from __future__ import annotations

from qremote.control.addresses import parse_endpoint, parse_ip
from qremote.control.controlfile import ControlFile, Line
from qremote.control.findings import Finding
from qremote.errors import LineError

TIMEOUT_CONNECT = 60
TIMEOUT_REMOTE = 1200
# The worker's connection cache (qremote's own files; Postfix's defaults).
REUSE_IDLE = 2
REUSE_LIFETIME = 300
REUSE_MESSAGES = 100
MAX_TIMEOUT = 86400  # a day; more is a typo, and sockets refuse absurd values


def first_line(source: ControlFile) -> tuple[Line | None, list[Finding]]:
    """The first non-comment line, as qmail's control_readline reads it."""
    findings = source.line_findings()
    for line in source.content():
        return line, findings
    return None, findings


def parse_text(source: ControlFile) -> tuple[str | None, list[Finding]]:
    """``me`` or ``helohost``: the first line, trailing white space removed."""
    line, findings = first_line(source)
    if line is None or line.text is None:
        return None, findings
    value = line.text.strip()
    if any(c.isspace() for c in value):
        findings.append(Finding(source.name, line.number, "error",
                                f"{value!r} contains white space; write one host name"))
        return None, findings
    return value, findings


def parse_seconds(source: ControlFile, default: int, minimum: int = 1,
                  maximum: int = MAX_TIMEOUT, unit: str = "seconds",
                  ) -> tuple[int, list[Finding]]:
    """A whole number from ``minimum`` to ``maximum`` (``timeoutconnect`` and
    ``timeoutremote``: seconds, 1 to a day)."""
    line, findings = first_line(source)
    if line is None or line.text is None:
        return default, findings
    value = line.text.strip()
    digits = (value.lstrip("0") or "0") if value.isascii() and value.isdigit() else ""
    if not digits or int(digits) < minimum:
        findings.append(Finding(source.name, line.number, "error",
                                f"{value[:40]!r} is not a whole number of {unit} from "
                                f"{minimum} to {maximum}; the default is {default}"))
        return default, findings
    if len(digits) > len(str(maximum)) or int(digits) > maximum:
        findings.append(Finding(source.name, line.number, "error",
                                f"{value[:40]} {unit} is more than {maximum}; write at "
                                f"most that (the default is {default})"))
        return default, findings
    return int(digits), findings


def parse_outgoing_ip(source: ControlFile) -> tuple[str | None, list[Finding]]:
    """``defaultoutgoingip``: one local IP address."""
    line, findings = first_line(source)
    if line is None or line.text is None:
        return None, findings
    try:
        return parse_ip(line.text.strip(), "default outgoing IP"), findings
    except LineError as exc:
        findings.append(Finding(source.name, line.number, "error", str(exc)))
        return None, findings


def parse_dnsservers(source: ControlFile) -> tuple[list[tuple[str, int]], list[Finding]]:
    """``dnsservers``: ``IP`` or ``IP:PORT`` (``[IPv6]:PORT``), one a line."""
    findings = source.line_findings()
    servers: list[tuple[str, int]] = []
    for line in source.content():
        if line.text is None:
            continue
        text = line.text.strip()
        try:
            if text.count(":") > 1 and not text.startswith("["):
                servers.append((parse_ip(text, "DNS server"), 53))
                continue
            host, is_ip, port = parse_endpoint(text, default_port=53)
            if not is_ip:
                raise LineError(f"DNS server {text!r} must be an IP address, not a name")
            servers.append((host, port))
        except LineError as exc:
            findings.append(Finding(source.name, line.number, "error", str(exc)))
    return servers, findings
