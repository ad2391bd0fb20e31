"""The exact way's look forwards for a line naming many deliveries or messages (a
remote's reply can hold any number of needles): one pass for them all gives the rows
that one look a number gives."""

from __future__ import annotations

import time
from operator import itemgetter
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from qconsole.logformat import E_BOUNCE, E_MSG, E_TRIPLE, event
from qconsole.logjoin import (
    BOUNCE,
    INFO_NEEDLES,
    START_NEEDLES,
    Joiner,
    end_needle,
    info_needle,
)
from qconsole.logsource import LogSource

S = "@400000006ab1430e08ea3962 "


def _one_at_a_time(joiner: Joiner, offset: int, line: bytes) -> list[tuple]:
    """What rows_of_line gave before: a look forwards for each number and message."""
    out = []
    for number in dict.fromkeys(map(itemgetter(1), START_NEEDLES.finditer(line))):
        row = joiner.row_after_start(offset, number)
        if row is not None:
            out.append((row[0], row[1], offset, -2))
    for msg in dict.fromkeys(map(itemgetter(1), INFO_NEEDLES.finditer(line))):
        after = offset + len(joiner.source.read_line(offset)) + 1
        for ls, text in joiner.lines_with((b"msg " + msg, b"triple bounce"), after,
                                          joiner.source.end):
            m = event(text)
            if m is not None and m[E_MSG] == msg:
                for number in dict.fromkeys(map(itemgetter(1), START_NEEDLES.finditer(text))):
                    row = joiner.row_after_start(ls, number)
                    if row is not None:
                        out.append((row[0], row[1], ls, offset))
            elif m is not None and (m[E_BOUNCE] or m[E_TRIPLE]) == msg:
                out.append((ls, BOUNCE, -1, offset))
            if info_needle(msg) in text or text.endswith(end_needle(msg)[:-1]):
                break
    return out


_NUM = st.sampled_from(["1", "2", "12", "123", "3"])
_PIECE = st.one_of(
    st.builds("starting delivery {}: msg {} to remote a@b.org".format, _NUM, _NUM),
    st.builds("delivery {}: {}: ok".format, _NUM,
              st.sampled_from(["success", "deferral", "failure"])),
    st.builds("info msg {}: bytes 5 from <a@b.org> qp 1".format, _NUM),
    st.builds("end msg {}".format, _NUM),
    st.builds("bounce msg {} qp 2".format, _NUM),
    st.builds("triple bounce: discarding bounce/{}".format, _NUM),
    st.builds("msg {}".format, _NUM),
    st.sampled_from(["status: local 0/10 remote 1/20", "x", ""]),
)


@settings(max_examples=300, deadline=None)
@example(["info msg 1: bytes 5 from <a@b.org> qp 1info msg 2: bytes 5 from <a@b.org> qp 1",
          "end msg 1", "starting delivery 3: msg 1 to remote a@b.org",
          "delivery 3: success: ok", "starting delivery 4: msg 2 to remote a@b.org",
          "starting delivery 5: msg 2 to remote a@b.orgstarting delivery 6: msg 2 to ",
          "delivery 6: failure: no", "delivery 5: deferral: later",
          "triple bounce: discarding bounce/2", "bounce msg 2 qp 2", "end msg 2"], True)
@given(st.lists(st.lists(_PIECE, min_size=1, max_size=4).map("".join), max_size=40),
       st.booleans())
def test_one_look_forwards_finds_what_a_look_a_number_finds(tmp_path_factory, pieces,
                                                            prefixed) -> None:
    """Lines made of start, result, info, end, bounce and triple bounce events, several
    in a line (numbers that are prefixes of others): for every line, as a start and as
    an info line, the same rows in the same order."""
    lines = [(S if prefixed else "") + p for p in pieces]
    path = tmp_path_factory.mktemp("bulk") / "current"
    path.write_bytes("".join(line + "\n" for line in lines).encode())
    joiner = Joiner(LogSource(path))
    offset = 0
    for line in lines:
        raw = line.encode()
        assert list(joiner.rows_of_line(offset, raw, True, True)) == \
            _one_at_a_time(joiner, offset, raw), line
        offset += len(raw) + 1


def followed(tmp_path: Path, reply: str, filler: int) -> tuple[list, list, float]:
    """A deferral whose reply is ``reply``, ``filler`` status lines, then delivery 3
    of message 1: the rows of the deferral's line as a start and as an info line,
    the rows it should have (message 1's start; delivery 3 restarted), CPU seconds."""
    hostile = (S + "delivery 7: deferral: " + reply + "\n").encode()
    lines = (S + "status: local 0/10 remote 1/20\n").encode() * filler
    tail = (S + "starting delivery 3: msg 1 to remote a@b.org\n"
            + S + "delivery 3: success: ok\n").encode()
    path = tmp_path / "current"
    path.write_bytes(b"x\n" + hostile + lines + tail)
    joiner = Joiner(LogSource(path))
    t = time.process_time()
    rows = list(joiner.rows_of_line(2, hostile[:-1], True, True))
    elapsed = time.process_time() - t
    start = 2 + len(hostile) + len(lines)
    return rows, [(tail.index(b"\n") + 1 + start, 0, start, 2)], elapsed


def test_a_line_naming_many_deliveries_and_messages_is_read_past_once(
        tmp_path: Path) -> None:
    """A deferral whose reply names 200 distinct messages and deliveries, with 57 MB of
    log after it: each was looked for forwards on its own, through all of it (18 s
    here; 9 s for 50 on the bench log); now one look finds them all."""
    rows, want, elapsed = followed(
        tmp_path, "".join(f"info msg {i}: bytes 1 from <" for i in range(200))
        + "".join(f"starting delivery {i}: msg " for i in range(200)), 1_000_000)
    assert rows == want
    assert elapsed < 2, elapsed
