"""event() answers at once for a line holding none of the words of qmail-send's events
(most lines of other programs), and exactly what the pattern's search answers."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from qconsole.logformat import EVENT, EVENT_WORDS, event, foreign

_PIECES = ("delivery ", "starting ", "delivery", "deliver", " ", "1", "23", ": ", ":",
           "msg ", "msg", " to local ", " to remote ", "success", "deferral: ", "failure:",
           "info msg 3: bytes 20 from <a@b> ", "bytes ", " from <", "> ", "bounce msg 3",
           "bounce", "bounc", "triple bounce: discarding bounce/12", "triple ",
           "status: local 0/10", "status:", "status", "new msg ", "end msg ", "end msg",
           "@400000006ab1430e08ea3962 ", "Nov 26 05:38:52 host sshd[12]: ", "x", "é",
           "\t", "\r", "\x00")


def _searched(line: bytes):
    """What event() answered before the words were looked for first (none in another
    program's syslog line, but at its start)."""
    if line[:1] == b"@":
        m = EVENT.match(line, 26)
        if m is not None:
            return m
    m = EVENT.search(line)
    return None if m is not None and m.start() and foreign(line) else m


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=8).map("".join))
@example("Nov 26 05:38:52 host sshd[12]: triple bounce: discarding bounce/12")
def test_a_line_without_the_words_of_an_event_has_none(text) -> None:
    line = text.encode()
    got, want = event(line), _searched(line)
    assert (got is None) == (want is None)
    if want is not None:
        assert got.span() == want.span() and got.groups() == want.groups()
    if not any(word in line for word in EVENT_WORDS):
        assert EVENT.search(line) is None  # (the words are those of every alternative)
