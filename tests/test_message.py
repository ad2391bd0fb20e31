"""The DATA stream: line breaks, dot-stuffing, chunking, and the two-pass reader."""

from __future__ import annotations

import os
import re

from hypothesis import given
from hypothesis import strategies as st

from qremote.delivery.message import CHUNK, SMALL, BodyEncoder, Message, encode

# Bytes that matter to the conversion, and a few that do not.
body_bytes = st.lists(st.sampled_from([b"\r", b"\n", b".", b"a", b"\xff", b"\r\n"]),
                      max_size=60).map(b"".join)


def reference(data: bytes) -> bytes:
    """The rule, written the slow way: split at every line break (CRLF, LF or bare
    CR), dot-stuff each line, join with CRLF, end with a line break."""
    if not data:
        return b""
    lines = re.split(rb"\r\n|\r|\n", data)
    if lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n"
                    for line in lines)


@given(body_bytes)
def test_encode_follows_the_rule(data: bytes) -> None:
    assert encode(data) == reference(data)


@given(body_bytes, st.lists(st.integers(min_value=0, max_value=60), max_size=8))
def test_any_chunking_gives_the_same_stream(data: bytes, cuts: list[int]) -> None:
    enc = BodyEncoder()
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert b"".join(enc.feed(p) for p in pieces) + enc.end() == encode(data)


@given(body_bytes)
def test_a_message_in_memory_is_encoded_once_with_the_same_result(data: bytes) -> None:
    """Held in memory, the content is encoded once unstuffed (for BDAT); its DATA
    stream and its size (for SIZE=) are derived from that, and equal the rule's."""
    message = Message(data=data)
    assert message.unstuffed() == encode(data, stuff=False)
    assert b"".join(message.chunks()) == encode(data) == reference(data)
    assert message.size == len(encode(data))


@given(body_bytes)
def test_no_end_of_data_inside_the_stream(data: bytes) -> None:
    """However the input is made, the wire never holds CRLF . CRLF before the end."""
    stream = encode(data)
    assert b"\r\n.\r\n" not in b"\r\n" + stream
    assert b"\r" not in stream.replace(b"\r\n", b"")
    assert b"\n" not in stream.replace(b"\r\n", b"")


def test_notqmail_bugs_are_not_copied() -> None:
    # notqmail turns the CR into CRLF but does not stuff the dot after it.
    assert encode(b"a\r.\nb\n") == b"a\r\n..\r\nb\r\n"
    assert encode(b"a\r\r\nb\n") == b"a\r\n\r\nb\r\n"
    assert encode(b"x") == b"x\r\n" and encode(b"") == b"" and encode(b"\r") == b"\r\n"


def _file(tmp_path, data: bytes) -> int:
    path = tmp_path / "msg"
    path.write_bytes(data)
    return os.open(path, os.O_RDONLY)


def test_large_file_is_read_in_chunks_twice(tmp_path) -> None:
    data = (b"line\n.dot\n" * (SMALL // 5)) + b"\xe9 end\r"
    fd = _file(tmp_path, data)
    os.lseek(fd, 123, os.SEEK_SET)  # where the file offset is does not matter
    try:
        msg = Message.from_fd(fd)
        chunks = list(msg.chunks())
        assert max(len(c) for c in chunks) <= 2 * CHUNK
        assert b"".join(chunks) == encode(data) and msg.size == len(encode(data))
        assert msg.eightbit
        assert b"".join(msg.chunks()) == encode(data)  # and again
    finally:
        os.close(fd)


def test_pipe_is_spooled(tmp_path) -> None:
    data = b"x" * (SMALL + CHUNK * 3) + b"\n"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        view = memoryview(data)
        while view:
            view = view[os.write(w, view):]
        os._exit(0)
    os.close(w)
    try:
        msg = Message.from_fd(r)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    assert msg.size == len(data) + 1 and not msg.eightbit
    assert b"".join(msg.chunks()) == encode(data)
    msg.close()
