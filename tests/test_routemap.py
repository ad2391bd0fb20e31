"""Routemap: first match wins, the index equals a linear scan, shadowing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qremote.control.controlfile import ControlFile
from qremote.control.routemap import Rule, format_rule, parse_routemap, parse_rule, rule_from_fields
from qremote.errors import FieldError, LineError

SEED = b"domaine1.com;*;route1\n*;domaine2.com;route2\ndomaine1.com;domaine2.com;route3\n" \
       b"*;*;route4\n"


def test_seed_routemap() -> None:
    rm = parse_routemap(ControlFile.from_bytes("routemap", SEED))
    assert rm.lookup("domaine1.com", "anything.org").route == "route1"
    assert rm.lookup("other.org", "domaine2.com").route == "route2"
    # Line 3 comes after line 1, which already matches domaine1.com senders.
    assert rm.lookup("domaine1.com", "domaine2.com").route == "route1"
    assert rm.lookup("x.org", "y.org").route == "route4"
    assert rm.lookup(None, "y.org").route == "route4"
    assert rm.shadowing(rm.rules[2]).line == 1
    assert rm.shadowing(rm.rules[3]) is None


def test_case_insensitive_and_null_sender() -> None:
    rm = parse_routemap(ControlFile.from_bytes(
        "routemap", b"# c\n<>;*;bounces\nExample.COM;Dest.ORG;r\n"))
    assert rm.lookup(None, "x.org").route == "bounces"
    assert rm.lookup("example.com", "DEST.org").route == "r"
    assert rm.lookup("example.com", "dest.org").line == 3
    assert rm.lookup("", "x.org") is None  # an empty domain is not the null sender


@pytest.mark.parametrize("line", ["a.com;*;r1", "<>;*;bounces", "*;b.org;r-2",
                                  "[192.0.2.1];*;r"])
def test_format_then_parse_is_identity(line: str) -> None:
    rule = parse_rule(line, 7)
    assert format_rule(rule) == line and parse_rule(format_rule(rule), 7) == rule


@pytest.mark.parametrize(("line", "message"), [
    ("a.com;b.com", "expected 3 fields"),
    (";b.com;r", "empty sender domain"),
    ("a.com;;r", "empty recipient domain"),
    ("a.com;b.com;", "empty ROUTE"),
    ("user@a.com;*;r", "write only its domain"),
    ("*;<>;r", "cannot be a recipient domain"),
    ("a..com;*;r", "not a valid domain"),
    ("a com;*;r", "white space"),
    # A control character can be in no domain: the rule would never match, silently.
    ("*;b\x1b[5m.test;mute", "contains a control character"),
    ("a\x7f.com;*;r", "contains a control character"),
    ("*;b\x9b.com;r", "contains a control character"),
])
def test_malformed(line: str, message: str) -> None:
    with pytest.raises(LineError) as info:
        parse_rule(line)
    assert message in str(info.value)


domains = st.sampled_from(["a.com", "b.com", "c.org", "*"])


@given(st.lists(st.tuples(st.sampled_from(["a.com", "b.com", "*", "<>"]), domains),
                max_size=12),
       st.sampled_from(["a.com", "b.com", "z.net", None]),
       st.sampled_from(["a.com", "b.com", "c.org", "z.net"]))
def test_index_equals_linear_scan(pairs: list[tuple[str, str]], sender: str | None,
                                  rcpt: str) -> None:
    text = "".join(f"{s};{r};route{i}\n" for i, (s, r) in enumerate(pairs))
    rm = parse_routemap(ControlFile.from_bytes("routemap", text.encode()))

    def matches(rule: Rule) -> bool:
        s_ok = rule.sender == "*" or rule.sender == ("<>" if sender is None else sender)
        return s_ok and rule.recipient in ("*", rcpt)

    expected = next((r for r in rm.rules if matches(r)), None)
    assert rm.lookup(sender, rcpt) == expected


@pytest.mark.parametrize(("values", "field", "text"), [
    (("", "*", "r"), "sender", "required"),
    (("a b", "*", "r"), "sender", "white space"),
    (("*", "<>", "r"), "recipient", "null sender"),
    (("*", "*", ""), "route", "required"),
])
def test_rule_from_fields_names_the_field(values, field, text) -> None:
    with pytest.raises(FieldError) as info:
        rule_from_fields(*values)
    assert info.value.field == field and text in str(info.value)
    assert rule_from_fields("<>", "Example.COM.", "r") == parse_rule("<>;example.com;r")
