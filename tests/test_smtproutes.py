"""smtproutes with qmail's lookup order and value forms."""

from __future__ import annotations

from qremote.control.controlfile import ControlFile
from qremote.control.routes import Remote
from qremote.control.smtproutes import parse_smtproutes

FILE = b"""example.com:relay.example.net
.example.com:sub-relay.example.net:2525
uses-mx.example.com:
literal.test:[192.0.2.7]
v6.test:[2001:db8::7]:587
:default.example.net
"""


def test_qmail_lookup_order() -> None:
    sr = parse_smtproutes(ControlFile.from_bytes("smtproutes", FILE))
    assert sr.findings == []
    assert sr.lookup("example.com").relay == Remote("relay.example.net")
    assert sr.lookup("a.b.Example.com").relay == Remote("sub-relay.example.net", 2525)
    assert sr.lookup("uses-mx.example.com").relay is None  # empty relay: MX as usual
    assert sr.lookup("literal.test").relay == Remote("192.0.2.7", 25, True)
    assert sr.lookup("v6.test").relay == Remote("2001:db8::7", 587, True)
    assert sr.lookup("elsewhere.org").relay == Remote("default.example.net")
    assert sr.lookup("elsewhere.org").line == 6


def test_later_duplicate_wins_with_a_warning_and_bad_lines() -> None:
    sr = parse_smtproutes(ControlFile.from_bytes(
        "smtproutes", b"a.com:one.net\n# c\na.com:two.net\nno-colon\nb.com:x.net:99999\n"))
    assert sr.lookup("a.com").relay == Remote("two.net")
    found = {(f.line, f.severity): f.text for f in sr.findings}
    assert "overridden by line 3" in found[(1, "warning")]
    assert "no ':'" in found[(4, "error")]
    assert "out of range" in found[(5, "error")]
    assert parse_smtproutes(ControlFile("smtproutes", exists=False)).lookup("a.com") is None
