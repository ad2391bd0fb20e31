"""qmail-remote's report protocol, as pure functions: letters, qmail's phrases, ``\\0``.

Recipient reports (``r`` accepted, ``h`` 5xx, ``s`` 4xx), then exactly one message
report (``K``, ``Z``, ``D``) whose last line is the detail line that qmail-send logs:
``route=NAME local=IP remote=IP:PORT tls=VERSION|none auth=MECH|none``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# The detail line as written by Detail.line(), or as qmail-send logs it (spaces as _);
# compiled on first use (by the console), never on qmail-remote's start-up path.
_DETAIL = (r"route=(\S+?)[ _]local=(\S+?)[ _]remote=(\S+?)[ _]tls=(\S+?)"
           r"[ _]auth=([^\s_/]+)")


class Detail(NamedTuple):
    """What the detail line says about the attempt that decided the delivery."""

    route: str = "-"
    local: str = "-"
    remote: str = "-"
    tls: str = "none"
    auth: str = "none"

    def line(self) -> str:
        """The detail line itself."""
        return (f"route={self.route} local={self.local} remote={self.remote} "
                f"tls={self.tls} auth={self.auth}")


def parse_detail(text: str) -> Detail | None:
    """The detail line found in ``text`` (a report, or qmail-send's log of one)."""
    m = re.search(_DETAIL, text)
    return None if m is None else Detail(*m.groups())


class Outcome:
    """Every report of one delivery: recipient reports, then the message report."""

    def __init__(self, letter: str = "Z", text: str = "", detail: Detail | None = None,
                 ) -> None:
        self.recipients: list[tuple[str, str]] = []  # (letter, text), in argv order
        self.letter = letter
        self.text = text
        self.detail = detail or Detail()

    def encode(self) -> bytes:
        """The bytes qmail-rspawn reads from stdout."""
        parts = [letter + text for letter, text in self.recipients]
        parts.append(self.letter + self.text + self.detail.line())
        return b"".join(p.encode("utf-8", "replace") + b"\0" for p in parts)


def said(reply: str | None) -> str:
    """``Remote host said: REPLY`` (one line each, as qmail writes it), or nothing."""
    if not reply:
        return ""
    return "Remote host said: " + reply.rstrip("\n").replace("\r", "") + "\n"


def phrase(text: str, reply: str | None = None) -> str:
    """A report's text: qmail's phrase, a newline, and what the remote host said."""
    return text + "\n" + said(reply)


def recipient(letter: str, ip: str, reply: str) -> tuple[str, str]:
    """A recipient report: ``r`` alone, or ``h``/``s`` with qmail's phrase."""
    if letter == "r":
        return "r", ""
    return letter, phrase(f"{ip} does not like recipient.", reply)


def no_connection(reasons: list[str]) -> str:
    """The text when no attempt reached ``MAIL FROM``, with what went wrong."""
    text = "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"
    if reasons:
        shown = reasons[-5:]
        more = f" (and {len(reasons) - 5} earlier attempts)" if len(reasons) > 5 else ""
        text += "Attempts: " + "; ".join(shown) + more + "\n"
    return text
