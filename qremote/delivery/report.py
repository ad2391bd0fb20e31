"""qmail-remote's report protocol, as pure functions: letters, qmail's phrases, ``\\0``.

Recipient reports (``r`` accepted, ``h`` 5xx, ``s`` 4xx), then exactly one message
report (``K``, ``Z``, ``D``) whose last line is the detail line that qmail-send logs:
``route=NAME local=IP remote=IP:PORT tls=VERSION|none auth=MECH|none``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# The detail line as written by Detail.line(), or as qmail-send logs it (spaces as _,
# line breaks as /): only as the very end of the text, so that a remote's reply
# copied into the report cannot forge it. (Nothing may follow it, not even a line
# break: the stock qmail-remote ends its reports with one, after the remote's reply.)
# Compiled on first use (by the console), never on qmail-remote's start-up path.
_DETAIL = (r"(?:\A|[\n/])route=([^\s/]+?)[ _]local=([^\s/]+?)[ _]remote=([^\s/]+?)"
           r"[ _]tls=([^\s/]+?)[ _]auth=([^\s_/]+)\Z")


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
    """The detail line ending ``text`` (a report, or qmail-send's log of one)."""
    m = re.search(_DETAIL, text)
    return None if m is None else Detail(*m.groups())


# Bytes our own texts may not carry into the report stream: C0 controls but LF, DEL.
_UNSAFE = "".join(chr(c) for c in (*range(10), *range(11, 32), 127))
_SAFE = str.maketrans(_UNSAFE, "?" * len(_UNSAFE))
# qmail-rspawn reads the whole output at EOF; a worker writes it in one write(2), which
# the kernel keeps whole (never a partial report: "r" without "K" would be a bounce)
# only up to PIPE_BUF bytes.
PIPE_BUF = 4096


def clean(text: str) -> str:
    """``text`` with NUL and every other control byte but LF shown as ``?``."""
    return text.translate(_SAFE)


class Outcome:
    """Every report of one delivery: recipient reports, then the message report."""

    def __init__(self, letter: str = "Z", text: str = "", detail: Detail | None = None,
                 ) -> None:
        self.recipients: list[tuple[str, str]] = []  # (letter, text), in argv order
        self.letter = letter
        self.text = text
        self.detail = detail or Detail()
        self.failed: list[str] = []  # earlier attempts of this delivery, with reasons

    def message_text(self) -> str:
        """The message report's text: qmail's phrase and the remote's reply, the
        failed attempts, and the detail line, always last."""
        failed = ""
        if self.failed:
            shown = [clean(f).replace("\n", " / ") for f in self.failed[-5:]]
            more = (f" (and {len(self.failed) - 5} earlier)" if len(self.failed) > 5
                    else "")
            failed = "Failed attempts: " + "; ".join(shown) + more + "\n"
        return clean(self.text) + failed + clean(self.detail.line())

    def encode(self, limit: int = PIPE_BUF) -> bytes:
        """The bytes qmail-rspawn reads from stdout, at most ``limit`` when there are
        few enough recipients for that (texts are shortened, letters and the detail
        line never)."""
        records = [(letter, clean(text)) for letter, text in self.recipients]
        message = self.message_text()
        raw = _records(records, self.letter, message)
        if len(raw) <= limit:
            return raw
        # Every text gets an equal share; letters and the detail line stay whole.
        budget = max(limit - 2 * (len(records) + 1) - len(self.detail.line().encode()) - 4,
                     64 * (len(records) + 1))
        share = budget // (len(records) + 1)
        records = [(letter, _shorten(text, share)) for letter, text in records]
        head, _, detail = message.rpartition("\n")
        return _records(records, self.letter, _shorten(head + "\n", share) + detail)


def _shorten(text: str, size: int) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= size:
        return text
    return data[:max(size - 4, 0)].decode("utf-8", "ignore") + "...\n"


def _bytes(text: str) -> bytes:
    try:  # argv bytes that are not UTF-8 go back out as they came in
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _records(records: list[tuple[str, str]], final: str, message: str) -> bytes:
    parts = [letter + text for letter, text in records]
    parts.append(final + message)
    return b"".join(_bytes(p).replace(b"\0", b"?") + b"\0" for p in parts)


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


NO_CONNECTION = "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"
