"""The worker's wire protocol and report guard, and the qmail-rspawn rules the other
worker tests judge by."""

from __future__ import annotations

import os
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qremote.worker import protocol
from qremote.worker.server import letter_of
from tests.support.rspawn import eof_soon, rspawn_report

args_strategy = st.lists(st.binary(max_size=300), max_size=40)


@settings(max_examples=60, deadline=None)
@given(args=args_strategy)
def test_a_request_travels_intact_with_its_descriptors(args: list[bytes]) -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    r, w = os.pipe()
    with a, b:
        protocol.send_request(a, protocol.DELIVER, args, [r, w])
        request = protocol.read_request(b)
    try:
        assert request.kind == protocol.DELIVER and request.args == args
        assert len(request.fds) == 2
        os.write(request.fds[1], b"x")  # the same pipe, through the new descriptors
        assert os.read(r, 1) == b"x"
    finally:
        protocol.close_all([r, w, *request.fds])


def test_a_large_request_arrives_in_pieces() -> None:
    args = [b"h", b"s@x", *[b"r%06d@example.org" % i for i in range(40000)]]
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    r, w = os.pipe()
    import threading

    sender = threading.Thread(target=protocol.send_request,
                              args=(a, protocol.DELIVER, args, [r, w]))
    sender.start()
    with a, b:
        request = protocol.read_request(b)
        sender.join()
    protocol.close_all([r, w, *request.fds])
    assert request.args == args


def test_too_large_is_refused_and_descriptors_closed() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    r, w = os.pipe()
    data = protocol.encode_request(protocol.DELIVER, [b"x" * (protocol.MAX_REQUEST + 1)])
    with a, b:
        a.sendmsg([data[:8]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                 w.to_bytes(4, "little") + r.to_bytes(4, "little"))])
        os.close(w)
        with pytest.raises(protocol.ProtocolError, match="limit"):
            protocol.read_request(b)
    assert eof_soon(r)  # no copy of the write end survived
    os.close(r)


def _report(n_rcpt: int, said: int) -> bytes:
    rcpts = b"".join(b"h127.0.0.1 does not like recipient.\nRemote host said: 550 no\n\0"
                     for _ in range(n_rcpt))
    lines = b"".join(b"Remote host said: 250-" + b"y" * 70 + b"\n" for _ in range(said))
    return (rcpts + b"K127.0.0.1 accepted message.\n" + lines +
            b"route=r local=127.0.0.2 remote=127.0.0.1:25 tls=none auth=none\0")


def test_fit_report_keeps_letters_and_the_detail_line() -> None:
    small = _report(2, 3)
    assert protocol.fit_report(small) == small
    big = _report(20, 100)
    assert len(big) > protocol.PIPE_BUF
    fitted = protocol.fit_report(big)
    assert len(fitted) <= protocol.PIPE_BUF
    records = fitted.split(b"\0")[:-1]
    assert [r[:1] for r in records] == [b"h"] * 20 + [b"K"]
    assert records[-1].startswith(b"K127.0.0.1 accepted message.\n")
    assert records[-1].endswith(b"\nroute=r local=127.0.0.2 remote=127.0.0.1:25 "
                                b"tls=none auth=none")
    assert letter_of(fitted) == letter_of(big) == "K"
    assert rspawn_report(0, fitted)[:1] == rspawn_report(0, big)[:1]


def test_rspawn_rules() -> None:
    """qmail-rspawn's report(): what decides K, Z and D."""
    assert rspawn_report(0, b"") == b"Zqmail-remote produced no output.\n"
    assert rspawn_report(111, b"K\0") == b"ZUnable to run qmail-remote.\n"
    assert rspawn_report(1, b"K\0") == b"DUnable to run qmail-remote.\n"
    assert rspawn_report(-9, b"K\0") == b"Zqmail-remote crashed.\n"
    assert rspawn_report(0, b"r\0")[:1] == b"D"  # output with no K/Z/D: a bounce
    assert rspawn_report(0, b"Kpartial")[:1] == b"D"  # a K without its NUL
    assert rspawn_report(0, b"r\0Kok\nroute=x\0") == b"Kok\nroute=x"
    assert rspawn_report(0, b"s\0Kok\0")[:1] == b"Z"
    assert rspawn_report(0, b"h\0Kok\0")[:1] == b"D"
    assert rspawn_report(0, b"Zno\0") == b"Zno"
