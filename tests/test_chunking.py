"""PIPELINING and CHUNKING: fewer round trips, the same reports as one command at a time."""

from __future__ import annotations

import pytest

from qremote.delivery.engine import Engine
from qremote.delivery.message import encode
from tests.support.delivery import deliver, detail, reports
from tests.support.scripted import DROP, ScriptedSmtp

MESSAGE = b"Subject: t\n\n.dot line\nbody\r\nbare\rcr\n"
FAST = ("PIPELINING", "CHUNKING", "8BITMIME")
SLOW = ("8BITMIME",)


def _home(make_home, port: int):
    return make_home(routes=f"r;127.0.0.2;127.0.0.1:{port};;\n", routemap="*;*;r\n",
                     timeoutremote="2\n")


def _run(make_home, extensions, rcpts=("y@x.org",), **script) -> tuple[list[str], list]:
    with ScriptedSmtp(extensions=extensions, **script) as server:
        out = deliver(_home(make_home, server.port), "x.org", "a@b.org", list(rcpts),
                      MESSAGE)
        return out, server.reset()


def test_bdat_carries_the_message_unstuffed_in_one_write(make_home) -> None:
    out, (session,) = _run(make_home, FAST)
    assert out[-1].startswith("K127.0.0.1 accepted message.")
    assert session.verbs() == [b"EHLO", b"MAIL", b"RCPT", b"BDAT", b"QUIT"]
    content = encode(MESSAGE, stuff=False)
    assert session.lines(b"BDAT") == [b"BDAT %d LAST\r\n" % len(content)]
    assert session.bodies == [content] and b"\r\n.dot line" in content


CASES = {  # what the server does -> both paths must give the same reports
    "mail-5xx": {"mail": b"550 5.1.0 no such sender\r\n"},
    "mail-4xx": {"mail": b"451 4.3.0 later\r\n"},
    "rcpt-mixed": {"rcpt": [b"550 5.1.1 unknown\r\n", b"250 ok\r\n", b"450 4.2.0 full\r\n"]},
    "rcpt-all-5xx": {"rcpt": b"550 5.1.1 unknown\r\n"},
    "final-5xx": {"dot": b"554 5.6.0 rejected\r\n"},
    "final-4xx": {"dot": b"451 4.3.0 later\r\n"},
    "final-garbage": {"dot": b"hello\r\n"},
    "final-drop": {"dot": DROP},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_reports_with_and_without_round_trip_savings(make_home, case: str) -> None:
    rcpts = ("u1@x.org", "u2@x.org", "u3@x.org")
    fast, _ = _run(make_home, FAST, rcpts, **CASES[case])
    pipelined, _ = _run(make_home, ("PIPELINING",), rcpts, **CASES[case])
    slow, _ = _run(make_home, SLOW, rcpts, **CASES[case])

    def strip(out: list[str]) -> list[str]:  # the detail line names the port
        return [r.rsplit("\n", 1)[0] if "route=" in r else r for r in out]

    assert strip(fast)[:-1] == strip(pipelined)[:-1] == strip(slow)[:-1]
    first = [o[-1].split("\n", 1)[0] for o in (fast, pipelined, slow)]
    if case == "final-drop":  # BDAT: the message was sent with the commands
        assert first[0] == first[1] == first[2] == (
            "ZConnected to 127.0.0.1 but connection died. Possible duplicate! (#4.4.2)")
    else:
        assert first[0] == first[1] == first[2]


def test_reuse_with_bdat_resets_then_pipelines_each_message(make_home) -> None:
    with ScriptedSmtp(extensions=FAST) as server:
        engine = Engine(_home(make_home, server.port), warm=True)
        outs = [reports(engine.deliver([b"x.org", b"a@b.org", b"y%d@x.org" % i], MESSAGE))
                for i in range(3)]
        assert [o[-1][0] for o in outs] == ["K"] * 3
        assert {detail(o[-1])["remote"] for o in outs} == {f"127.0.0.1:{server.port}"}
        (session,) = server.sessions
        assert session.verbs() == [b"EHLO", b"MAIL", b"RCPT", b"BDAT",
                                   b"RSET", b"MAIL", b"RCPT", b"BDAT",
                                   b"RSET", b"MAIL", b"RCPT", b"BDAT"]
        assert len(session.bodies) == 3
