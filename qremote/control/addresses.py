"""Syntax of the things control files name: IP addresses, host names, ports, domains.

Each function takes the text as written and returns a normalised value, or raises
:class:`~qremote.errors.LineError` with a message that says what to write instead.
"""

from __future__ import annotations

import ipaddress
import re

from qremote.errors import LineError

_LABEL_RE = r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)"
_LABEL = re.compile(rf"^{_LABEL_RE}$")
_HOSTNAME = re.compile(rf"{_LABEL_RE}(?:\.{_LABEL_RE})*\.?")
_DOTTED_NUMBERS = re.compile(r"^[0-9.]+$")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
# What no domain holds: white space, punctuation that has no place in one, control
# characters (C0, DEL, C1).
NOT_IN_DOMAIN = r"\s@;:,<>()\"'\\/\[\]\x00-\x1f\x7f-\x9f"
# A plain domain: none of those, no empty label. Checked in one regex; the slow path
# below only runs to explain a failure.
_PLAIN_DOMAIN = re.compile(rf"(?!\.)(?!.*\.\.)[^{NOT_IN_DOMAIN}]{{1,253}}")


def parse_ip(text: str, what: str = "IP address") -> str:
    """An IPv4 or IPv6 address (IPv6 optionally in brackets), in canonical form."""
    if _CANONICAL_IPV4.fullmatch(text):
        return text
    raw = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        addr = ipaddress.ip_address(raw)
    except ValueError:
        if _DOTTED_NUMBERS.match(raw):
            raise LineError(f"{what} {text!r} is not a valid IPv4 address "
                            "(each of the four numbers is 0 to 255)") from None
        raise LineError(f"{what} {text!r} is not an IPv4 or IPv6 address") from None
    return str(addr)


def is_ipv6(address: str) -> bool:
    """True when ``address`` (canonical form) is IPv6."""
    return ":" in address


def parse_port(text: str, where: str) -> int:
    """A TCP port, 1 to 65535."""
    if not text.isdigit() or not text.isascii():
        raise LineError(f"port {text!r} in {where!r} is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise LineError(f"port {port} in {where!r} is out of range (1 to 65535)")
    return port


def check_hostname(text: str) -> str:
    """A DNS host name (letters, digits, ``-``, ``_``, dots), lower-cased."""
    if len(text) <= 253 and _HOSTNAME.fullmatch(text) and not _DOTTED_NUMBERS.match(text):
        return (text[:-1] if text.endswith(".") else text).lower()
    name = text[:-1] if text.endswith(".") else text
    if not name:
        raise LineError("empty host name")
    if len(name) > 253:
        raise LineError(f"host name {text[:40]!r}... is longer than 253 characters")
    if _DOTTED_NUMBERS.match(name):
        raise LineError(f"{text!r} is not a valid IPv4 address "
                        "(each of the four numbers is 0 to 255)")
    for label in name.split("."):
        if not _LABEL.match(label):
            raise LineError(f"{text!r} is not a valid host name "
                            "(letters, digits and '-' between dots)")
    return name.lower()


def parse_endpoint(text: str, default_port: int = 25) -> tuple[str, bool, int]:
    """``HOST[:PORT]``, ``IPv4[:PORT]`` or ``[IP][:PORT]``.

    Returns (host or canonical IP, is_ip, port).
    """
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise LineError(f"{text!r}: missing ']' after the bracketed address")
        host, rest = text[1:end], text[end + 1:]
        if rest and not rest.startswith(":"):
            raise LineError(f"{text!r}: write [ADDRESS]:PORT")
        port = parse_port(rest[1:], text) if rest else default_port
        return parse_ip(host), True, port
    if text.count(":") > 1:
        raise LineError(f"{text!r}: write an IPv6 address in brackets, "
                        "e.g. [2001:db8::1]:25")
    host, sep, port_text = text.partition(":")
    port = parse_port(port_text, text) if sep else default_port
    if _CANONICAL_IPV4.fullmatch(host):
        return host, True, port
    return check_hostname(host), False, port


def parse_domain(text: str, what: str) -> str:
    """A mail domain as it appears after ``@``, lower-cased (IDN text allowed)."""
    if _PLAIN_DOMAIN.fullmatch(text):
        return (text[:-1] if text.endswith(".") else text).lower()
    if not text:
        raise LineError(f"empty {what}; write a domain, or * for any")
    if "@" in text:
        raise LineError(f"{what} {text!r} is an address; write only its domain, "
                        f"e.g. {text.rsplit('@', 1)[1] or 'example.com'!r}")
    if any(c.isspace() for c in text):
        raise LineError(f"{what} {text!r} contains white space")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text):  # (no domain holds one:
        raise LineError(f"{what} {text!r} contains a control character; "  # it would
                        "write a plain domain")  # never match, and check said nothing)
    if text.startswith("[") and text.endswith("]"):
        return "[" + parse_ip(text[1:-1]) + "]"
    name = text[:-1] if text.endswith(".") else text
    if not name or ".." in name or name.startswith(".") or len(name) > 253:
        raise LineError(f"{what} {text!r} is not a valid domain")
    for ch in ";:,<>()\"'\\/":
        if ch in name:
            raise LineError(f"{what} {text!r} contains {ch!r}; write a plain domain")
    return name.lower()


def sender_domain(sender: str) -> str | None:
    """The domain of an envelope sender, lower-cased; None for the null sender ``<>``."""
    if sender in ("", "<>"):
        return None
    return sender.rpartition("@")[2].lower()
