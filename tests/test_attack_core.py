"""Attacks on the delivery core that break a promise of CONTRACT.md (issue 8's retest).

Each test runs ``qmail-remote`` as a real process against real servers on loopback
(hostile ones written with :mod:`tests.support.hostile`), and says in its docstring
which promise breaks and what the right behaviour is.
"""

from __future__ import annotations

import marshal
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import dnsservers_file, run_cli
from tests.support.delivery import REPO, detail, reports
from tests.support.dnsserver import DnsServer, Zone
from tests.support.hostile import RawServer, read_line
from tests.support.scripted import ScriptedSmtp

MakeHome = Callable[..., Path]
MESSAGE = b"Subject: attack\n\nhello\n"


def run_remote(home: Path, args: list[str], timeout: float,
               message: bytes = MESSAGE) -> subprocess.CompletedProcess[bytes] | None:
    """``qmail-remote ARGS`` as a real process; None when it was still running after
    ``timeout`` seconds (it is killed then)."""
    env = {k: v for k, v in os.environ.items() if k != "QMAIL_HOME"}
    env["QMAIL_HOME"] = str(home)
    try:
        return subprocess.run([sys.executable, "-I", "-m", "qremote.remote", *args],
                              input=message, capture_output=True, env=env,
                              timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return None


def route_home(make_home: MakeHome, remotes: str, options: str = "", **files: str) -> Path:
    """A home whose every delivery takes route r1 to ``remotes``."""
    line = f"r1;;{remotes};;" + (f";{options}" if options else "")
    return make_home(routes=line + "\n", routemap="*;*;r1\n", **files)


def message_report(proc: subprocess.CompletedProcess[bytes]) -> str:
    """The K/Z/D report of a finished qmail-remote, checked for the basic promises."""
    assert proc.returncode == 0 and proc.stderr == b""
    out = reports(proc.stdout)[-1]
    assert "internal error" not in out, out
    return out


# -- a reply that never ends ----------------------------------------------------------


def _trickle_one_line(conn: socket.socket, stopped: threading.Event,
                      lines: list[bytes]) -> None:
    conn.sendall(b"220 ")
    while not stopped.wait(0.25):
        conn.sendall(b"x")


def _slow_endless_multiline(conn: socket.socket, stopped: threading.Event,
                            lines: list[bytes]) -> None:
    while not stopped.wait(0.25):
        conn.sendall(b"220-still greeting\r\n")


@pytest.mark.parametrize("handler", [_trickle_one_line, _slow_endless_multiline],
                         ids=["one-line", "multi-line"])
def test_a_reply_that_never_ends_is_bounded(make_home: MakeHome, handler) -> None:
    """A server that sends its greeting one byte every 0.25 s and never finishes the
    line (or sends an endless multi-line reply, a line every 0.25 s) holds
    qmail-remote until MAX_REPLY (1 MiB) is reached: three days for this one-byte
    trickle, hours for these lines, years at one byte (or line) per
    ``timeoutremote``. Every read is within ``timeoutremote``, as
    CONTRACT section 4 says, but nothing bounds the reply: a hostile MX holds one of
    qmail-send's remote slots for days, and twenty of them (concurrencyremote) stop all
    outgoing mail. qmail has the same weakness; Postfix bounds a record with
    smtp_per_record_deadline. Right: a whole reply must arrive within a deadline
    (``timeoutremote`` for the reply, say), then the attempt fails like a timeout."""
    with RawServer(handler) as server:
        home = route_home(make_home, f"127.0.0.1:{server.port}", timeoutremote="1\n")
        started = time.monotonic()
        proc = run_remote(home, ["example.com", "a@b.org", "x@example.com"], timeout=15)
        assert proc is not None, ("qmail-remote was still reading the greeting after "
                                  "15 s with timeoutremote 1")
    assert time.monotonic() - started < 15
    assert message_report(proc).startswith("ZSorry, I wasn't able to establish")


# -- a control file that is a FIFO ------------------------------------------------------


@pytest.mark.parametrize(("name", "letter"), [("routes", "Z"), ("routes.cache", "K")])
def test_a_fifo_among_the_control_files_does_not_block(make_home: MakeHome, name: str,
                                                       letter: str) -> None:
    """A FIFO in place of a control file (a mistaken ``mkfifo``, a half-done config
    tool) blocks qmail-remote for ever in ``open()``: no report, ever, for every
    delivery, while qmail-send waits. qmail opens control files with O_NDELAY
    (open_read.c), so a FIFO reads as empty and never blocks. CONTRACT section 4: a
    bad control file is a ``Z`` with a clear text. Right: open with O_NONBLOCK and
    refuse what is not a regular file (a finding for ``routes``, hence ``Z``; an
    ignored cache for ``routes.cache``, hence the text files and ``K``)."""
    with ScriptedSmtp() as server:
        home = route_home(make_home, f"127.0.0.1:{server.port}")
        path = home / "control" / name
        path.unlink(missing_ok=True)
        os.mkfifo(path)
        proc = run_remote(home, ["example.com", "a@b.org", "x@example.com"], timeout=10)
        assert proc is not None, f"qmail-remote blocked for 10 s on control/{name}, a FIFO"
    report = message_report(proc)
    assert report[0] == letter, report


# -- the detail line forged by a reply --------------------------------------------------

FORGED = "route=evil local=6.6.6.6 remote=6.6.6.6:25 tls=TLSv1.3 auth=PLAIN"


@pytest.mark.parametrize("dot", [f"250 {FORGED}\r\n", f"250-ok\r\n{FORGED}\r\n"],
                         ids=["in-a-line", "a-line-of-its-own"])
def test_a_reply_cannot_forge_the_detail_line(make_home: MakeHome, dot: str) -> None:
    """CONTRACT section 4: "the console reads the detail line from there: only the
    last line counts, so a remote's reply text cannot forge it." But
    ``qremote.delivery.report.parse_detail`` (used by the console's log view and its counters)
    takes the FIRST ``route=... auth=...`` anywhere in the text, so a server whose
    reply to the dot holds a detail line makes the console show route ``evil``,
    TLSv1.3 and AUTH PLAIN for a plaintext delivery of route r1 (a second line of a
    multi-line reply is copied as a report line of its own, as qmail does). Right:
    parse only the last line of the report (the last ``/``-separated part of
    qmail-send's log line)."""
    from qconsole.logformat import delivery, logsafe
    from qremote.delivery.report import parse_detail

    with ScriptedSmtp(dot=dot.encode()) as server:
        home = route_home(make_home, f"127.0.0.1:{server.port}")
        proc = run_remote(home, ["example.com", "a@b.org", "x@example.com"], timeout=60)
    assert proc is not None
    report = message_report(proc)
    assert report.startswith("K")
    real = detail(report)
    assert real["route"] == "r1" and real["tls"] == "none"
    parsed = parse_detail(report[1:])
    assert parsed is not None and parsed.route == "r1" and parsed.tls == "none", parsed
    # A report that ends with a line break (the stock qmail-remote's) has no detail line
    assert parse_detail(report[1:] + "\n") is None
    # As qmail-rspawn hands it to qmail-send and qmail-send logs it (qsutil.c logsafe).
    line = f"@4000000065f1c2a31d2c3b40 delivery 7: success: {logsafe(report[1:])}"
    row = delivery(line.encode())
    assert (row.route, row.local, row.tls, row.auth) == ("r1", "127.0.0.1", "none",
                                                         "none"), row


# -- remote input that raises instead of failing the attempt ---------------------------


def test_an_absurd_size_extension_fails_over(make_home: MakeHome) -> None:
    """An EHLO reply ``250-SIZE 999...9`` with 4400 digits: ``int()`` refuses more than
    4300 digits (Python's int_max_str_digits), ValueError escapes the session, and
    the whole delivery ends in ``Zqmail-remote internal error`` with ``route=-``: the
    next attempt (a healthy backup) is never tried, so one broken primary holds every
    message until it bounces. CONTRACT section 3.4 (a failure before MAIL FROM moves
    on to the next attempt) and issue 8 ("never ends in internal error"). Right: a
    SIZE that is not a sane number is ignored (or fails only that attempt): either
    server takes the message."""
    ehlo = (b"250-scripted.test\r\n250-SIZE " + b"9" * 4400 + b"\r\n250 8BITMIME\r\n")
    with ScriptedSmtp(ehlo=ehlo) as broken, ScriptedSmtp() as backup:
        home = route_home(make_home, f"127.0.0.1:{broken.port}&127.0.0.1:{backup.port}")
        proc = run_remote(home, ["example.com", "a@b.org", "x@example.com"], timeout=60)
        assert proc is not None
        broken.wait_idle()
        backup.wait_idle()
        assert len(broken.bodies) + len(backup.bodies) == 1
    assert message_report(proc).startswith("K")


def _starttls_then_plain(conn: socket.socket, stopped: threading.Event,
                         lines: list[bytes]) -> None:
    """Offers STARTTLS, says 220 to it and closes (the handshake fails); in plaintext
    it takes the message."""
    conn.sendall(b"220 mx ESMTP\r\n")
    while line := read_line(conn, stopped, lines):
        verb = line[:4].upper()
        if verb == b"EHLO":
            conn.sendall(b"250-mx\r\n250 STARTTLS\r\n")
        elif verb == b"STAR":
            conn.sendall(b"220 go ahead\r\n")
            return
        elif verb == b"DATA":
            conn.sendall(b"354 go ahead\r\n")
            while (line := read_line(conn, stopped, lines)) not in (b".\r\n", b""):
                pass
            conn.sendall(b"250 queued\r\n")
        elif verb == b"QUIT":
            conn.sendall(b"221 bye\r\n")
            return
        else:
            conn.sendall(b"250 ok\r\n")


def test_an_mx_name_that_is_not_idna_encodable_is_not_an_internal_error(
        make_home: MakeHome) -> None:
    """An MX whose name has a 63-byte label holding a space (legal in DNS; its text
    form ``aaa...\\032bb`` is 66 characters) offers STARTTLS: ``wrap_socket``'s
    ``server_hostname.encode("idna")`` raises UnicodeError, which ``Client.starttls``
    does not catch, and the delivery is ``Zqmail-remote internal error`` with no
    other attempt and no plaintext fallback. Anyone can publish such an MX for a
    domain. CONTRACT section 3.4 / issue 8 (no internal error). Right: no SNI (or a
    failed attempt) for a name that cannot be encoded; under ``tls=may`` the
    plaintext connection follows and the message is delivered."""
    label = "a" * 60 + " bb"
    zone = Zone()
    zone.add("x.test", "MX", (10, label + ".x.test"))
    zone.add("a" * 60 + "\\032bb.x.test", "A", "127.0.0.177")  # dnslib's text form
    dns = DnsServer(zone).start()
    try:
        with RawServer(_starttls_then_plain, host="127.0.0.177", port=25) as server:
            home = make_home(dnsservers=dnsservers_file(dns), timeoutremote="10\n")
            proc = run_remote(home, ["x.test", "a@b.org", "u@x.test"], timeout=60)
            assert proc is not None
            seen = list(server.lines)
    finally:
        dns.stop()
    assert b"STARTTLS\r\n" in seen  # the attack was reached
    assert message_report(proc).startswith("K")


# -- D for what an operator can fix -----------------------------------------------------


def _tls_required(alert: bool) -> Callable[[socket.socket, threading.Event, list[bytes]],
                                           None]:
    """A server that requires TLS (``alert``: its handshake then fails) or AUTH."""
    refusal = (b"530 5.7.0 Must issue a STARTTLS command first\r\n" if alert
               else b"530 5.7.0 Authentication required\r\n")

    def handler(conn: socket.socket, stopped: threading.Event,
                lines: list[bytes]) -> None:
        conn.sendall(b"220 relay ESMTP\r\n")
        while line := read_line(conn, stopped, lines):
            verb = line[:4].upper()
            if verb == b"EHLO":
                conn.sendall(b"250-relay\r\n250 STARTTLS\r\n" if alert else b"250 relay\r\n")
            elif verb == b"STAR":
                conn.sendall(b"220 go ahead\r\n")
                conn.sendall(b"\x15\x03\x03\x00\x02\x02\x28")  # alert: handshake_failure
                return
            elif verb in (b"MAIL", b"RCPT", b"DATA"):
                conn.sendall(refusal)
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")

    return handler


@pytest.mark.parametrize("alert", [True, False], ids=["tls-fallback", "no-auth"])
def test_530_to_mail_from_is_not_a_bounce(make_home: MakeHome, alert: bool) -> None:
    """A relay that requires STARTTLS (Postfix smtpd_tls_security_level=encrypt); our
    handshake with it fails (an OpenSSL upgrade that raises the security level is
    enough), ``tls=may`` reconnects in plaintext as promised, and the relay answers
    MAIL FROM with ``530 5.7.0 Must issue a STARTTLS command first``: today ``D``, so
    every message bounces to its sender for a fault of our TLS that the operator must
    fix (likewise ``530 5.7.0 Authentication required``, RFC 4954: the route lacks
    credentials). CONTRACT section 4: "Never D for anything an operator can fix".
    Right: a 530 to MAIL FROM (RFC 3207 / RFC 4954: TLS or AUTH needed, both ours
    to fix) is temporary, or fails the attempt so the next one follows; ``Z`` at the
    end. (qmail bounces here, having neither TLS nor AUTH: a difference for README.)"""
    with RawServer(_tls_required(alert)) as server:
        home = route_home(make_home, f"127.0.0.1:{server.port}", "tls=may",
                          timeoutremote="10\n")
        proc = run_remote(home, ["example.com", "a@b.org", "x@example.com"], timeout=60)
        assert proc is not None
        seen = list(server.lines)
    assert any(line.startswith(b"MAIL FROM:") for line in seen)
    report = message_report(proc)
    assert report[0] == "Z", report


# -- an MX that is this host, written as an IPv4-mapped IPv6 address -----------------


def test_an_ipv4_mapped_mx_address_of_this_host_is_me(make_home: MakeHome) -> None:
    """CONTRACT section 3.6: "An MX that is this host is never a target". An MX whose
    only address is the AAAA ``::ffff:127.0.0.1`` is this host (a dual-stack socket
    reaches 127.0.0.1 through it), but ``ipme`` compares exact strings, so qremote
    connects to port 25 of this very host: where this host's SMTP server takes mail
    for the domain (a backup MX), the message comes back to qremote and loops until
    the hop limit bounces it. Same for
    ``::ffff:0.0.0.0``. Right: compare IPv4-mapped IPv6 addresses by their IPv4 form
    (``ipaddress.IPv6Address(a).ipv4_mapped``): best-preference MX is me, ``D``
    with qmail's #5.4.6 text, no connection."""
    zone = Zone()
    zone.add("x.test", "MX", (10, "mx.x.test"))
    zone.add("mx.x.test", "AAAA", "::ffff:7f00:1")  # ::ffff:127.0.0.1
    dns = DnsServer(zone).start()
    try:
        home = make_home(dnsservers=dnsservers_file(dns))
        proc = run_remote(home, ["x.test", "a@b.org", "u@x.test"], timeout=60)
    finally:
        dns.stop()
    assert proc is not None
    report = message_report(proc)
    assert report.startswith("D") and "(#5.4.6)" in report, report


# -- a failover route whose mx group does not resolve ----------------------------------


def test_a_relay_first_route_is_tried_when_the_domain_does_not_resolve(
        make_home: MakeHome) -> None:
    """Route ``r1;;RELAY&mx``: CONTRACT section 3.1/3.3 says the attempts follow the
    written order, the relay first. For a domain that our DNS calls NXDOMAIN (an
    internal domain behind split DNS, which the relay knows), the planner expands
    ``mx`` up front, and its permanent error throws away the relay's attempt too: a
    ``D (#5.1.2)`` bounce with no connection, although the route's first choice would
    have taken the message. (Contract section 6 lists NXDOMAIN among the planner's
    errors, but says nothing of a route where ``mx`` is only one of the groups: the
    lead should decide.) Right: a permanent DNS failure of an ``mx`` group drops that
    group; the delivery is ``D`` only when no attempt is left."""
    zone = Zone()
    zone.add("other.test", "A", "127.0.0.9")  # corp.internal: NXDOMAIN
    dns = DnsServer(zone).start()
    try:
        with ScriptedSmtp() as relay:
            home = route_home(make_home, f"127.0.0.1:{relay.port}&mx",
                              dnsservers=dnsservers_file(dns))
            proc = run_remote(home, ["corp.internal", "a@b.org", "x@corp.internal"],
                              timeout=60)
            assert proc is not None
            relay.wait_idle()
            delivered = len(relay.bodies)
    finally:
        dns.stop()
    report = message_report(proc)
    assert report.startswith("K") and delivered == 1, report


# -- a cache with a valid checksum and nonsense inside ---------------------------------


def test_a_cache_with_a_valid_checksum_but_nonsense_content_is_not_trusted(
        make_home: MakeHome) -> None:
    """README: "a truncated or damaged cache ... is ignored"; cache.py: "a cache is
    never trusted: any doubt means the text files". A routes.cache whose CRC-32 and
    length are right but whose route has a port that is a string (or 70000, or a
    local IP that is no IP) is loaded as it is, and the delivery ends in
    ``Zqmail-remote internal error: TypeError`` (a checksum proves the bytes were
    not damaged, not that their writer was right: a future writer with the same
    VERSION, a hand-made file). Right: ``read_cache`` checks the types and ranges it
    loads (or rebuilds each Route through the parsers) and falls back to the text
    files, which deliver."""
    from qremote.control.cache import CACHE_NAME, MAGIC, _seal

    with ScriptedSmtp() as server:
        home = route_home(make_home, f"127.0.0.1:{server.port}")
        assert run_cli("check", home=home).returncode == 0
        cache = home / "control" / CACHE_NAME
        data = cache.read_bytes()
        version, recorded, routes, first, helo = marshal.loads(data[len(MAGIC) + 12:])
        name, local, local_mode, remotes, *rest = routes[0]
        host, port, is_ip = remotes[0]
        bad = [(name, local, local_mode, ((host, str(port), is_ip),), *rest)]
        payload = marshal.dumps((version, recorded, bad, first, helo))
        cache.write_bytes(MAGIC + _seal(payload) + payload)
        proc = run_remote(home, ["example.com", "a@b.org", "x@example.com"], timeout=60)
    assert proc is not None
    assert message_report(proc).startswith("K")


def test_a_fifo_as_the_failover_memory_does_not_block(make_home: MakeHome) -> None:
    """The same for queue/lock/qremote-tcpto: read and updated without blocking."""
    with ScriptedSmtp() as server:
        home = route_home(make_home, f"127.0.0.1:{server.port}")
        (home / "queue" / "lock").mkdir(parents=True)
        os.mkfifo(home / "queue" / "lock" / "qremote-tcpto")
        proc = run_remote(home, ["example.com", "a@b.org", "x@example.com"], timeout=10)
        assert proc is not None, "qmail-remote blocked on a FIFO failover memory"
    assert message_report(proc).startswith("K")
