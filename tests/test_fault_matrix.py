"""The fault matrix: every stage x every fault, through the real qmail-remote process.

A fault before MAIL FROM moves on (here: no other attempt, so Z "Sorry, I wasn't able
to establish an SMTP connection"); from MAIL FROM on the replies decide. No case may
report K without a 2xx after the final dot; every case exits 0 with nothing on stderr.
"""

from __future__ import annotations

import pytest

from tests.support.delivery import FullBacklog, deliver_process, reports
from tests.support.smtpsink import ScriptedServer, free_port

NO_CONN = "ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)"
DIED = "ZConnected to 127.0.0.1 but connection died. (#4.4.2)"
DUP = "ZConnected to 127.0.0.1 but connection died. Possible duplicate! (#4.4.2)"

# (stage, fault) -> (recipient reports' letters, message report's start)
EXPECTED: dict[tuple[str, str], tuple[str, str]] = {}
for fault in ("4xx", "5xx", "drop", "stall"):
    EXPECTED[("greeting", fault)] = ("", NO_CONN)
    EXPECTED[("ehlo", fault)] = ("", NO_CONN)
    EXPECTED[("auth", fault)] = ("", NO_CONN)
EXPECTED |= {
    ("starttls", "4xx"): ("r", "K127.0.0.1 accepted message."),  # tls=may: go on plain
    ("starttls", "5xx"): ("r", "K127.0.0.1 accepted message."),
    ("starttls", "drop"): ("", NO_CONN),
    ("starttls", "stall"): ("", NO_CONN),
    ("mail", "4xx"): ("", "ZConnected to 127.0.0.1 but sender was rejected."),
    ("mail", "5xx"): ("", "DConnected to 127.0.0.1 but sender was rejected."),
    ("mail", "drop"): ("", DIED),
    ("mail", "stall"): ("", DIED),
    ("rcpt", "4xx"): ("s", "DGiving up on 127.0.0.1."),
    ("rcpt", "5xx"): ("h", "DGiving up on 127.0.0.1."),
    ("rcpt", "drop"): ("", DIED),
    ("rcpt", "stall"): ("", DIED),
    ("data", "4xx"): ("r", "Z127.0.0.1 failed on DATA command."),
    ("data", "5xx"): ("r", "D127.0.0.1 failed on DATA command."),
    ("data", "drop"): ("r", DIED),
    ("data", "stall"): ("r", DIED),
    ("dot", "4xx"): ("r", "Z127.0.0.1 failed after I sent the message."),
    ("dot", "5xx"): ("r", "D127.0.0.1 failed after I sent the message."),
    ("dot", "drop"): ("r", DUP),
    ("dot", "stall"): ("r", DUP),
}


def _run(make_home, port: int, creds: str = ";") -> list[str]:
    home = make_home(routes=f"r;127.0.0.2;127.0.0.1:{port};{creds}\n", routemap="*;*;r\n",
                     timeoutconnect="1\n", timeoutremote="1\n")
    result = deliver_process(home, ["x.org", "a@b.org", "y@x.org"], b"Subject: t\n\nbody\n")
    assert result.returncode == 0
    assert result.stderr == b""
    return reports(result.stdout)


@pytest.mark.parametrize(("stage", "fault"), sorted(EXPECTED))
def test_fault(make_home, stage: str, fault: str) -> None:
    extensions = ["8BITMIME"]
    creds = ";"
    if stage == "starttls":
        extensions.append("STARTTLS")
    if stage == "auth":
        extensions.append("AUTH CRAM-MD5")
        creds = "user;secret"
    server = ScriptedServer(stage, fault, extensions=extensions).start()
    try:
        out = _run(make_home, server.port, creds)
    finally:
        server.stop()
    letters, message = EXPECTED[(stage, fault)]
    assert "".join(r[0] for r in out[:-1]) == letters
    assert out[-1].startswith(message), out[-1]
    if stage != "starttls":  # only a refused STARTTLS (tls=may) goes on to a K
        assert out[-1][0] in "ZD"


def test_connect_refused(make_home) -> None:
    out = _run(make_home, free_port())
    assert out == [out[-1]] and out[-1].startswith(NO_CONN)
    assert "Connection refused" in out[-1]


def test_connect_timeout(make_home) -> None:
    full = FullBacklog()
    try:
        out = _run(make_home, full.port)
    finally:
        full.close()
    assert out[-1].startswith(NO_CONN) and "timed out" in out[-1]
