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

from qconsole.safe_text import printable
from qremote.delivery.report import Detail, parse_detail

TAI64_UNIX = (1 << 62) + 10  # tai64nlocal's epoch: TAI64 label of 1970-01-01 UTC
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
# A syslog or ISO stamp, then (syslog's own fields) the host and the program: groups
# 6 and 7 of _SYSLOG, 8 and 9 of _ISO (logfast.c's foreign_at reads the same).
_SYSLOG = re.compile(rb"([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.\d+)? "
                     rb"(\S+) ([^:\s]+): ")
_ISO = re.compile(rb"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.\d+)?"
                  rb"(Z|[+-]\d\d:?\d\d)? (?:(\S+) ([^:\s]+): )?")
_EPOCH = re.compile(rb"(\d{9,11}\.\d{6}) ")
# journalctl -o short-unix: seconds since the epoch, then syslog's host and program
# (groups 1 and 2).
_UNIX = re.compile(rb"\d{9,11}\.\d+ (\S+) ([^:\s]+): ")
# socklog's lines in a multilog directory: multilog's stamp, the facility and priority,
# then the message as syslog(3) sent it, with its stamp and program but no host.
_SOCKLOG = re.compile(rb"@[^\n]{24} [a-z0-9]+\.[a-z]+: [A-Z][a-z]{2} +\d{1,2} "
                      rb"\d\d:\d\d:\d\d(?:\.\d+)? ([^:\s]+): ")
# qmail-send's lines, one grammar for the row builder, the indexer and the search
# (group numbers are constants: this runs once per log line).
EVENT = re.compile(
    rb"(starting )?delivery (\d+): (?:msg (\d+) to (local|remote) (.*)"
    rb"|(success|deferral|failure): ?(.*))"
    rb"|info msg (\d+): bytes \d+ from <(.*?)> "
    rb"|bounce msg (\d+)|triple bounce: discarding \S*?(\d+)\s*$|(status: .*)"
    rb"|new msg |end msg ")
(E_STARTING, E_NUMBER, E_MSG, E_CHANNEL, E_RCPT, E_STATUS, E_TEXT, E_INFO, E_SENDER,
 E_BOUNCE, E_TRIPLE, E_CONCURRENCY) = range(1, 13)
# What qmail-send appends to a Z report when the message has been queued too long
# (it turns the deferral into a failure); logged right after the detail line.
EXPIRED = "I'm not going to try again; this message has been in the queue too long."

# Each of EVENT's alternatives holds one of these: a line holding none has no event
# (most lines of other programs: a search of the whole line is 20 times dearer).
EVENT_WORDS = (b"delivery ", b"msg ", b"bounce", b"status: ")
# How each of EVENT's alternatives begins.
EVENT_HEADS = (b"starting delivery ", b"delivery ", b"info msg ", b"bounce msg ",
               b"triple bounce: discarding ", b"status: ", b"new msg ", b"end msg ")


def event(line: bytes) -> re.Match[bytes] | None:
    """qmail-send's event in a log line (right after a multilog stamp: the common,
    fast case), or None."""
    if line[:1] == b"@":
        m = EVENT.match(line, 26)
        if m is not None:
            return m
    m = worded_event(line)  # (an event at the line's start has no stamp)
    return None if m is None or (m.start() and foreign(line)) else m


def worded_event(line: bytes) -> re.Match[bytes] | None:
    """EVENT's first match in the line, looked for only where the line holds one of
    EVENT_WORDS (whoever's line it is: :func:`event` reads none in another program's)."""
    for word in EVENT_WORDS:
        if word in line:
            return EVENT.search(line)
    return None


def triple_bounces(msg: bytes) -> re.Pattern[bytes]:
    """What finds, in a block of whole lines, the lines that :func:`event` may read as a
    triple bounce of message ``msg`` (digits): EVENT's words, then ``msg`` as the last
    digits of the line (``bounce/12`` is message 12, not 2), anywhere in the line."""
    return re.compile(rb"triple bounce: discarding (?:\S*?[^\d\s])?" + re.escape(msg)
                      + rb"[ \t\r\f\v]*$", re.MULTILINE)


def message_events(msg: bytes) -> re.Pattern[bytes]:
    """What finds, in a block of lines, where :func:`event` may read message ``msg``
    (digits) as the message of a start line, an info line or a ``bounce msg`` line:
    ``msg`` followed and preceded as EVENT has it there (not another number that
    begins with those digits, nor the number in other text)."""
    m = re.escape(msg)
    return re.compile(rb"msg " + m + rb"(?:(?<=: msg " + m + rb") to (?:local|remote) "
                      rb"|(?<=info msg " + m + rb"): bytes \d+ from <"
                      rb"|(?<=bounce msg " + m + rb")(?!\d))")


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


# qmail's programs that serve remote clients: what they log holds words the clients
# chose (a HELO, an address, a scanner's report), so they are other programs here.
_SERVERS = re.compile(rb"smtpd|qmtpd|qmqpd|pop3d|popup|scanner")


def _qmails(program: bytes) -> bool:
    """The syslog program is qmail's (qmail-send's, through splogger or not)."""
    return (b"qmail" in program or b"splogger" in program) and _SERVERS.search(
        program) is None


def _syslog_fields(line: bytes) -> tuple[bytes, bytes] | None:
    """(host, program) of a line that has syslog's fields after its stamp (a syslog,
    ISO or epoch stamp; socklog's line has no host: b""), else None."""
    if line[:1] == b"@":
        m = _SOCKLOG.match(line)
        return None if m is None else (b"", m[1])
    m = _SYSLOG.match(line)
    host = 6
    if m is None:
        m, host = _ISO.match(line), 8
        if m is None:
            m, host = _UNIX.match(line), 1
        if m is None or m[host] is None:
            return None
    return m[host], m[host + 1]


def syslog_program(line: bytes) -> bytes | None:
    """The program of a line with syslog's fields (``qmail``, ``sshd[77]``…), else
    None."""
    fields = _syslog_fields(line)
    return None if fields is None else fields[1]


def foreign(line: bytes) -> bool:
    """A syslog line from a program other than qmail (its program's name holds neither
    ``qmail`` nor ``splogger``, or it is one of qmail's servers, ``qmail-smtpd``…): not
    shown at all, and no event of qmail-send's is read in it (whoever logs through that
    program may choose its words).

    The stamps: syslog's (with a fraction of a second or not), ISO 8601's, the seconds
    since the epoch of ``journalctl -o short-unix``; and socklog's lines in a multilog
    directory (``@4000… auth.info: Nov 24 10:00:02 sshd[77]: …``). A line whose host and
    program are the first two words of an event is qmail-send's, stamped without host
    and program (``… delivery 7: success:`` reads as host ``delivery``, program ``7``;
    ``triple bounce:`` as host ``triple``, program ``bounce``), but a host's name alone
    says nothing (a mail server may be named ``delivery``). A line beginning with a
    blank is another program's too: a syslog message's continuation line, as journalctl
    prints it (qmail-send's lines never begin so). logfast.c's ``qc_foreign`` reads the
    same (a property test holds the two together)."""
    if line[:1] in (b" ", b"\t"):
        return True
    fields = _syslog_fields(line)
    if fields is None or _qmails(fields[1]):
        return False
    host, program = fields
    return not ((host == b"delivery" and program.isdigit())
                or (host == b"triple" and program == b"bounce"))


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


# qmail-send writes a line break as "/", but a reply may hold a "/" of its own (a URL):
# a "/" ends a line only before the end, an upper-case letter or a digit (qmail's
# phrases and IPs start so), "[" (an IPv6 literal) or the detail line.
_BREAK = re.compile(r"/(?=$|[A-Z0-9\[]|route=)")
_EXPIRED_LOGGED = logsafe(EXPIRED + "\n")


def unsafe(text: str) -> list[str]:
    """The report's lines back from the log (``_`` read as a space)."""
    return [part.replace("_", " ") for part in _BREAK.split(text) if part]


def detail_of(text: str) -> tuple[Detail | None, str, bool]:
    """(the detail line, the text before it, whether qmail-send gave up on the message)
    of a logged report.

    The detail line counts only as the report's last line (before qmail-send's own
    "I'm not going to try again" sentence), so a remote's reply cannot forge it."""
    expired = text.endswith(_EXPIRED_LOGGED)
    if expired:
        text = text[:-len(_EXPIRED_LOGGED)]
    k = text.rfind("route=")
    if k < 0 or (k and text[k - 1] != "/") or "/" in text[k:]:
        return None, text, expired
    detail = parse_detail(text[k:])
    return detail, (text[:k] if detail is not None else text), expired


def split_report(text: str) -> tuple[list[str], Detail | None, bool]:
    """(the report's lines without the detail line, the detail line, whether
    qmail-send gave up on the message) from a logged report (see :func:`detail_of`)."""
    detail, rest, expired = detail_of(text)
    lines = unsafe(rest)
    if expired:
        lines.append(EXPIRED)
    return lines, detail, expired


class Delivery(NamedTuple):
    """One delivery (or a bounce, or a line that is neither) as a row of the logs view.

    Every text field is already safe to show (see :mod:`qconsole.safe_text`)."""

    time: float | None
    msg: str
    recipient: str
    status: str  # success, deferral, failure; bounce; "raw" for a line shown as is
    route: str  # "-": qremote applied no route; "?": no detail line; "(local)"
    local: str
    remote: str
    tls: str
    auth: str
    duration: float | None
    reply: str
    number: str = ""
    sender: str = ""
    channel: str = ""  # "remote" or "local" (from the starting line), "" unknown
    lines: tuple[str, ...] = ()  # the report, line by line, without the detail line
    detail: bool = False  # the report ended with qremote's detail line
    expired: bool = False  # qmail-send gave up: queued too long

    def text(self) -> str:
        """Every field in one string."""
        return " ".join((local_time(self.time), self.msg, self.sender, self.recipient,
                         self.status, self.route, self.local, self.remote, self.tls,
                         self.auth, self.reply))


def decode(raw: bytes) -> str:
    """Bytes of a log line as safe text: what is not UTF-8, control characters and
    escape sequences are shown escaped (``\\x1b``), never fatal, never interpreted."""
    return printable(raw.decode("utf-8", "backslashreplace").rstrip("\r\n"))


def raw_row(line: bytes, year: int | None = None) -> Delivery:
    """A line that is not a delivery, shown as read."""
    when, _ = split_stamp(line, year)
    return Delivery(when, "", "", "raw", "", "", "", "", "", None, decode(line))


def _sender(info: bytes | None, msg: str, year: int | None) -> str:
    """The sender from an ``info msg`` line of message ``msg`` ("" when it is not)."""
    if info is None:
        return ""
    i = event(info)
    if i is None or i[E_INFO] is None or i[E_INFO].decode() != msg:
        return ""
    return decode(i[E_SENDER]) or "<>"


def bounce_row(line: bytes, m: re.Match[bytes], when: float | None,
               info: bytes | None, year: int | None) -> Delivery:
    """A ``bounce msg`` or ``triple bounce`` line as a row: the failure notice qmail-send
    sent to the sender of a message (or discarded)."""
    msg = (m[E_BOUNCE] or m[E_TRIPLE]).decode()
    sender = _sender(info, msg, year)
    if m[E_BOUNCE] is not None:
        # to the message's sender; a bounce's own failure (sender <>) to the
        # postmaster; no info line in the log: the sender is not known here
        to = {"<>": "the postmaster", "": "the sender (not in this log)"}.get(sender, sender)
        reply = f"qmail-send sent a failure notice (bounce) to {to}"
    else:
        reply = "triple bounce: a bounce of a bounce failed; qmail-send discarded it"
    return Delivery(when, msg, sender, "bounce", "", "", "", "", "", None, reply,
                    sender=sender)


def delivery(result: bytes, start: bytes | None = None, info: bytes | None = None,
             year: int | None = None) -> Delivery:
    """Join a ``delivery N:`` line with its ``starting delivery`` and ``info msg``
    lines (each optional) into one row; a ``bounce msg`` line makes a bounce row; a
    line that is none of these is shown raw."""
    when, _ = split_stamp(result, year)
    m = event(result)  # (as the filter reads it)
    if m is not None and (m[E_BOUNCE] or m[E_TRIPLE]):
        return bounce_row(result, m, when, info, year)
    if m is None or m[E_STATUS] is None:
        return raw_row(result, year)
    lines, detail, expired = split_report(decode(m[E_TEXT]))
    route = local = remote = tls = auth = "-"
    if detail is not None:
        route, local, remote, tls, auth = detail
    else:
        route = "?"
    msg = recipient = channel = ""
    duration = None
    if start is not None:
        started, _ = split_stamp(start, year)
        s = event(start)
        if s is not None and s[E_MSG] is not None and s[E_NUMBER] == m[E_NUMBER]:
            msg, recipient = s[E_MSG].decode(), decode(s[E_RCPT])
            channel = s[E_CHANNEL].decode()
            if channel == "local" and detail is None:
                route = "(local)"
            if when is not None and started is not None:
                duration = max(0.0, when - started)
    return Delivery(when, msg, recipient, m[E_STATUS].decode(), route, local, remote, tls,
                    auth, duration, " · ".join(lines), m[E_NUMBER].decode(),
                    _sender(info, msg, year) if msg else "", channel, tuple(lines),
                    detail is not None, expired)
