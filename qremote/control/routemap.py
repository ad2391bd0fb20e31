"""The ``routemap`` control file: ``SENDER_DOMAIN;RECIPIENT_DOMAIN;ROUTE``.

The first matching line wins. Lookups do not scan the list: rules are indexed by
their exact (sender, recipient) keys, each key keeping its earliest line, so a
lookup is four dictionary probes whatever the size of the file.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from qremote.control.addresses import NOT_IN_DOMAIN, parse_domain
from qremote.control.controlfile import ControlFile
from qremote.control.findings import Finding
from qremote.errors import FieldError, LineError

ANY = "*"
NULL_SENDER = "<>"
_DOMAIN = rf"[^{NOT_IN_DOMAIN}.]+(?:\.[^{NOT_IN_DOMAIN}.]+)*"
# The common, well-formed line in one match; anything else takes the explaining path.
_PLAIN_RULE = re.compile(rf"(\*|<>|{_DOMAIN})\.?;(\*|{_DOMAIN})\.?;([^;\s]+)")


class Rule(NamedTuple):
    """One routemap line; ``sender`` is a domain, ``*`` or ``<>``."""

    sender: str
    recipient: str
    route: str
    line: int = 0

    def covers(self, other: Rule) -> bool:
        """True when every delivery ``other`` matches is matched by this rule too."""
        return (self.sender in (ANY, other.sender)
                and self.recipient in (ANY, other.recipient))


def parse_rule(text: str, line: int = 0) -> Rule:
    """Parse one routemap line (no comment, no terminator)."""
    m = _PLAIN_RULE.fullmatch(text)
    if m is not None and len(text) < 250:
        # tuple.__new__ skips NamedTuple's Python-level __new__: this is the hot path.
        return _new_rule(Rule, (m[1].lower(), m[2].lower(), m[3], line))
    fields = [f.strip() for f in text.split(";")]
    if len(fields) != 3:
        raise LineError("expected 3 fields separated by ';' "
                        f"(SENDER_DOMAIN;RECIPIENT_DOMAIN;ROUTE), found {len(fields)}")
    sender, recipient, route = fields
    if sender not in (ANY, NULL_SENDER):
        sender = parse_domain(sender, "sender domain")
    if recipient == NULL_SENDER:
        raise LineError("'<>' matches only the null sender; "
                        "it cannot be a recipient domain")
    if recipient != ANY:
        recipient = parse_domain(recipient, "recipient domain")
    if not route:
        raise LineError("empty ROUTE; name a route of control/routes")
    return Rule(sender, recipient, route, line)


_new_rule = tuple.__new__


def rule_from_fields(sender: str, recipient: str, route: str) -> Rule:
    """Validate a rule given field by field (the console's form) with the same rules
    as :func:`parse_rule`; a FieldError names the field at fault. Whether the route
    exists is the configuration's check, as for a line of the file."""
    checks = (("sender", sender, f"{sender};*;x"), ("recipient", recipient, f"*;{recipient};x"),
              ("route", route, f"*;*;{route}"))
    for field, value, text in checks:
        if not value.strip():
            raise FieldError(field, "required" if field == "route"
                             else "required; * matches any domain")
        if ";" in value or "\n" in value or "\r" in value:
            raise FieldError(field, "';' and line breaks cannot appear in a value")
        try:
            parse_rule(text)
        except LineError as exc:
            raise FieldError(field, str(exc)) from None
    return parse_rule(f"{sender.strip()};{recipient.strip()};{route.strip()}")


def format_rule(rule: Rule) -> str:
    """The routemap line for ``rule``."""
    return f"{rule.sender};{rule.recipient};{rule.route}"


class RouteMap:
    """Parsed routemap: rules in file order, the first-match index, findings."""

    def __init__(self, source: ControlFile, findings: list[Finding] | None = None) -> None:
        self.source = source
        self.rules: list[Rule] = []
        self.findings: list[Finding] = findings or []
        # (sender, recipient) -> the first rule with those keys (a Rule, or a plain
        # tuple when loaded from the compiled cache).
        self._first: dict[tuple[str, str], tuple[str, str, str, int]] = {}

    def add(self, rule: Rule) -> None:
        """Append ``rule`` (rules must be added in file order)."""
        self.rules.append(rule)
        self._first.setdefault((rule[0], rule[1]), rule)

    def index(self) -> dict[tuple[str, str], tuple[str, str, str, int]]:
        """The first-match index with plain tuples: all a lookup needs (what the
        cache stores; marshal takes no NamedTuple)."""
        return {key: tuple(rule) for key, rule in self._first.items()}

    def load_index(self, index: dict[tuple[str, str], tuple[str, str, str, int]]) -> None:
        """Use ``index`` (from :meth:`index` via the compiled cache) for lookups."""
        self._first = index

    def lookup(self, sender_domain: str | None, recipient_domain: str) -> Rule | None:
        """The first rule matching (sender domain or None for ``<>``, recipient domain)."""
        senders = (NULL_SENDER if sender_domain is None else sender_domain, ANY)
        recipients = (recipient_domain.lower(), ANY)
        best = None
        first = self._first
        for s in senders:
            for r in recipients:
                rule = first.get((s, r))
                if rule is not None and (best is None or rule[3] < best[3]):
                    best = rule
        return Rule._make(best) if best is not None else None

    def shadowing(self, rule: Rule) -> Rule | None:
        """The earliest earlier rule that matches everything ``rule`` matches."""
        best: Rule | None = None
        for s in {rule.sender, ANY}:
            for r in {rule.recipient, ANY}:
                other = self._first.get((s, r))
                if (other is not None and other[3] < rule.line
                        and (best is None or other[3] < best.line)):
                    best = Rule._make(other)
        return best


def parse_routemap(source: ControlFile) -> RouteMap:
    """Parse a routemap file; malformed lines become findings."""
    result = RouteMap(source, findings=source.line_findings())
    for rule in source.parsed(parse_rule, result.findings):
        result.add(rule)
    return result
