"""Control files round-trip byte for byte; parsers never raise on arbitrary bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from qremote.control.config import build_config
from qremote.control.controlfile import MAX_LINE, ControlFile
from qremote.control.routemap import parse_routemap
from qremote.control.routes import parse_routes
from qremote.control.settings import parse_dnsservers, parse_outgoing_ip, parse_seconds, parse_text
from qremote.control.smtproutes import parse_smtproutes

# Bytes that often make lines: separators, list operators, digits, CR, LF, '#'.
line_bytes = st.binary(max_size=400) | st.lists(
    st.sampled_from([b";", b"&", b"|", b":", b"[", b"]", b"\r", b"\n", b"#", b"mx",
                     b"1", b".", b"a", b"\xff", b"\xc3\xa9", b"*", b"<>", b" ", b"tls=",
                     b"465", b"::1", b"127.0.0.1"]), max_size=60).map(b"".join)


@settings(max_examples=300)
@given(line_bytes)
def test_render_is_identity(data: bytes) -> None:
    assert ControlFile.from_bytes("routes", data).render() == data


@settings(max_examples=300)
@given(line_bytes)
def test_parsers_never_raise(data: bytes) -> None:
    # Every parser turns any bytes into values plus findings, never an exception.
    for name in ("routes", "routemap", "smtproutes", "dnsservers", "me",
                 "timeoutremote", "defaultoutgoingip"):
        source = ControlFile.from_bytes(name, data)
        parse_routes(source)
        parse_routemap(source)
        parse_smtproutes(source)
        parse_dnsservers(source)
        parse_text(source)
        parse_seconds(source, 60)
        parse_outgoing_ip(source)
    files = {n: ControlFile.from_bytes(n, data) for n in ("routes", "routemap", "smtproutes")}
    build_config(__import__("pathlib").Path("/nonexistent"), files)


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\n\r",
                                               blacklist_categories=("Cs",)),
                        max_size=30), min_size=1, max_size=10),
       st.booleans(), st.integers(min_value=0, max_value=20))
def test_replace_changes_only_that_line(texts: list[str], crlf: bool, pick: int) -> None:
    eol = "\r\n" if crlf else "\n"
    data = "".join(t + eol for t in texts).encode()
    source = ControlFile.from_bytes("routes", data)
    number = pick % len(texts) + 1
    source.replace(number, "new;;;;")
    expected = texts[:]
    expected[number - 1] = "new;;;;"
    assert source.render() == "".join(t + eol for t in expected).encode()


def test_insert_appends_with_the_files_line_ending() -> None:
    source = ControlFile.from_bytes("routemap", b"# head\r\na;b;c")
    source.insert(3, "*;*;d")
    assert source.render() == b"# head\r\na;b;c\r\n*;*;d\r\n"


def test_bad_lines_become_findings() -> None:
    data = b"ok;;;;\nbad\xff;;;;\r\nnul\0;;;;\n" + b"x" * (MAX_LINE + 1) + b"\n"
    source = ControlFile.from_bytes("routes", data)
    texts = {f.line: f.text for f in source.line_findings()}
    assert "0xff at column 4 is not UTF-8" in texts[2]
    assert "NUL byte at column 4" in texts[3]
    assert f"the limit is {MAX_LINE}" in texts[4]


def test_crlf_is_a_warning_and_parses() -> None:
    routes = parse_routes(ControlFile.from_bytes("routes", b"r1;;;;\r\n"))
    assert "r1" in routes.routes
    assert [(f.line, f.severity) for f in routes.findings] == [(1, "warning")]
    assert "CRLF" in routes.findings[0].text


def test_insert_uses_the_usual_line_ending() -> None:
    source = ControlFile.from_bytes("routes", b"# one CRLF comment\r\na;;;;\nb;;;;\n")
    source.insert(4, "c;;;;")
    assert source.render() == b"# one CRLF comment\r\na;;;;\nb;;;;\nc;;;;\n"
