"""The ``routes`` control file: ``NAME;LOCAL_IPS;REMOTES;USER;PASS[;OPTIONS]``.

One parser for qmail-remote, ``qremote check`` and the console's forms: parse a line
with :func:`parse_route`, write one back with :func:`format_route`.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

from qremote.control.addresses import parse_endpoint, parse_ip
from qremote.control.controlfile import ControlFile
from qremote.control.findings import Finding
from qremote.errors import FieldError, LineError

Mode = Literal["single", "failover", "roundrobin"]
TlsPolicy = Literal["none", "may", "encrypt", "verify"]

TLS_POLICIES: tuple[TlsPolicy, ...] = ("none", "may", "encrypt", "verify")
SMTPS_PORT = 465
_NAME = re.compile(r"^[A-Za-z0-9-]+$")
_SEPARATORS = {"&": "failover", "|": "roundrobin"}
_MODE_SEPARATOR = {"failover": "&", "roundrobin": "|", "single": ""}


class Remote(NamedTuple):
    """One REMOTES item: ``mx``, or a host or IP with its port."""

    host: str  # "mx", a lower-case host name, or a canonical IP
    port: int = 25
    is_ip: bool = False

    @property
    def is_mx(self) -> bool:
        """True for the ``mx`` item."""
        return self.host == "mx"

    @property
    def implicit_tls(self) -> bool:
        """Port 465 means SMTPS: TLS from the first byte."""
        return self.port == SMTPS_PORT

    def __str__(self) -> str:
        if self.is_mx:
            return "mx"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 25 else f"{host}:{self.port}"


class Route(NamedTuple):
    """A parsed route; ``local_ips`` empty means ``defaultoutgoingip``."""

    name: str
    local_ips: tuple[str, ...] = ()
    local_mode: Mode = "single"
    remotes: tuple[Remote, ...] = (Remote("mx"),)
    remote_mode: Mode = "single"
    user: str = ""
    password: str = ""
    tls: TlsPolicy = "may"
    line: int = 0

    @property
    def auth(self) -> bool:
        """True when the route carries SMTP AUTH credentials."""
        return bool(self.user)

    def local_text(self) -> str:
        """LOCAL_IPS as it would be written."""
        return _MODE_SEPARATOR[self.local_mode].join(self.local_ips)

    def remotes_text(self) -> str:
        """REMOTES as it would be written."""
        return _MODE_SEPARATOR[self.remote_mode].join(str(r) for r in self.remotes)


def _split_list(text: str, what: str) -> tuple[list[str], Mode]:
    """Split an ``&`` or ``|`` list; mixing both, or empty items, is an error."""
    present = [sep for sep in _SEPARATORS if sep in text]
    if len(present) > 1:
        raise LineError(f"{what} {text!r} mixes '&' and '|'; use one kind of list "
                        "('&' failover or '|' round robin)")
    if not present:
        return [text.strip()], "single"
    sep = present[0]
    items = [item.strip() for item in text.split(sep)]
    if any(not item for item in items):
        raise LineError(f"{what} {text!r} has an empty item; remove the extra {sep!r}")
    return items, _SEPARATORS[sep]  # type: ignore[return-value]


def parse_local_ips(text: str) -> tuple[tuple[str, ...], Mode]:
    """LOCAL_IPS: empty, one IP, or an ``&`` / ``|`` list of IPs."""
    if not text.strip():
        return (), "single"
    items, mode = _split_list(text, "LOCAL_IPS")
    ips = tuple(parse_ip(item, "local IP") for item in items)
    dupes = {ip for ip in ips if ips.count(ip) > 1}
    if dupes:
        raise LineError(f"local IP {sorted(dupes)[0]} is listed twice")
    return ips, mode


def parse_remotes(text: str) -> tuple[tuple[Remote, ...], Mode]:
    """REMOTES: empty (``mx``), or an ``&`` / ``|`` list of ``mx`` and endpoints."""
    if not text.strip():
        return (Remote("mx"),), "single"
    items, mode = _split_list(text, "REMOTES")
    remotes: list[Remote] = []
    for item in items:
        if item.lower() == "mx":
            if mode == "roundrobin":
                raise LineError("'mx' cannot be part of a '|' round-robin list; "
                                "use '&' (failover), e.g. mx&relay.example.net:587")
            remotes.append(Remote("mx"))
        else:
            host, is_ip, port = parse_endpoint(item)
            remotes.append(Remote(host, port, is_ip))
    if len(set(remotes)) < len(remotes):
        raise LineError(f"REMOTES {text!r} lists the same remote twice")
    return tuple(remotes), mode


# OPTIONS follows PASS: if a password held a ';', its tail would be read as OPTIONS,
# so no finding about OPTIONS ever quotes it.
_NO_SEMICOLON = ("; a PASS cannot contain ';' (the fields are split on it): if that is "
                 "the case, change the password")


def parse_options(text: str) -> TlsPolicy:
    """OPTIONS: comma-separated ``key=value``; today only ``tls``. Errors never quote
    the field (see ``_NO_SEMICOLON``)."""
    tls: TlsPolicy = "may"
    seen: set[str] = set()
    for n, item in enumerate((i.strip() for i in text.split(",")), 1):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip().lower()
        if not sep:
            raise LineError(f"OPTIONS item {n} is not key=value (e.g. tls=verify)"
                            + _NO_SEMICOLON)
        if key != "tls":
            raise LineError(f"OPTIONS item {n} is not a known option (the only one is "
                            f"tls={'|'.join(TLS_POLICIES)})" + _NO_SEMICOLON)
        if key in seen:
            raise LineError("option tls is given twice")
        seen.add(key)
        if value not in TLS_POLICIES:
            raise LineError(f"the tls value is not one of {', '.join(TLS_POLICIES)}")
        tls = value  # type: ignore[assignment]
    return tls


def parse_route(text: str, line: int = 0) -> Route:
    """Parse one routes line (no comment, no terminator) into a :class:`Route`."""
    fields = text.split(";")
    if len(fields) not in (5, 6):
        hint = _NO_SEMICOLON if len(fields) > 6 else ""
        raise LineError(f"expected 5 or 6 fields separated by ';' "
                        f"(NAME;LOCAL_IPS;REMOTES;USER;PASS[;OPTIONS]), found {len(fields)}"
                        + hint)
    name = fields[0].strip()
    if not name:
        raise LineError("empty route name; letters, digits and '-' only")
    if not _NAME.match(name):
        raise LineError(f"route name {name!r} may hold only letters, digits and '-'")
    local_ips, local_mode = parse_local_ips(fields[1])
    remotes, remote_mode = parse_remotes(fields[2])
    user, password = fields[3].strip(), fields[4].strip()
    for what, value in (("USER", user), ("PASS", password)):
        if any(ord(c) < 32 or ord(c) == 127 for c in value):  # never echo the value
            raise LineError(f"{what} contains a control character (a tab, an escape ...); "
                            "write it with printable characters only")
    if bool(user) != bool(password):
        missing = "PASS" if user else "USER"
        hint = _NO_SEMICOLON if len(fields) == 6 and user else ""
        raise LineError(f"USER and PASS go together; {missing} is empty" + hint)
    tls = parse_options(fields[5]) if len(fields) == 6 else "may"
    return Route(name, local_ips, local_mode, remotes, remote_mode, user, password, tls,
                 line)


FIELDS = ("name", "local_ips", "remotes", "user", "password", "tls")


def route_from_fields(name: str, local_ips: str, remotes: str, user: str, password: str,
                      tls: str) -> Route:
    """Validate a route given field by field (the console's form) with the same rules
    as :func:`parse_route`; a FieldError names the field at fault."""
    values = dict(zip(FIELDS, (name, local_ips, remotes, user, password, tls),
                      strict=True))
    for field, value in values.items():
        if ";" in value or "\n" in value or "\r" in value:
            raise FieldError(field, "';' and line breaks separate routes and fields; "
                                    "they cannot appear in a value")
    checks = (("name", lambda: parse_route(f"{name};;;;")),
              ("local_ips", lambda: parse_local_ips(local_ips)),
              ("remotes", lambda: parse_remotes(remotes)),
              ("tls", lambda: parse_options(f"tls={tls}")))
    for field, run in checks:
        try:
            run()
        except LineError as exc:
            raise FieldError(field, str(exc)) from None
    try:
        return parse_route(";".join((name, local_ips, remotes, user, password,
                                     f"tls={tls}")))
    except LineError as exc:
        raise FieldError("password" if user else "user", str(exc)) from None


MASK = "********"


def mask_password(text: str) -> str:
    """A routes line with its PASS field replaced by :data:`MASK` (and every field after
    it too, unless that is a valid OPTIONS: a ';' in a password pushes its tail there);
    any other line unchanged. For showing a line; never for parsing."""
    body = text.rstrip("\r\n")
    ending = text[len(body):]
    stripped = body.strip()
    fields = body.split(";")
    if not stripped or stripped.startswith("#") or len(fields) < 5:
        return text
    options_ok = len(fields) == 5
    if len(fields) == 6:
        try:
            parse_options(fields[5])
            options_ok = True
        except LineError:
            pass
    if options_ok and not fields[4]:
        return text
    tail = fields[5:6] if options_ok else []
    return ";".join([*fields[:4], MASK, *tail]) + ending


def format_route(route: Route) -> str:
    """The routes line for ``route``; ``parse_route(format_route(r))`` equals ``r``."""
    fields = [route.name, route.local_text(), route.remotes_text(), route.user,
              route.password]
    if route.tls != "may":
        fields.append(f"tls={route.tls}")
    return ";".join(fields)


class RoutesFile:
    """The parsed ``routes`` file: routes by name, and the findings about it."""

    def __init__(self, source: ControlFile, findings: list[Finding] | None = None) -> None:
        self.source = source
        self.routes: dict[str, Route] = {}
        self.findings: list[Finding] = findings or []


def parse_routes(source: ControlFile) -> RoutesFile:
    """Parse every line of a routes file; malformed lines become findings."""
    result = RoutesFile(source, findings=source.line_findings())
    for route in source.parsed(lambda text, n: parse_route(text.strip(), n),
                               result.findings):
        earlier = result.routes.get(route.name)
        if earlier is not None:
            result.findings.append(Finding(
                source.name, route.line, "error",
                f"route {route.name!r} is already defined at line {earlier.line}; "
                "route names must be unique"))
            continue
        result.routes[route.name] = route
    return result
