"""A ``/regex/`` holding characters beyond ASCII matches characters, not the bytes of
their UTF-8 (issue 11, session 5): ``[éè]`` is a set of two letters, not of the
three bytes C3, A9 and A8, so it does not find the A9 that ends ``©``; and the bulk
search over the raw file finds exactly the lines the row-by-row test finds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qconsole.logbulk import Block, hits_of_regex
from qconsole.logformat import foreign
from qconsole.logquery import Lines, QueryError, parse_query


def _line(text: str) -> bytes:
    return f"@4000 delivery 1: failure: {text}".encode()


def _holds(query: str, text: str | bytes) -> bool:
    line = _line(text) if isinstance(text, str) else _line("") + text
    return parse_query(query).matches(Lines(line, None, None, "failure"))


@pytest.mark.parametrize(("query", "text", "found"), [
    ("/[éè]t/", "été", True),
    ("/[éè]t/", "ètre", True),
    ("/[éè]t/", "©t", False),  # © is C2 A9: before, its A9 was one of the set's bytes
    ("/[éè]t/", "ìt", False),  # ì is C3 AC: before, its C3 was
    ("/[éè]t/", "Ét", True),  # no upper-case letter: any case (before: not found)
    ("/[Éè]t/", "ét", False),  # an upper-case letter: as written
    ("/[Éè]t/", "Ét", True),
    ("/[^é]t/", "ét", False),  # before: found (A9 is not C3)
    ("/[^é]t/", "at", True),
    ("/^[^é]*$/", "café", False),
    ("/[à-ë]t/", "çt", True),  # a range of characters
    ("/[à-ë]t/", "Çt", True),
    ("/[à-ë]t/", "©t", False),
    ("/r.sumé/", "résumé", True),  # "." is one character
    ("/r.sume/", "résume", True),  # also in a pattern of ASCII alone (before: a byte)
    ("/: .t$/", "ét", True),
    ("/: ..t$/", "ét", False),
    ("/^\\w+$/", "été", False),  # \w stays ASCII's, as on bytes
    ("/a.{2}z/", "aé©z", True),
    ("/é{2}/", "éé", True),
    ("/\\é/", "É", True),
    ("/[\\]é]x/", "]x", True),
    ("/[\\]é]x/", "Éx", True),
])
def test_a_set_holding_characters_beyond_ascii_matches_characters(
        query: str, text: str, found: bool) -> None:
    assert _holds(query, text) is found


def test_a_line_that_is_not_utf8_is_still_searched() -> None:
    assert _holds("/[éè]t/", b"\xff\xfe " + "ét".encode())
    assert not _holds("/[éè]t/", b"\xa9t\xc3t")


def test_an_unclosed_set_is_an_error() -> None:
    with pytest.raises(QueryError):
        parse_query("/[é/")


# Lines of characters that share UTF-8 bytes with é (C3 A9) and è (C3 A8), in both
# cases, with ASCII and bytes that are not UTF-8.
PIECES = ["é", "è", "É", "È", "©", "¨", "ì", "Ã", "t", "T", "a", " ", "_", "x",
          b"\xc3", b"\xa9", b"\xff"]
PATTERNS = ["[éè]t", "[éè]", "[^é]t", "é+", "[é-ì]", "È", "[Éè]", "t[éè]?$", "^.é",
            "[a-zé]+t", "(?:é|a)t", "é\\b", "[éèt]{2}",
            # ASCII patterns read a line beyond ASCII as characters too
            "^.t", "a.t", "^.{2}$", "[^a]t", "\\w+t", "t\\b", "\\xff", "x?.$"]


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.lists(st.sampled_from(PIECES), max_size=8), min_size=1,
                      max_size=12),
       pattern=st.sampled_from(PATTERNS))
def test_the_bulk_search_finds_the_lines_the_row_by_row_test_finds(lines, pattern) -> None:
    raw = [b"".join(p.encode() if isinstance(p, str) else p for p in line)
           for line in lines]
    block = Block(0, b"".join(line + b"\n" for line in raw))
    term = parse_query(f"/{pattern}/").terms[0]
    starts, offset = [], 0
    for line in raw:  # (another program's line, one beginning with a blank, is blank
        # in a block: no row of any filter)
        if not foreign(line) and term.holds(Lines(line, None, None, "raw")):
            starts.append(offset)
        offset += len(line) + 1
    beyond = None if term.chars is None else term.search_line
    assert hits_of_regex(block, term.regex, term.lowered, beyond) == starts


def test_the_search_over_the_file_finds_the_same_rows() -> None:
    from qconsole.logscan import Plan
    from tests.test_attack_filter import _block, _deliveries

    lines = [line.replace("u0@d.org", "été@d.org").replace("u3@d.org", "ÈTE@d.org")
             .replace("u5@d.org", "©t@d.org").replace("u6@d.org", "¨t@d.org")
             for line in _deliveries(30)]  # (before: été, ©t and ¨t)
    assert len(Plan("/[éè]t/").analyze(_block(lines)).columns[0]) == 2
    assert len(Plan("/[Éè]t/").analyze(_block(lines)).columns[0]) == 0
