"""``/regex/`` smart case beyond ASCII (issue 11, session 5): in any case unless the
pattern holds an upper-case letter, whatever the alphabet, as plain words are."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qconsole.logquery import Lines, parse_query
from qconsole.logscan import Plan
from tests.test_attack_filter import _block, _deliveries


def _line(recipient: str) -> bytes:
    return f"@4000 delivery 1: failure: {recipient}_does_not_exist".encode()


def _holds(query: str, recipient: str) -> bool:
    return parse_query(query).matches(Lines(_line(recipient), None, None, "failure"))


@pytest.mark.parametrize(("query", "recipient", "found"), [
    ("/éric/", "ÉRIC@x.fr", True),  # before: not found (lower-cased as ASCII only)
    ("/éric/", "Éric@x.fr", True),
    ("/éric/", "éric@x.fr", True),
    ("/Éric/", "éric@x.fr", False),  # an upper-case letter: case-sensitive
    ("/Éric/", "Éric@x.fr", True),
    ("/ÉRIC/", "éric@x.fr", False),
    ("/müller/", "MÜLLER@x.de", True),
    ("/мария/", "МАРИЯ@x.ru", True),
    ("/МАРИЯ/", "мария@x.ru", False),
    ("/σοφία/", "ΣΟΦΊΑ@x.gr", True),
    ("/bob/", "BOB@x.org", True),  # ASCII as before
    ("/Bob/", "bob@x.org", False),
    ("/é+ric/", "ÉÉric@x.fr", True),  # a quantifier repeats the letter, not a byte
    ("/É+ric/", "ÉÉric@x.fr", True),
    ("/^.*é/", "É@x.fr", True),
    ("/\\é/", "É@x.fr", True),  # an escaped letter is the letter
])
def test_a_regex_is_in_any_case_unless_it_holds_an_upper_case_letter(
        query: str, recipient: str, found: bool) -> None:
    assert _holds(query, recipient) is found


LETTERS = "abcxyzéèüöçñßøåæœıſkσςάмарияΣΆМÉÜÖÇÑØÅÆŒİKABC"


@settings(max_examples=300, deadline=None)
@given(word=st.text(alphabet=LETTERS, min_size=1, max_size=6),
       case=st.sampled_from([str.lower, str.upper, str.title, str.swapcase, str]))
def test_a_regex_without_upper_case_finds_what_the_word_finds(word, case) -> None:
    """A lower-case ``/word/`` finds a row exactly when the plain word does (each
    letter in any of its case forms); with an upper-case letter it finds the row
    exactly when the line holds the pattern as written."""
    recipient = case(word) + "@x.org"
    pattern = word.lower()
    if any(c.isupper() for c in pattern):  # (a lower() that is still upper: none)
        return
    assert _holds(f"/{re.escape(pattern)}/", recipient) == _holds(pattern, recipient)
    if any(c.isupper() for c in word):
        assert _holds(f"/{re.escape(word)}/", recipient) == (
            word.encode() in _line(recipient))


def test_the_bulk_search_finds_the_same_rows() -> None:
    """The search over the raw file (blocks, lower-cased as ASCII) agrees."""
    lines = _deliveries(30)
    lines = [line.replace("u0@d.org", "ÉRIC@d.org").replace("u3@d.org", "éric@d.org")
             for line in lines]
    rows = Plan("/éric/").analyze(_block(lines))
    assert len(rows.columns[0]) == 2
    assert len(Plan("/Éric/").analyze(_block(lines)).columns[0]) == 0


_RX_PIECES = (".", "x", "X", "1", "[0-9]", "[ -Z]", "[^a]", "[^0-9]", r"\d", r"\w", r"\W",
              r"\s", r"\b", r"\B", "^", "$", "(.)", r"\1", "(?:1|a)", "(?=1)", "(?!b)",
              "(?<=@)", "+", "*", "?", "{2}", r"\x41", r"\101", "[@-`]", "(?i:q)", "-", "@",
              "(?>1)", "[\\[-`]", "[ -z]", "|", "é")


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(_RX_PIECES), min_size=1, max_size=6).map("".join),
       st.text(alphabet="aAbBqQxXzZ@[`1 2\t_-.é", max_size=12))
def test_a_regex_without_letters_finds_the_same_in_the_raw_bytes(pattern, text) -> None:
    """A smart-case regex without a letter (``/./``, ``/[0-9]+/``) searched a
    lower-cased copy of every block (2.5 ms of a 4 MiB block's 27): for those judged
    blind to case, the raw bytes give the same matches as the lower-cased ones."""
    from qconsole.logquery import LOWER, case_blind

    try:
        rx = re.compile(pattern.encode(), re.MULTILINE)
    except re.error:
        return
    line = text.encode()
    if case_blind(rx.pattern, re.MULTILINE):
        got, want = rx.search(line), rx.search(line.translate(LOWER))
        assert (got and got.span()) == (want and want.span()), (pattern, text)


def test_a_regex_without_letters_searches_the_raw_bytes() -> None:
    """/./ and /[0-9]+ to/: the first is blind to case (no lower-cased copy), the second
    holds letters (smart case, as before)."""
    assert not parse_query("/./").terms[0].lowered
    assert not parse_query(r"/\d+@\w/").terms[0].lowered
    assert parse_query("/[0-9]+ to/").terms[0].lowered
    assert parse_query("/[ -z]/").terms[0].lowered  # (a range across letters)
    assert parse_query(r"/(.)\1/").terms[0].lowered  # (a back reference)
