"""One attempt's SMTP dialogue, and what each reply means for the delivery.

Before ``MAIL FROM`` every failure raises :class:`~qremote.smtp.AttemptError` (the
next attempt follows). From ``MAIL FROM`` on, the server's replies decide and the
result is an :class:`~qremote.report.Outcome` with qmail's phrases.
"""

from __future__ import annotations

import base64
from typing import NamedTuple

from qremote import report
from qremote.report import Detail, Outcome
from qremote.routes import Route, TlsPolicy
from qremote.smtp import AttemptError, Client, ConnectionDied, Reply, parse_ehlo, tls_context

# Preference order; PLAIN and LOGIN send the password itself, so only inside TLS.
MECHANISMS = ("CRAM-MD5", "PLAIN", "LOGIN")
CLEAR_OK = {"CRAM-MD5"}


class Job(NamedTuple):
    """The message and envelope of one delivery, ready to send."""

    sender: str
    recipients: list[str]
    body: bytes  # already CRLF and dot-stuffed
    eightbit: bool
    utf8: bool
    route: Route | None
    tls: TlsPolicy
    helo: str


def _hello(client: Client, helo: str) -> dict[str, str]:
    reply = client.command(f"EHLO {helo}")
    if reply.ok:
        return parse_ehlo(reply)
    reply = client.command(f"HELO {helo}")
    if not reply.ok:
        raise AttemptError(f"my name was rejected: {reply.text}")
    return {}


def _b64(data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def _auth_one(client: Client, mech: str, user: str, password: str) -> Reply:
    if mech == "PLAIN":
        return client.command("AUTH PLAIN " + _b64("\0" + user + "\0" + password))
    if mech == "LOGIN":
        reply = client.command("AUTH LOGIN")
        if reply.code != 334:
            return reply
        reply = client.command(_b64(user))
        if reply.code != 334:
            return reply
        return client.command(_b64(password))
    import hmac

    reply = client.command("AUTH CRAM-MD5")
    if reply.code != 334:
        return reply
    try:
        challenge = base64.b64decode(reply.text[4:].strip(), validate=True)
    except ValueError:
        client.command("*")
        return Reply(0, f"bad CRAM-MD5 challenge: {reply.text}")
    digest = hmac.new(password.encode("utf-8"), challenge, "md5").hexdigest()
    return client.command(_b64(f"{user} {digest}"))


def authenticate(client: Client, ehlo: dict[str, str], route: Route) -> str:
    """AUTH with the route's credentials; returns the mechanism, or "none" when the
    server offers no AUTH. Raises AttemptError when no offered mechanism succeeds."""
    offered = ehlo.get("AUTH", "").upper().split()
    if not offered:
        return "none"
    allowed = [m for m in MECHANISMS if m in offered
               and (client.tls_version or m in CLEAR_OK)]
    if not allowed:
        raise AttemptError(f"credentials travel only inside TLS (or with CRAM-MD5); "
                           f"the server offers AUTH {' '.join(offered)} without TLS")
    failures = []
    for mech in allowed:
        reply = _auth_one(client, mech, route.user, route.password)
        if reply.code == 235:
            return mech
        failures.append(f"AUTH {mech}: {reply.text}")
    raise AttemptError("authentication failed: " + "; ".join(failures))


def negotiate(client: Client, job: Job, server_name: str | None, plain_only: bool,
              implicit_tls: bool) -> tuple[dict[str, str], str]:
    """Greeting, EHLO, STARTTLS per policy, AUTH. Returns (EHLO keywords, mechanism)."""
    if implicit_tls:
        client.starttls(tls_context(job.tls == "verify"), server_name)
    greeting = client.reply()
    if greeting.code != 220:
        raise AttemptError(f"greeting failed: {greeting.text}")
    ehlo = _hello(client, job.helo)
    if not client.tls_version and job.tls != "none" and not plain_only:
        if "STARTTLS" in ehlo:
            reply = client.command("STARTTLS")
            if reply.code == 220:
                client.starttls(tls_context(job.tls == "verify"), server_name)
                ehlo = _hello(client, job.helo)
            elif job.tls in ("encrypt", "verify"):
                raise AttemptError(f"STARTTLS was refused: {reply.text}")
        elif job.tls in ("encrypt", "verify"):
            raise AttemptError("TLS is required (tls=" + job.tls + ") but the server "
                               "does not offer STARTTLS")
    mech = "none"
    if job.route is not None and job.route.auth:
        mech = authenticate(client, ehlo, job.route)
    return ehlo, mech


def transaction(client: Client, job: Job, ip: str, ehlo: dict[str, str],
                detail: Detail) -> Outcome:
    """MAIL, RCPT, DATA and the message: the server's replies decide the outcome."""
    out = Outcome(detail=detail)
    params = ""
    size = ehlo.get("SIZE", "")
    if size.isdigit() and int(size) > 0 and len(job.body) > int(size):
        out.letter, out.text = "D", report.phrase(
            f"Connected to {ip} but the message is {len(job.body)} bytes and the server "
            f"accepts at most {size}. (#5.3.4)")
        return out
    if "SIZE" in ehlo:
        params += f" SIZE={len(job.body)}"
    if job.eightbit and "8BITMIME" in ehlo:
        params += " BODY=8BITMIME"
    if job.utf8:
        if "SMTPUTF8" not in ehlo:
            raise AttemptError("an address needs SMTPUTF8, which the server does not offer")
        params += " SMTPUTF8"
    try:
        reply = client.command(f"MAIL FROM:<{job.sender}>{params}")
    except ConnectionDied:
        out.letter, out.text = "Z", f"Connected to {ip} but connection died. (#4.4.2)\n"
        return out
    if not reply.ok:
        out.letter = "D" if reply.permanent else "Z"
        out.text = report.phrase(f"Connected to {ip} but sender was rejected.", reply.text)
        return out
    try:
        accepted = 0
        for rcpt in job.recipients:
            reply = client.command(f"RCPT TO:<{rcpt}>")
            letter = "r" if reply.ok else ("h" if reply.permanent else "s")
            accepted += letter == "r"
            out.recipients.append(report.recipient(letter, ip, reply.text))
        if not accepted:
            out.letter, out.text = "D", report.phrase(f"Giving up on {ip}.")
            return out
        reply = client.command("DATA")
        if reply.code != 354:
            out.letter = "D" if reply.permanent else "Z"
            out.text = report.phrase(f"{ip} failed on DATA command.", reply.text)
            return out
        client.send(job.body + b".\r\n")
    except ConnectionDied:
        out.letter, out.text = "Z", f"Connected to {ip} but connection died. (#4.4.2)\n"
        return out
    try:
        reply = client.reply()
    except ConnectionDied:
        out.letter = "Z"
        out.text = f"Connected to {ip} but connection died. Possible duplicate! (#4.4.2)\n"
        return out
    if reply.ok:
        out.letter, out.text = "K", report.phrase(f"{ip} accepted message.", reply.text)
    else:
        out.letter = "D" if reply.permanent else "Z"
        out.text = report.phrase(f"{ip} failed after I sent the message.", reply.text)
    return out
