"""qmail-send's log lines, as pure functions: time stamps, events, deliveries.

A line may carry a multilog TAI64N stamp (``@4000000065f1c2a31d2c3b40 ...``), a
splogger or syslog prefix (``Nov 24 10:00:00 host qmail: 1764000000.123456 ...``),
an ISO 8601 stamp, or nothing. What follows is qmail-send's text, e.g.::

    info msg 1234: bytes 2345 from <a@b.org> qp 99 uid 89
    starting delivery 15: msg 1234 to remote x@example.com
    delivery 15: success: 127.0.0.1_accepted_message./Remote_host_said:_250_ok/route=...

qmail-send writes a report with spaces as ``_`` and line breaks as ``/``; the last
line of a qremote report is the detail line (``route= local= remote= tls= auth=``).
"""

from __future__ import annotations

import re
import time
from typing import NamedTuple

from qremote.report import parse_detail

TAI64_UNIX = (1 << 62) + 10  # tai64nlocal's epoch: TAI64 label of 1970-01-01 UTC
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_SYSLOG = re.compile(rb"([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d) \S+ ([^:\s]+): ")
_ISO = re.compile(rb"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.\d+)?"
                  rb"(Z|[+-]\d\d:?\d\d)? (?:\S+ ([^:\s]+): )?")
_EPOCH = re.compile(rb"(\d{9,11}\.\d{6}) ")
# qmail-send's lines, one grammar for the row builder and the indexer (group numbers
# are constants: this runs once per log line).
EVENT = re.compile(
    rb"(starting )?delivery (\d+): (?:msg (\d+) to (local|remote) (.*)"
    rb"|(success|deferral|failure): ?(.*))"
    rb"|info msg (\d+): bytes \d+ from <(.*?)> |new msg |end msg |status: |bounce msg "
    rb"|triple bounce")
E_STARTING, E_NUMBER, E_MSG, E_CHANNEL, E_RCPT, E_STATUS, E_TEXT, E_INFO, E_SENDER = \
    range(1, 10)


def tai64n(label: bytes) -> float | None:
    """Unix time of a 24-hex-digit TAI64N label (without the ``@``)."""
    try:
        return int(label[:16], 16) - TAI64_UNIX + int(label[16:24], 16) / 1e9
    except ValueError:
        return None


def tai64n_label(when: float) -> str:
    """The multilog stamp of unix time ``when``: ``@`` and 24 hex digits."""
    secs = int(when)
    return f"@{secs + TAI64_UNIX:016x}{int((when - secs) * 1e9):08x}"


def split_stamp(line: bytes, year: int | None = None) -> tuple[float | None, bytes]:
    """(unix time or None, the rest of the line) for any supported prefix.

    Syslog stamps have no year: ``year`` (default: this year) fills it in."""
    if line[:1] == b"@" and len(line) >= 25:
        stamp = tai64n(line[1:25])
        if stamp is not None:
            return stamp, line[26:] if line[25:26] == b" " else line[25:]
    when: float | None = None
    m = _SYSLOG.match(line)
    if m is not None and m[1].decode() in _MONTHS:
        y = year or time.localtime().tm_year
        when = time.mktime((y, _MONTHS[m[1].decode()], int(m[2]), int(m[3]), int(m[4]),
                            int(m[5]), 0, 0, -1))
        line = line[m.end():]
    elif (m := _ISO.match(line)) is not None:
        when = _iso_time(m)
        line = line[m.end():]
    e = _EPOCH.match(line)  # splogger's own stamp is more precise than syslog's
    if e is not None:
        return float(e[1]), line[e.end():]
    return when, line


def _iso_time(m: re.Match[bytes]) -> float:
    fields = (int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]))
    zone = m[7]
    if zone is None:
        return time.mktime((*fields, 0, 0, -1))
    import calendar

    offset = 0
    if zone != b"Z":
        z = zone.replace(b":", b"")
        offset = (int(z[1:3]) * 3600 + int(z[3:5]) * 60) * (-1 if z[:1] == b"-" else 1)
    return calendar.timegm((*fields, 0, 0, 0)) - offset


def syslog_program(line: bytes) -> bytes | None:
    """The program of a syslog line (``qmail``, ``sshd``…), None for other lines."""
    m = _SYSLOG.match(line)
    return None if m is None else m[6]


def local_time(when: float | None) -> str:
    """A stamp shown in local time, as tai64nlocal would (to the second)."""
    if when is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


def logsafe(text: str) -> str:
    """A report as qmail-send logs it: line breaks ``/``, spaces and unsafe bytes ``_``."""
    out = []
    for ch in text:
        if ch == "\n":
            out.append("/")
        elif ch == "%" or not 33 <= ord(ch) <= 126:
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


def unsafe(text: str) -> list[str]:
    """The report's lines back from the log (``_`` read as a space)."""
    return [part.replace("_", " ") for part in text.split("/") if part]


class Delivery(NamedTuple):
    """One delivery as a row of the logs view."""

    time: float | None
    msg: str
    recipient: str
    status: str  # success, deferral, failure; "raw" for a line shown as is
    route: str
    local: str
    remote: str
    tls: str
    auth: str
    duration: float | None
    reply: str
    number: str = ""
    sender: str = ""

    def text(self) -> str:
        """Every field in one string, for the filter."""
        return " ".join((local_time(self.time), self.msg, self.sender, self.recipient,
                         self.status, self.route, self.local, self.remote, self.tls,
                         self.auth, self.reply))


def decode(raw: bytes) -> str:
    """Bytes of a log line as text; what is not UTF-8 is shown escaped, never fatal."""
    return raw.decode("utf-8", "backslashreplace").rstrip("\r\n").replace("\0", "\\x00")


def raw_row(line: bytes, year: int | None = None) -> Delivery:
    """A line that is not a delivery, shown as read."""
    when, _ = split_stamp(line, year)
    return Delivery(when, "", "", "raw", "", "", "", "", "", None, decode(line))


def delivery(result: bytes, start: bytes | None = None, info: bytes | None = None,
             year: int | None = None) -> Delivery:
    """Join a ``delivery N:`` line with its ``starting delivery`` and ``info msg``
    lines (each optional) into one row; a line that is none of these is shown raw."""
    when, rest = split_stamp(result, year)
    m = EVENT.search(rest)
    if m is None or m[E_STATUS] is None:
        return raw_row(result, year)
    text = decode(m[E_TEXT])
    lines = unsafe(text)
    detail = parse_detail(text)
    route = local = remote = tls = auth = "-"
    if detail is not None:
        route, local, remote, tls, auth = detail
        lines = [ln for ln in lines if not ln.startswith("route=")]
    reply = " · ".join(lines)
    msg = recipient = sender = ""
    duration = None
    if start is not None:
        started, srest = split_stamp(start, year)
        s = EVENT.search(srest)
        if s is not None and s[E_MSG] is not None and s[E_NUMBER] == m[E_NUMBER]:
            msg, recipient = s[E_MSG].decode(), decode(s[E_RCPT])
            if s[E_CHANNEL] == b"local" and route == "-":
                route = "(local)"
            if when is not None and started is not None:
                duration = max(0.0, when - started)
    if info is not None:
        i = EVENT.search(split_stamp(info, year)[1])
        if i is not None and i[E_INFO] is not None and i[E_INFO].decode() == msg:
            sender = decode(i[E_SENDER]) or "<>"
    return Delivery(when, msg, recipient, m[E_STATUS].decode(), route, local, remote, tls,
                    auth, duration, reply, m[E_NUMBER].decode(), sender)
