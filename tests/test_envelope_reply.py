"""Pure rules of the wire and of reports: quoting, reply codes, report bytes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from qremote.delivery.envelope import needs_quoting, unsendable, wire
from qremote.delivery.report import Detail, Outcome
from qremote.delivery.smtp import reply_code, safe_text


def test_quoting_as_qmail_quote() -> None:
    assert wire("a@b.org") == b"a@b.org"
    assert wire("john smith@example.com") == b'"john smith"@example.com'
    assert wire('a"b\\c@x') == b'"a\\"b\\\\c"@x'
    assert wire(".a@x") == b'".a"@x' and wire("a.@x") == b'"a."@x'
    assert wire("a..b@x") == b'"a..b"@x' and wire("a.b@x") == b"a.b@x"
    assert wire("@x") == b'""@x'
    assert wire("a@b@c.org") == b'"a@b"@c.org'  # the last @ splits
    assert wire("") == b"" and wire("#@[]") == b"#@[]"
    assert wire("jürgen@x.org") == '"jürgen"@x.org'.encode()
    assert wire(b"\xe9t\xe9@x.org") == b'"\xe9t\xe9"@x.org'  # not UTF-8: bytes kept


@given(st.binary(max_size=30))
def test_a_quoted_box_is_one_quoted_string(box: bytes) -> None:
    if b"\r" in box or b"\n" in box:
        return
    out = wire(box + b"@x.org")
    local = out[:-len(b"@x.org")]
    if needs_quoting(box):
        assert local.startswith(b'"') and local.endswith(b'"')
        inner = local[1:-1]
        # Every quote and backslash inside is escaped: no early end of the string.
        assert inner.replace(b"\\\\", b"").replace(b'\\"', b"").count(b'"') == 0
    else:
        assert local == box


def test_cr_lf_nul_are_never_sendable() -> None:
    for bad in ("a\r@x", "a@x\nRSET", "a\0@x"):
        assert unsendable(bad)
    assert unsendable("john smith@x") is None


def test_reply_codes_are_three_ascii_digits() -> None:
    assert reply_code(b"250 ok") == 250 and reply_code(b"250-more") == 250
    assert reply_code(b"250") == 250
    for bad in ("٢٥٠ ok".encode(), b"25 ok", b"2500 ok", b"xyz", b"", b"250ok", b"25\x000"):
        assert reply_code(bad) == 0


def test_reply_text_is_safe() -> None:
    assert safe_text(b"550 bad\0Kforged\x1b[31m\r") == "550 bad?Kforged?[31m"
    assert safe_text(b"250 caf\xc3\xa9 \xff") == "250 café \ufffd"


def test_a_nul_never_starts_a_report() -> None:
    out = Outcome("D", "Giving up.\nRemote host said: 550 x\0Kforged\n",
                  Detail("r", "1.2.3.4", "5.6.7.8:25"))
    out.recipients = [("h", "bad\0Kx\n")]
    records = out.encode().split(b"\0")
    assert records[-1] == b"" and [r[:1] for r in records[:-1]] == [b"h", b"D"]
    assert records[1].endswith(b"route=r local=1.2.3.4 remote=5.6.7.8:25 tls=none auth=none")


def test_reports_fit_in_one_atomic_pipe_write() -> None:
    out = Outcome("Z", "x.\nRemote host said: " + "y" * 9000 + "\n", Detail("relay"))
    out.recipients = [("s", "z" * 9000)]
    out.failed = ["a:25 from b: " + "w" * 3000] * 8
    raw = out.encode()
    assert len(raw) <= 4096
    records = raw.split(b"\0")
    assert records[0][:1] == b"s" and records[1][:1] == b"Z"
    assert records[1].endswith(b"route=relay local=- remote=- tls=none auth=none")
