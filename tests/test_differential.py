"""Differential tests: qmail's own qmail-remote (the reference) and ours, same server.

Each test runs the reference (the ``reference`` fixture: notqmail's qmail-remote,
built once per session; the tests skip with the reason when it cannot be built) and
ours (``python -I -m qremote.remote``, a real process) one after the other against
the SAME scripted server (:class:`tests.support.scripted.ScriptedSmtp`) with the SAME
control directory (``smtproutes`` ``:127.0.0.1:PORT``, ``me``, the timeouts), and
compares what matters to qmail-send: the recipient reports, the message letter, and
qmail's phrase with the ``Remote host said:`` text. Where the server saw something
(command lines, the DATA stream), that is compared byte for byte too.

Where ours differs from qmail ON PURPOSE, the case names its reason (a key of
:data:`REASONS`) and the test asserts exactly what ours does (and, for the record,
what the reference does). Where no reason is given, both must give the same reports.

Families (one parametrized test each):

- ``test_matrix``: every stage (greeting, EHLO/HELO, MAIL, RCPT, DATA, the reply
  after the dot, QUIT) x every reply class (another 2xx, 1xx, 4xx, 5xx, garbage, NUL,
  non-ASCII digits, multi-line, control bytes, a reply cut short, drop, stall);
- ``test_hello``: EHLO refused in different ways (we say EHLO, qmail says HELO);
- ``test_envelope_quoting``: addresses on the wire as qmail's quote() writes them;
- ``test_envelope_line_breaks``: CR/LF in an address (qmail sends it; we never do);
- ``test_body``: the DATA stream, byte for byte;
- ``test_mx_is_me_literal`` and ``test_mx_is_me_dns``: qmail's ipme rule;
- ``test_slow_steady_reader`` and ``test_reader_stops_mid_body``: the timeouts bound
  each read and write, not the whole message.

Every run of either program must exit 0 and write nothing to stderr, and a NUL in a
reply must never start a report record of its own.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.support.delivery import deliver_process
from tests.support.dnsserver import DnsServer, Zone
from tests.support.reference import Reference
from tests.support.scripted import DROP, STALL, Act, ScriptedSmtp, Session

IP = "127.0.0.1"
ARGS = ["x.org", "a@b.org", "y@x.org"]
MESSAGE = b"Subject: t\n\nhello\n"

# Why ours differs from the reference, where it does on purpose.
REASONS = {
    "FAILOVER": "a failure before MAIL FROM ends the attempt and the next attempt "
                "follows; with none left: ZSorry, I wasn't able to establish an SMTP "
                "connection. (#4.4.1) and a Failed attempts: line (qmail: 'Connected "
                "to IP but greeting failed.' and the like, and no other attempt)",
    "DETAIL": "our message report ends with a Failed attempts: line (when attempts "
              "failed) and the detail line; compared up to them",
    "EHLO": "we say EHLO first (qmail says HELO), fall back to HELO after a 5xx, and "
            "after a 4xx to EHLO end the attempt with its text, with no HELO",
    "HELLO_2XX": "any 2xx reply to EHLO/HELO is a success for us (RFC 5321 4.2.1); "
                 "qmail wants exactly 250 to HELO",
    "UNREADABLE": "a reply code is three ASCII digits followed by space, '-' or the "
                  "end of the line, else the reply is unreadable and never permanent: "
                  "Z to MAIL, DATA and the dot, s to RCPT (qmail turns any three bytes "
                  "into a number: 'xyz' and '٢٥٠' are codes >= 500 for it)",
    "STRICT_CODES": "K only after a 2xx to the dot, DATA needs 354, MAIL and RCPT need "
                    "2xx; any other code below 400 is temporary (qmail takes any code "
                    "below 400 as success: a 100 after the dot is a K for it, a 250 to "
                    "DATA makes it send the message into command mode)",
    "CONTROL_BYTES": "we replace NUL and every other control byte of a reply (DEL "
                     "included) with '?'; qmail replaces only NUL",
    "PARTIAL_LINE": "a message without a final newline gets one and is delivered "
                    "(qmail: D SMTP cannot transfer messages with partial final lines)",
    "BARE_CR": "every CR not followed by LF becomes CRLF and every line start after "
               "any line break is dot-stuffed (qmail does not dot-stuff after the CR "
               "it turns into CRLF: end-of-data smuggling; and it leaves the CR of "
               "CR CR LF bare)",
    "QUOTING": "an address with CR or LF is never sent (qmail's quote() escapes them "
               "with a backslash but sends them: a second SMTP command is injected); "
               "the report says why",
}

NOCONN = "ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"
DIED = f"ZConnected to {IP} but connection died. (#4.4.2)\n"
DUP = f"ZConnected to {IP} but connection died. Possible duplicate! (#4.4.2)\n"
AMBIGMX = ("DSorry. Although I'm listed as a best-preference MX or A for that host,\n"
           "it isn't in my control/locals file, so I don't treat it as local. (#5.4.6)\n")
DETAIL_LINE = re.compile(r"route=\S+ local=\S+ remote=(\S+) tls=\S+ auth=\S+")


# --- reading the reports -----------------------------------------------------------

@dataclass
class Reports:
    """One run's reports: recipient reports, then the message report split up."""

    records: list[bytes]
    recipients: tuple[str, ...]  # each whole (letter and text)
    message: str  # the message report up to the Failed attempts:/detail lines
    failed: str | None = None  # ours: the Failed attempts: line
    detail: str | None = None  # ours: the detail line

    @property
    def letters(self) -> str:
        return "".join(r[0] for r in self.recipients)

    def remote(self) -> str | None:
        m = DETAIL_LINE.fullmatch(self.detail or "")
        return m.group(1) if m else None


def _text(record: bytes) -> str:
    return record.decode("utf-8", "surrogateescape")


def parse(out: bytes, ours: bool) -> Reports:
    """Split stdout into records and check their shape (both programs)."""
    assert out.endswith(b"\0"), f"the report stream must end with NUL: {out!r}"
    records = out[:-1].split(b"\0")
    *rcpts, last = records
    for r in rcpts:  # a NUL from a reply never starts a record of its own
        assert r[:1] in (b"r", b"h", b"s"), f"not a recipient report: {r!r} in {out!r}"
    assert last[:1] in (b"K", b"Z", b"D"), f"not a message report: {last!r} in {out!r}"
    text = _text(last)
    if not ours:
        return Reports(records, tuple(_text(r) for r in rcpts), text)
    for r in records:  # CONTROL_BYTES: only the line breaks between lines
        bad = [b for b in r if (b < 32 and b != 10) or b == 127]
        assert not bad, f"control bytes {bytes(bad)!r} in our report {r!r}"
    *lines, detail = text.split("\n")
    assert DETAIL_LINE.fullmatch(detail), f"no detail line last: {text!r}"
    failed = None
    if lines and lines[-1].startswith("Failed attempts:"):
        failed = lines.pop()
    return Reports(records, tuple(_text(r) for r in rcpts), "\n".join([*lines, ""]),
                   failed, detail)


def said(reply: str) -> str:
    return f"Remote host said: {reply}\n"


def msg(letter: str, phrase: str, reply: str | None = None) -> str:
    """A message report as qmail writes it: letter, phrase, what the remote said."""
    return f"{letter}{phrase}\n" + (said(reply) if reply is not None else "")


def rcpt(letter: str, reply: str) -> str:
    return f"{letter}{IP} does not like recipient.\n{said(reply)}"


class Expect(NamedTuple):
    """Recipient reports (whole) and the message report (up to ours' trailers)."""

    recipients: tuple[str, ...]
    message: str


# --- running both programs ---------------------------------------------------------

@dataclass
class Pair:
    """Both runs: reports and what the server saw in each."""

    ref: Reports
    ours: Reports
    ref_sessions: list[Session] = field(default_factory=list)
    our_sessions: list[Session] = field(default_factory=list)


def _check_process(result: subprocess.CompletedProcess[bytes], who: str) -> None:
    assert result.returncode == 0, f"{who} exited {result.returncode}"
    assert result.stderr == b"", f"{who} wrote to stderr: {result.stderr!r}"


def home_for(make_home: Callable[..., Path], port: int | None, timeout: int = 1,
             **files: str) -> Path:
    """A qmail home whose control directory serves both programs."""
    if port is not None:
        files.setdefault("smtproutes", f":{IP}:{port}\n")
    return make_home(timeoutremote=f"{timeout}\n", timeoutconnect="1\n", **files)


def run_ref(reference: Reference, home: Path, args: list, message: bytes,
            ) -> subprocess.CompletedProcess[bytes]:
    result = reference.run(home / "control", args, message)
    _check_process(result, "the reference")
    return result


def run_ours(home: Path, args: list, message: bytes) -> subprocess.CompletedProcess[bytes]:
    result = deliver_process(home, args, message)
    _check_process(result, "ours")
    return result


def run_both(reference: Reference, home: Path, server: ScriptedSmtp | None,
             args: list | None = None, message: bytes = MESSAGE) -> Pair:
    """The reference, then ours, against ``server``; each run's sessions kept apart."""
    args = ARGS if args is None else args
    ref = run_ref(reference, home, args, message)
    ref_sessions = server.reset() if server else []
    ours = run_ours(home, args, message)
    our_sessions = server.reset() if server else []
    return Pair(parse(ref.stdout, False), parse(ours.stdout, True), ref_sessions,
                our_sessions)


def only(sessions: list[Session]) -> Session:
    assert len(sessions) == 1, f"expected one connection, got {len(sessions)}"
    return sessions[0]


# --- the matrix: stage x reply class -----------------------------------------------

CLASSES = ("2xx", "1xx", "4xx", "5xx", "garbage", "nul", "nonascii", "multiline",
           "ctrl", "cut", "drop", "stall")
ARABIC_250 = "٢٥٠ ok"
CTRL_RAW = b"550 bad\x01\x1b[0m\x7f\r\n"
CTRL_REF = "550 bad\x01\x1b[0m\x7f"  # qmail copies them raw
CTRL_OURS = "550 bad??[0m?"

# The raw reply of each class (stage-specific where the class needs it).
OTHER_2XX = {"greeting": "250 hello", "helo": "252 hello", "mail": "252 ok",
             "rcpt": "251 will forward", "data": "250 ok", "dot": "251 queued"}


def action(stage: str, cls: str) -> object:
    """The server's action for one (stage, reply class)."""
    raw = {
        "2xx": f"{OTHER_2XX.get(stage, '250 ok')}\r\n".encode(),
        "1xx": b"100 hmm\r\n",
        "4xx": b"421 busy\r\n" if stage == "greeting" else b"451 try later\r\n",
        "5xx": b"554 no\r\n",
        "garbage": b"xyz\r\n",
        "nul": b"250 ok\0Kx\r\n" if stage == "dot" else b"550 bad\0Kforged\r\n",
        "nonascii": f"{ARABIC_250}\r\n".encode(),
        "multiline": b"550-first\r\n550 second\r\n",
        "ctrl": CTRL_RAW,
    }
    if cls in raw:
        return raw[cls]
    return {"cut": Act(b"250 ok", DROP), "drop": DROP, "stall": STALL}[cls]


def ref_text(stage: str, cls: str) -> str:
    """The reply as qmail copies it after 'Remote host said: ' (CR dropped, NUL -> ?)."""
    return {
        "2xx": OTHER_2XX.get(stage, "250 ok"), "1xx": "100 hmm",
        "4xx": "421 busy" if stage == "greeting" else "451 try later", "5xx": "554 no",
        "garbage": "xyz", "nul": "250 ok?Kx" if stage == "dot" else "550 bad?Kforged",
        "nonascii": ARABIC_250, "multiline": "550-first\n550 second", "ctrl": CTRL_REF,
    }[cls]


SAME = None
REPLIED = ("2xx", "1xx", "4xx", "5xx", "garbage", "nul", "nonascii", "multiline", "ctrl")
DEAD = ("cut", "drop", "stall")
K = Expect(("r",), msg("K", f"{IP} accepted message.", "250 ok"))


@dataclass(frozen=True)
class Case:
    ref: Expect
    ours: Expect | None = SAME  # SAME: ours gives exactly the reference's reports
    reason: str | None = None


def _matrix() -> dict[tuple[str, str], Case]:
    """The table below, written out exactly (one recipient; ref -> ours, reason).

    ========== =========== ============== =========== ============= =========== ==========
    class      greeting    EHLO and HELO  MAIL        RCPT          DATA        dot
    ========== =========== ============== =========== ============= =========== ==========
    2xx        Z -> Z*     Z -> K  HELLO  K           r K           D -> Z  S   K
    1xx        Z -> Z*     Z -> Z*        K -> Z  S   r K -> s D S  D -> Z  S   K -> Z  S
    4xx        Z -> Z*     Z -> Z* EHLO   Z           s D           Z           Z
    5xx        Z -> Z*     Z -> Z* EHLO   D           h D           D           D
    garbage    Z -> Z*     Z -> Z*        D -> Z  U   h D -> s D U  D -> Z  U   D -> Z  U
    nul        Z -> Z*     Z -> Z*        D           h D           D           K
    nonascii   Z -> Z*     Z -> Z*        D -> Z  U   h D -> s D U  D -> Z  U   D -> Z  U
    multiline  Z -> Z*     Z -> Z*        D           h D           D           D
    ctrl       Z -> Z*     Z -> Z*        D  C        h D  C        D  C        D  C
    cut        Z -> Z*     Z -> Z*        Z died      Z died        r Z died    r Z dup
    drop       Z -> Z*     Z -> Z*        Z died      Z died        r Z died    r Z dup
    stall      Z -> Z*     Z -> Z*        Z died      Z died        r Z died    r Z dup
    ========== =========== ============== =========== ============= =========== ==========

    Z*: ``Sorry, I wasn't able to establish an SMTP connection.`` (FAILOVER); S:
    STRICT_CODES; U: UNREADABLE; C: same letters, the reply's control bytes differ
    (CONTROL_BYTES). After QUIT nothing matters: 5xx, garbage, drop, stall give K."""
    m: dict[tuple[str, str], Case] = {}
    noconn = Expect((), NOCONN)
    for cls in REPLIED:  # qmail: anything but 220 fails the greeting
        m["greeting", cls] = Case(Expect((), msg("Z", f"Connected to {IP} but greeting "
                                                     "failed.", ref_text("greeting", cls))),
                                  noconn, "FAILOVER")
    for cls in REPLIED:  # both EHLO and HELO get the reply; qmail wants exactly 250
        m["helo", cls] = Case(Expect((), msg("Z", f"Connected to {IP} but my name was "
                                                 "rejected.", ref_text("helo", cls))),
                              noconn, "FAILOVER")
    m["helo", "2xx"] = Case(m["helo", "2xx"].ref, K, "HELLO_2XX")
    for stage in ("greeting", "helo"):
        for cls in DEAD:
            m[stage, cls] = Case(Expect((), DIED), noconn, "FAILOVER")

    def sender(letter: str, cls: str) -> Expect:
        return Expect((), msg(letter, f"Connected to {IP} but sender was rejected.",
                              ref_text("mail", cls)))
    m["mail", "2xx"] = Case(K)
    m["mail", "1xx"] = Case(K, sender("Z", "1xx"), "STRICT_CODES")
    m["mail", "4xx"] = Case(sender("Z", "4xx"))
    for cls in ("5xx", "nul", "multiline"):
        m["mail", cls] = Case(sender("D", cls))
    for cls in ("garbage", "nonascii"):
        m["mail", cls] = Case(sender("D", cls), sender("Z", cls), "UNREADABLE")
    m["mail", "ctrl"] = Case(sender("D", "ctrl"), Expect((), msg(
        "D", f"Connected to {IP} but sender was rejected.", CTRL_OURS)), "CONTROL_BYTES")

    giving_up = msg("D", f"Giving up on {IP}.")

    def refused(letter: str, text: str) -> Expect:
        return Expect((rcpt(letter, text),), giving_up)
    m["rcpt", "2xx"] = Case(K)
    m["rcpt", "1xx"] = Case(K, refused("s", "100 hmm"), "STRICT_CODES")
    m["rcpt", "4xx"] = Case(refused("s", "451 try later"))
    for cls in ("5xx", "nul", "multiline"):
        m["rcpt", cls] = Case(refused("h", ref_text("rcpt", cls)))
    for cls in ("garbage", "nonascii"):
        m["rcpt", cls] = Case(refused("h", ref_text("rcpt", cls)),
                              refused("s", ref_text("rcpt", cls)), "UNREADABLE")
    m["rcpt", "ctrl"] = Case(refused("h", CTRL_REF), refused("h", CTRL_OURS),
                             "CONTROL_BYTES")

    def after(phrase: str, letter: str, text: str) -> Expect:
        return Expect(("r",), msg(letter, f"{IP} {phrase}", text))
    on_data, on_dot = "failed on DATA command.", "failed after I sent the message."
    # qmail sends the message after a 250 or 100 to DATA: the server, in command mode,
    # answers the first line of the message with 500, which qmail reads as the reply
    # to its final dot.
    for cls in ("2xx", "1xx"):
        m["data", cls] = Case(after(on_dot, "D", "500 5.5.1 unrecognized command"),
                              after(on_data, "Z", ref_text("data", cls)), "STRICT_CODES")
    m["data", "4xx"] = Case(after(on_data, "Z", "451 try later"))
    for cls in ("5xx", "nul", "multiline"):
        m["data", cls] = Case(after(on_data, "D", ref_text("data", cls)))
    for cls in ("garbage", "nonascii"):
        m["data", cls] = Case(after(on_data, "D", ref_text("data", cls)),
                              after(on_data, "Z", ref_text("data", cls)), "UNREADABLE")
    m["data", "ctrl"] = Case(after(on_data, "D", CTRL_REF), after(on_data, "D", CTRL_OURS),
                             "CONTROL_BYTES")

    m["dot", "2xx"] = Case(Expect(("r",), msg("K", f"{IP} accepted message.",
                                              "251 queued")))
    m["dot", "1xx"] = Case(Expect(("r",), msg("K", f"{IP} accepted message.", "100 hmm")),
                           after(on_dot, "Z", "100 hmm"), "STRICT_CODES")
    m["dot", "4xx"] = Case(after(on_dot, "Z", "451 try later"))
    m["dot", "nul"] = Case(Expect(("r",), msg("K", f"{IP} accepted message.",
                                              "250 ok?Kx")))
    for cls in ("5xx", "multiline"):
        m["dot", cls] = Case(after(on_dot, "D", ref_text("dot", cls)))
    for cls in ("garbage", "nonascii"):
        m["dot", cls] = Case(after(on_dot, "D", ref_text("dot", cls)),
                             after(on_dot, "Z", ref_text("dot", cls)), "UNREADABLE")
    m["dot", "ctrl"] = Case(after(on_dot, "D", CTRL_REF), after(on_dot, "D", CTRL_OURS),
                            "CONTROL_BYTES")

    for cls in DEAD:  # from MAIL FROM on, a dead connection is the same for both
        m["mail", cls] = Case(Expect((), DIED))
        m["rcpt", cls] = Case(Expect((), DIED))
        m["data", cls] = Case(Expect(("r",), DIED))
        m["dot", cls] = Case(Expect(("r",), DUP))
    for cls in ("5xx", "garbage", "drop", "stall"):  # qmail does not wait after QUIT
        m["quit", cls] = Case(K)
    return m


MATRIX = _matrix()
assert all((s, c) in MATRIX for s in ("greeting", "helo", "mail", "rcpt", "data", "dot")
           for c in CLASSES)
assert all(c.reason is None or c.reason in REASONS for c in MATRIX.values())


@pytest.mark.parametrize(("stage", "cls"), list(MATRIX), ids=[f"{s}-{c}" for s, c in MATRIX])
def test_matrix(reference: Reference, make_home, stage: str, cls: str) -> None:
    case = MATRIX[stage, cls]
    script = {"ehlo": action(stage, cls), "helo": action(stage, cls)} if stage == "helo" \
        else {stage: action(stage, cls)}
    with ScriptedSmtp(**script) as server:
        pair = run_both(reference, home_for(make_home, server.port), server)
    ours_expected = case.ref if case.ours is SAME else case.ours
    assert (pair.ref.recipients, pair.ref.message) == case.ref
    assert (pair.ours.recipients, pair.ours.message) == ours_expected, case.reason
    if case.reason is None:
        assert (pair.ours.recipients, pair.ours.message) == (pair.ref.recipients,
                                                             pair.ref.message)
    if case.reason == "FAILOVER":
        assert pair.ours.failed is not None, "no Failed attempts: line"
        assert f"{IP}:{server.port}" in pair.ours.failed
        if cls in ("2xx", "1xx", "4xx", "5xx"):  # the attempt's reason names the reply
            assert ref_text(stage, cls) in pair.ours.failed
    else:
        assert pair.ours.remote() == f"{IP}:{server.port}"
    ours = only(pair.our_sessions)
    if stage == "helo":  # EHLO: after a 5xx, HELO; after a 4xx, nothing more
        if cls in ("4xx",):
            assert b"HELO" not in ours.verbs(), REASONS["EHLO"]
        if cls in ("5xx", "multiline", "nul", "ctrl"):  # all 5xx
            assert ours.verbs()[:2] == [b"EHLO", b"HELO"], REASONS["EHLO"]
    if stage == "data" and cls in ("2xx", "1xx"):  # no message after a non-354
        assert ours.bodies == []
        rest = ours.verbs()[ours.verbs().index(b"DATA") + 1:]
        assert set(rest) <= {b"QUIT", b"RSET"}, rest
    if case.reason == "FAILOVER":
        assert b"MAIL" not in ours.verbs()


# --- EHLO and HELO -----------------------------------------------------------------

HELLO = {  # name: (reply to EHLO, whether ours falls back to HELO and delivers)
    "ehlo-502": (b"502 5.5.1 EHLO not implemented\r\n", True),
    "ehlo-500": (b"500 what\r\n", True),
    "ehlo-550": (b"550 go away\r\n", True),
    "ehlo-421": (b"421 4.7.0 busy, come back later\r\n", False),
    "ehlo-451": (b"451 4.3.0 try later\r\n", False),
}


@pytest.mark.parametrize("name", list(HELLO))
def test_hello(reference: Reference, make_home, name: str) -> None:
    reply, falls_back = HELLO[name]
    with ScriptedSmtp(ehlo=reply) as server:
        pair = run_both(reference, home_for(make_home, server.port), server)
    # The reference says HELO and never sees the EHLO reply: it delivers.
    assert only(pair.ref_sessions).verbs()[0] == b"HELO"
    assert (pair.ref.recipients, pair.ref.message) == K
    ours = only(pair.our_sessions)
    if falls_back:
        assert ours.verbs()[:3] == [b"EHLO", b"HELO", b"MAIL"]
        assert (pair.ours.recipients, pair.ours.message) == K
    else:  # reason EHLO: a 4xx ends the attempt with its text, no HELO after it
        assert ours.verbs() == [b"EHLO"] or ours.verbs() == [b"EHLO", b"QUIT"], \
            REASONS["EHLO"]
        assert (pair.ours.recipients, pair.ours.message) == ((), NOCONN)
        assert pair.ours.failed is not None
        assert reply.decode().strip() in pair.ours.failed


# --- envelope: quoting -------------------------------------------------------------

# name: (address as given in argv, as qmail's quote() puts it between < and >)
ADDRESSES: dict[str, tuple[bytes, bytes]] = {
    "plain": (b"john@example.com", b"john@example.com"),
    "atext": (b"a+b=c!#$%&'*/?^_`{|}~-@example.com", b"a+b=c!#$%&'*/?^_`{|}~-@example.com"),
    "inner-dot": (b"john.smith@example.com", b"john.smith@example.com"),
    "case-kept": (b"John@Example.COM", b"John@Example.COM"),
    "no-at": (b"postmaster", b"postmaster"),
    "double-bounce": (b"#@[]", b"#@[]"),
    "space": (b"john smith@example.com", b'"john smith"@example.com'),
    "dquote": (b'a"b@example.com', b'"a\\"b"@example.com'),
    "backslash": (b"a\\b@example.com", b'"a\\\\b"@example.com'),
    "leading-dot": (b".john@example.com", b'".john"@example.com'),
    "trailing-dot": (b"john.@example.com", b'"john."@example.com'),
    "double-dot": (b"jo..hn@example.com", b'"jo..hn"@example.com'),
    "specials": (b"a(b),c:d;e<f>[g]@example.com", b'"a(b),c:d;e<f>[g]"@example.com'),
    "at-in-local": (b"a@b@example.com", b'"a@b"@example.com'),
    "empty-local": (b"@example.com", b'""@example.com'),
    "8bit": (b"j\xf6rg@example.com", b'"j\xf6rg"@example.com'),
    "utf8": ("jörg@example.com".encode(), '"jörg"@example.com'.encode()),
    "literal-domain": (b"x@[127.0.0.1]", b"x@[127.0.0.1]"),
}


def _envelope_line(line: bytes, expected: bytes, ours: bool) -> None:
    """``line`` is ``expected`` and CRLF; ours may add ESMTP parameters after '>'."""
    if ours and line != expected + b"\r\n":
        assert line.startswith(expected + b" ") and line.endswith(b"\r\n"), \
            (line, expected)
        assert b"\r" not in line[:-2] and b"\n" not in line[:-2]
    else:
        assert line == expected + b"\r\n"


@pytest.mark.parametrize("name", ["null-sender", *ADDRESSES])
def test_envelope_quoting(reference: Reference, make_home, name: str) -> None:
    if name == "null-sender":
        sender, recipient, sender_wire, rcpt_wire = b"", b"y@x.org", b"", b"y@x.org"
    else:
        sender, sender_wire = ADDRESSES[name]
        recipient, rcpt_wire = ADDRESSES[name]
    with ScriptedSmtp() as server:
        pair = run_both(reference, home_for(make_home, server.port), server,
                        [b"x.org", sender, recipient])
    for sessions, ours in ((pair.ref_sessions, False), (pair.our_sessions, True)):
        session = only(sessions)
        mail, rcpts = session.lines(b"MAIL"), session.lines(b"RCPT")
        assert len(mail) == len(rcpts) == 1, (session.commands, pair.ours.message)
        _envelope_line(mail[0], b"MAIL FROM:<" + sender_wire + b">", ours)
        _envelope_line(rcpts[0], b"RCPT TO:<" + rcpt_wire + b">", ours)
    assert (pair.ref.recipients, pair.ref.message) == K
    assert (pair.ours.recipients, pair.ours.message) == K


# --- envelope: CR and LF (reason QUOTING) ------------------------------------------

INJECTIONS = {  # an address that smuggles commands past qmail's quote()
    "crlf-in-domain": b"z@x.org>\r\nRSET\r\nMAIL FROM:<evil>",
    "crlf-in-local": b"z\r\nRSET\r\nMAIL FROM:<evil@x.org",
    "lf-in-local": b"z\nMAIL FROM:<evil@x.org",
    "cr-in-local": b"z\rMAIL FROM:<evil@x.org",
}
LINE_BREAK_WORDS = re.compile(r"CR|LF|line break|newline|carriage return", re.IGNORECASE)


def _no_injection(session: Session) -> None:
    for line in session.commands:
        assert b"evil" not in line, f"injected: {line!r}"
        assert not line.upper().startswith(b"RSET"), f"injected: {line!r}"
    assert len(session.lines(b"MAIL")) <= 1


@pytest.mark.parametrize("name", list(INJECTIONS))
def test_envelope_line_breaks_recipient(reference: Reference, make_home, name: str) -> None:
    bad = INJECTIONS[name]
    with ScriptedSmtp() as server:
        pair = run_both(reference, home_for(make_home, server.port), server,
                        [b"x.org", b"a@b.org", bad, b"y@x.org"])
    if name.startswith("crlf"):  # for the record: qmail's server saw a second MAIL
        assert len(only(pair.ref_sessions).lines(b"MAIL")) == 2
    ours = only(pair.our_sessions)
    _no_injection(ours)
    assert [line[:len(b"RCPT TO:<y@x.org>")] for line in ours.lines(b"RCPT")] == \
        [b"RCPT TO:<y@x.org>"]
    assert pair.ours.letters == "hr", REASONS["QUOTING"]
    assert LINE_BREAK_WORDS.search(pair.ours.recipients[0]), pair.ours.recipients[0]
    assert pair.ours.message == msg("K", f"{IP} accepted message.", "250 ok")


@pytest.mark.parametrize("name", list(INJECTIONS))
def test_envelope_line_breaks_sender(reference: Reference, make_home, name: str) -> None:
    bad = INJECTIONS[name].replace(b"evil", b"evil-sender")
    with ScriptedSmtp() as server:
        pair = run_both(reference, home_for(make_home, server.port), server,
                        [b"x.org", bad, b"y@x.org"])
    if name.startswith("crlf"):  # for the record: qmail's server saw a second MAIL
        assert len(only(pair.ref_sessions).lines(b"MAIL")) == 2
    for session in pair.our_sessions:
        _no_injection(session)
        assert session.bodies == []
    assert "r" not in pair.ours.letters
    assert pair.ours.message[0] == "D", REASONS["QUOTING"]
    assert LINE_BREAK_WORDS.search(pair.ours.message), pair.ours.message


# --- the DATA stream ---------------------------------------------------------------

BARE = re.compile(rb"\r(?!\n)|(?<!\r)\n")


class Body(NamedTuple):
    message: bytes
    ours: bytes  # the DATA stream ours must send (without the final .CRLF)
    ref: bytes | None = None  # the reference's, when it differs (the record)
    reason: str | None = None


BODIES: dict[str, Body] = {
    "plain": Body(b"Subject: t\n\nhello\n", b"Subject: t\r\n\r\nhello\r\n"),
    "dot-line": Body(b"a\n.\nb\n", b"a\r\n..\r\nb\r\n"),
    "leading-dots": Body(b".a\n..b\n...\n", b"..a\r\n...b\r\n....\r\n"),
    "first-line-dot": Body(b".\n", b"..\r\n"),
    "8bit": Body(b"caf\xe9 \xff\xfe\x80\n\xc3\xa9\n", b"caf\xe9 \xff\xfe\x80\r\n\xc3\xa9\r\n"),
    "long-line": Body(b"x" * 10_000 + b"\n", b"x" * 10_000 + b"\r\n"),
    "empty": Body(b"", b""),
    "crlf": Body(b"a\r\nb\r\n", b"a\r\nb\r\n"),
    "crlf-dot-line": Body(b".\r\nx\r\n", b"..\r\nx\r\n"),
    "bare-cr-mid-line": Body(b"a\rb\n", b"a\r\nb\r\n"),
    "bare-cr-at-end": Body(b"a\r", b"a\r\n"),
    "no-final-newline": Body(b"a\nb", b"a\r\nb\r\n", None, "PARTIAL_LINE"),
    "bare-cr-then-dot": Body(b"a\r.\nb\n", b"a\r\n..\r\nb\r\n", b"a\r\n", "BARE_CR"),
    "bare-cr-dot-first": Body(b"\r.\nb\n", b"\r\n..\r\nb\r\n", b"\r\n", "BARE_CR"),
    "cr-cr-lf": Body(b"a\r\r\nb\n", b"a\r\n\r\nb\r\n", b"a\r\n\r\r\nb\r\n", "BARE_CR"),
}


@pytest.mark.parametrize("name", list(BODIES))
def test_body(reference: Reference, make_home, name: str) -> None:
    body = BODIES[name]
    with ScriptedSmtp() as server:
        pair = run_both(reference, home_for(make_home, server.port), server,
                        message=body.message)
    ref, ours = only(pair.ref_sessions), only(pair.our_sessions)
    # Ours: exactly the expected stream, one message, nothing after it but QUIT.
    assert ours.bodies == [body.ours], body.reason or "the same stream as qmail's"
    assert ours.cut_body is None
    assert BARE.search(body.ours) is None  # the expectation itself is clean SMTP
    assert ours.verbs()[ours.verbs().index(b"DATA") + 1:] in ([], [b"QUIT"])
    assert (pair.ours.recipients, pair.ours.message) == K
    if body.reason is None:
        assert ref.bodies == [body.ours]
        assert (pair.ref.recipients, pair.ref.message) == K
    elif body.reason == "PARTIAL_LINE":  # qmail stops in the middle of DATA and
        # _exit()s without flushing its output buffer: the server saw none of it
        assert ref.bodies == [] and ref.cut_body == b""
        assert pair.ref.recipients == ("r",)
        assert pair.ref.message == ("DSMTP cannot transfer messages with partial final "
                                    "lines. (#5.6.2)\n")
    else:  # BARE_CR, for the record: what qmail put on the wire
        assert ref.bodies == [body.ref]
        if body.ref in (b"a\r\n", b"\r\n"):  # its end of data came early: smuggling
            assert b"b\r\n" in ref.commands
        assert (pair.ref.recipients, pair.ref.message) == K


# --- MX is me (qmail's ipme) -------------------------------------------------------

@pytest.mark.parametrize("host", ["[127.0.0.1]", "[0.0.0.0]"])
def test_mx_is_me_literal(reference: Reference, make_home, host: str) -> None:
    """An address literal that is this host (qmail's ipme has 0.0.0.0 and every
    interface address) is the best-preference MX: D #5.4.6, no DNS, no connection."""
    home = home_for(make_home, None)
    args = [host, "a@b.org", "y@x.org"]
    ref = parse(run_ref(reference, home, args, MESSAGE).stdout, False)
    ours = parse(run_ours(home, args, MESSAGE).stdout, True)
    assert (ref.recipients, ref.message) == ((), AMBIGMX)
    assert (ours.recipients, ours.message) == ((), AMBIGMX)


def _need_root_and_unshare() -> str:
    if os.geteuid() != 0:
        pytest.skip("needs root: a DNS server on port 53 and a private mount of "
                    "/etc/resolv.conf for the reference")
    unshare = shutil.which("unshare")
    if unshare is None or not os.path.exists("/etc/resolv.conf"):
        pytest.skip("needs unshare(1) and /etc/resolv.conf to point the reference's "
                    "resolver at a test DNS server")
    probe = subprocess.run([unshare, "--mount", "/bin/sh", "-c",
                            "mount --bind /etc/resolv.conf /etc/resolv.conf"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot bind-mount /etc/resolv.conf in a private mount namespace "
                    f"(unshare --mount): {probe.stderr!r}")
    return unshare


def _random_loopback(rng: random.Random) -> str:
    return f"127.53.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}"


def _bind_port(make: Callable[[str], object], rng: random.Random) -> object:
    """``make(address)`` on a random 127.53.x.y, retried where the port is taken."""
    for _ in range(20):
        try:
            return make(_random_loopback(rng))
        except OSError:
            continue
    pytest.skip("no free 127.53.x.y address for a fixed port")


class MxWorld(NamedTuple):
    dns: DnsServer
    unshare: str


@pytest.fixture
def mx_world(tmp_path: Path):
    """A DNS server on port 53 of a private loopback address (the reference asks the
    system resolver, which knows no port; ours reads control/dnsservers)."""
    unshare = _need_root_and_unshare()
    rng = random.Random()
    dns = _bind_port(lambda address: DnsServer(Zone(), address=address, port=53), rng)
    assert isinstance(dns, DnsServer)
    dns.start()
    yield MxWorld(dns, unshare)
    dns.stop()


def run_ref_resolver(reference: Reference, world: MxWorld, home: Path, tmp: Path,
                     args: list[str]) -> Reports:
    """The reference in a private mount namespace where /etc/resolv.conf names only
    the test DNS server."""
    resolv = tmp / "resolv.conf"
    resolv.write_text(f"nameserver {world.dns.address}\noptions attempts:1 timeout:2\n")
    reference.use_control(home / "control")
    result = subprocess.run(
        [world.unshare, "--mount", "/bin/sh", "-c",
         'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(resolv),
         str(reference.binary), *args],
        input=MESSAGE, capture_output=True, timeout=60,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    _check_process(result, "the reference")
    return parse(result.stdout, False)


def _mx_server(rng: random.Random) -> ScriptedSmtp:
    server = _bind_port(lambda address: ScriptedSmtp(address, 25).start(), rng)
    assert isinstance(server, ScriptedSmtp)
    return server


def _closed_address(rng: random.Random) -> str:
    """A loopback address where nothing listens on port 25 (a connect is refused)."""
    for _ in range(20):
        address = _random_loopback(rng)
        with socket.socket() as s:
            if s.connect_ex((address, 25)) != 0:
                return address
    pytest.skip("no closed 127.53.x.y:25")


@pytest.mark.parametrize("name", ["best-mx-is-me", "lower-mx-is-me", "loopback-not-me"])
def test_mx_is_me_dns(reference: Reference, make_home, mx_world: MxWorld,
                      tmp_path: Path, name: str) -> None:
    """qmail's rule on MX that are this host, with a real DNS server for both.

    best-mx-is-me: MX 10 is 127.0.0.1 (an interface address): D #5.4.6.
    lower-mx-is-me: MX 10 refuses connections, MX 20 is 127.0.0.1: MX 20 and every
    MX of preference 20 or worse are dropped; nothing else is tried: Z.
    loopback-not-me: MX 10 on 127.53.x.y, routed to this host but no interface's
    address, is not "me": delivered there."""
    rng = random.Random()
    zone = mx_world.dns.zone
    domain = f"{name}.test"
    servers = [_mx_server(rng) for _ in range(2)]
    try:
        if name == "best-mx-is-me":
            zone.add(domain, "MX", (10, f"me.{domain}"))
            zone.add(domain, "MX", (20, f"backup.{domain}"))
            zone.add(f"me.{domain}", "A", IP)
            zone.add(f"backup.{domain}", "A", servers[0].host)
        elif name == "lower-mx-is-me":
            zone.add(domain, "MX", (10, f"primary.{domain}"))
            zone.add(domain, "MX", (20, f"me.{domain}"))
            zone.add(domain, "MX", (20, f"same.{domain}"))
            zone.add(domain, "MX", (30, f"worse.{domain}"))
            zone.add(f"primary.{domain}", "A", _closed_address(rng))
            zone.add(f"me.{domain}", "A", IP)
            zone.add(f"same.{domain}", "A", servers[0].host)
            zone.add(f"worse.{domain}", "A", servers[1].host)
        else:
            zone.add(domain, "MX", (10, f"mx.{domain}"))
            zone.add(f"mx.{domain}", "A", servers[0].host)
        home = make_home(timeoutremote="2\n", timeoutconnect="1\n",
                         dnsservers=f"{mx_world.dns.address}:53\n")
        args = [domain, "a@b.org", f"y@{domain}"]
        ref = run_ref_resolver(reference, mx_world, home, tmp_path, args)
        assert (domain, "MX") in zone.queries, "the reference did not ask the test DNS"
        ref_sessions = [s.reset() for s in servers]
        ours = parse(run_ours(home, args, MESSAGE).stdout, True)
        our_sessions = [s.reset() for s in servers]
    finally:
        for s in servers:
            s.stop()
    if name == "best-mx-is-me":
        expected = Expect((), AMBIGMX)
        assert ref_sessions == our_sessions == [[], []]
    elif name == "lower-mx-is-me":
        expected = Expect((), NOCONN)
        assert ref_sessions == our_sessions == [[], []]
        assert ours.failed is not None
    else:
        expected = Expect(("r",), msg("K", f"{servers[0].host} accepted message.",
                                      "250 ok"))
        assert [len(s) for s in ref_sessions] == [len(s) for s in our_sessions] == [1, 0]
        assert our_sessions[0][0].bodies == [b"Subject: t\r\n\r\nhello\r\n"]
    assert (ref.recipients, ref.message) == expected
    assert (ours.recipients, ours.message) == expected


# --- timeouts bound each read and write, not the message ---------------------------

def _parallel(reference: Reference, home: Path, message: bytes,
              ) -> tuple[Reports, Reports, float]:
    """Both programs at the same time (each in its own session of the server)."""
    start = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        ref = pool.submit(run_ref, reference, home, ARGS, message)
        ours = pool.submit(run_ours, home, ARGS, message)
        ref_out, our_out = ref.result(), ours.result()
    return (parse(ref_out.stdout, False), parse(our_out.stdout, True),
            time.monotonic() - start)


def test_slow_steady_reader(reference: Reference, make_home) -> None:
    """24 MiB to a server reading 4 MiB/s (6 s) with timeoutremote=3: both deliver.

    The rate is high enough that what the kernel buffers (the client's send buffer
    grows to 4 MiB on loopback) drains within the timeout after the last write."""
    line = b"x" * 998 + b"\n"
    message = b"Subject: big\n\n" + line * (24 * 1024 * 1024 // len(line))
    with ScriptedSmtp(read_rate=(256 * 1024, 1 / 16), rcvbuf=256 * 1024) as server:
        home = home_for(make_home, server.port, timeout=3)
        ref, ours, elapsed = _parallel(reference, home, message)
        sessions = server.reset()
    assert elapsed > 4.5  # the transfer took longer than timeoutremote
    assert (ref.recipients, ref.message) == K
    assert (ours.recipients, ours.message) == K
    wire = message.replace(b"\n", b"\r\n")
    assert [s.bodies == [wire] for s in sessions] == [True, True]


def test_reader_stops_mid_body(reference: Reference, make_home) -> None:
    """A server that stops reading in the middle of the message: after timeoutremote,
    both say the connection died (no 'Possible duplicate': the dot was not sent)."""
    line = b"y" * 998 + b"\n"
    message = b"Subject: big\n\n" + line * (16 * 1024 * 1024 // len(line))
    with ScriptedSmtp(stop_reading_after=64 * 1024, rcvbuf=256 * 1024) as server:
        home = home_for(make_home, server.port, timeout=1)
        ref, ours, elapsed = _parallel(reference, home, message)
    assert (ref.recipients, ref.message) == (("r",), DIED)
    assert (ours.recipients, ours.message) == (("r",), DIED)
    assert elapsed < 10  # about timeoutremote, not the time the message would take


# --- the scripted server itself ----------------------------------------------------

def _replies(sock: socket.socket, count: int) -> list[bytes]:
    """``count`` single-line replies, read to the end of each."""
    data = b""
    while data.count(b"\r\n") < count:
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    return data.split(b"\r\n")[:count]


def test_scripted_server_pipelining_and_recording() -> None:
    """Commands sent in one packet get their replies in order; lines and the message
    are recorded as raw bytes; a reply list gives one reply per occurrence."""
    with ScriptedSmtp(helo=b"250 hi\r\n", rcpt=[b"550 no\r\n", b"250 yes\r\n"]) as server:
        with socket.create_connection((IP, server.port), timeout=5) as sock:
            assert _replies(sock, 1) == [b"220 scripted.test ESMTP"]
            sock.sendall(b"HELO x\r\nMAIL FROM:<\"a b\"@c>\r\nRCPT TO:<d\xff>\r\n"
                         b"RCPT TO:<e>\r\nRCPT TO:<f>\r\nDATA\r\n")
            assert _replies(sock, 6) == [b"250 hi", b"250 ok", b"550 no", b"250 yes",
                                         b"250 yes", b"354 go ahead"]
            sock.sendall(b"..x\r\n\r.\r\n.\r\nQUIT\r\n")
            assert _replies(sock, 2) == [b"250 ok", b"221 bye"]
        (session,) = server.reset()
    assert session.commands == [b"HELO x\r\n", b"MAIL FROM:<\"a b\"@c>\r\n",
                                b"RCPT TO:<d\xff>\r\n", b"RCPT TO:<e>\r\n",
                                b"RCPT TO:<f>\r\n", b"DATA\r\n", b"QUIT\r\n"]
    assert session.bodies == [b"..x\r\n\r.\r\n"]  # CR . CRLF does not end the data


def test_scripted_server_stop_ends_stalls() -> None:
    """stop() returns at once, whatever the sessions are doing."""
    server = ScriptedSmtp(mail=STALL).start()
    socks = [socket.create_connection((IP, server.port), timeout=5) for _ in range(2)]
    socks[0].sendall(b"HELO x\r\nMAIL FROM:<a>\r\n")
    socks[1].sendall(b"HELO x\r\n")
    for sock in socks:
        sock.recv(4096)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3
    for sock in socks:
        sock.close()
