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
