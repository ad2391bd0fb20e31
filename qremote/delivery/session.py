"""One attempt's SMTP dialogue, and what each reply means for the delivery.

Before ``MAIL FROM`` every failure raises :class:`~qremote.delivery.smtp.AttemptError` (the
next attempt follows). From ``MAIL FROM`` on, the server's replies decide and the
result is an :class:`~qremote.delivery.report.Outcome` with qmail's phrases. Where the server
offers PIPELINING, ``MAIL``, every ``RCPT`` and ``DATA`` go in one write and their
replies are read in order: the same reports as one command at a time, fewer round
trips.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, NamedTuple

from qremote.control.routes import Route, TlsPolicy
from qremote.delivery import report
from qremote.delivery.envelope import wire
from qremote.delivery.message import Message
from qremote.delivery.report import Detail, Outcome
from qremote.delivery.smtp import (
    AttemptError,
    Client,
    ConnectionDied,
    Reply,
    parse_ehlo,
    tls_context,
)

# Preference order; PLAIN and LOGIN send the password itself, so only inside TLS.
MECHANISMS = ("CRAM-MD5", "PLAIN", "LOGIN")
CLEAR_OK = {"CRAM-MD5"}
# Replies that refuse the mechanism itself: the next offered one may be tried. Any
# other failure (535 above all: bad credentials) ends AUTH on that connection, since
# repeated failures get a relay's address banned (fail2ban).
MECHANISM_REFUSED = {504, 534, 538}


class Job(NamedTuple):
    """The message and envelope of one delivery, ready to send."""

    sender: str
    recipients: list[str]  # only those that can be sent
    message: Message
    utf8: bool
    route: Route | None
    tls: TlsPolicy
    helo: str


def hello(client: Client, helo: str) -> dict[str, str]:
    """EHLO, or HELO after a 5xx to EHLO; any other refusal ends the attempt."""
    reply = client.command(f"EHLO {helo}")
    if reply.ok:
        return parse_ehlo(reply)
    if reply.permanent:  # a server that knows only HELO
        reply = client.command(f"HELO {helo}")
        if reply.ok:
            return {}
    raise AttemptError(f"my name was rejected: {reply.text}")


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
        reply = client.command("*")  # cancel the exchange
        return Reply(reply.code, f"bad CRAM-MD5 challenge; cancelled: {reply.text}")
    digest = hmac.new(password.encode("utf-8"), challenge, "md5").hexdigest()
    return client.command(_b64(f"{user} {digest}"))


def offered_mechanisms(ehlo: dict[str, str]) -> list[str]:
    """The AUTH mechanisms of an EHLO reply, upper case."""
    return ehlo.get("AUTH", "").upper().split()


def _unsaid(text: str, route: Route) -> str:
    """A server's reply with the route's user name and password masked: a relay may
    echo them, and reports reach logs and bounces."""
    for secret in (route.password, route.user):
        if secret:
            text = text.replace(secret, "***")
    return text


def authenticate(client: Client, ehlo: dict[str, str], route: Route) -> str:
    """AUTH with the route's credentials; returns the mechanism.

    A route with credentials never goes on unauthenticated: no usable mechanism, or
    none that succeeds, raises AttemptError (the next attempt follows)."""
    offered = offered_mechanisms(ehlo)
    if not offered:
        raise AttemptError("the route has credentials but the server offers no AUTH; "
                           "mail is not sent unauthenticated")
    allowed = [m for m in MECHANISMS if m in offered
               and (client.tls_version or m in CLEAR_OK)]
    if not allowed:
        usable = [m for m in MECHANISMS if m in offered]
        if not usable:
            raise AttemptError(f"the server offers AUTH {' '.join(offered)}, none of "
                               f"which qremote speaks ({', '.join(MECHANISMS)})")
        raise AttemptError(f"credentials travel only inside TLS (or with CRAM-MD5); "
                           f"the server offers AUTH {' '.join(offered)} without TLS")
    failures = []
    for mech in allowed:
        reply = _auth_one(client, mech, route.user, route.password)
        if reply.code == 235:
            return mech
        failures.append(f"AUTH {mech}: {_unsaid(reply.text, route)}")
        if reply.code not in MECHANISM_REFUSED:
            break
    raise AttemptError("authentication failed: " + "; ".join(failures),
                       tls=client.tls_version or "none")


def negotiate(client: Client, job: Job, server_name: str | None, plain_only: bool,
              implicit_tls: bool, contexts: dict[bool, Any] | None = None,
              ) -> tuple[dict[str, str], str]:
    """Greeting, EHLO, STARTTLS per policy, AUTH. Returns (EHLO keywords, mechanism).

    Raises AttemptError, or ConnectionDied (the caller makes it an AttemptError).
    ``contexts``: TLS contexts kept by a long-lived process."""
    if implicit_tls:
        client.starttls(tls_context(job.tls == "verify", contexts), server_name)
    greeting = client.reply()
    if greeting.code != 220:
        raise AttemptError(f"greeting failed: {greeting.text}")
    ehlo = hello(client, job.helo)
    if not client.tls_version and job.tls != "none" and not plain_only:
        if "STARTTLS" in ehlo:
            reply = client.command("STARTTLS")
            if reply.code == 220:
                client.starttls(tls_context(job.tls == "verify", contexts), server_name)
                try:
                    ehlo = hello(client, job.helo)
                except ConnectionDied as exc:
                    if exc.tls_unconfirmed:  # TLS 1.3: the server refused us only now
                        raise AttemptError(f"TLS handshake failed: {exc}",
                                           tls_fallback=True) from None
                    raise
            elif job.tls in ("encrypt", "verify"):
                raise AttemptError(f"STARTTLS was refused: {reply.text}")
        elif job.tls in ("encrypt", "verify"):
            raise AttemptError("TLS is required (tls=" + job.tls + ") but the server "
                               "does not offer STARTTLS")
    mech = "none"
    if job.route is not None and job.route.auth:
        mech = authenticate(client, ehlo, job.route)
    return ehlo, mech


def _mail_params(job: Job, ehlo: dict[str, str]) -> bytes:
    params = ""
    if "SIZE" in ehlo:
        params += f" SIZE={job.message.size}"
    if job.message.eightbit and "8BITMIME" in ehlo:
        params += " BODY=8BITMIME"
    if job.utf8:
        params += " SMTPUTF8"
    return params.encode("ascii")


def _send_body(client: Client, message: Message, ip: str, out: Outcome) -> bool:
    """The DATA stream and the final dot; False (``out`` says why) when it died."""
    pending = b""
    try:
        for chunk in message.chunks():
            if pending:
                client.send(pending)
            pending = chunk
    except ConnectionDied:
        out.letter, out.text = "Z", f"Connected to {ip} but connection died. (#4.4.2)\n"
        return False
    try:
        client.send(pending + b".\r\n")  # the last chunk carries the dot
    except ConnectionDied:
        out.letter = "Z"
        out.text = f"Connected to {ip} but connection died. Possible duplicate! (#4.4.2)\n"
        return False
    return True


def _settle(client: Client, count: int, data: bool) -> None:
    """Read ``count`` pipelined replies that no longer change the outcome. A DATA
    (``data``) that a broken server accepted anyway is ended with an empty message,
    never the real one. A failure here only means the connection is not reusable."""
    try:
        last = None
        for _ in range(count):
            last = client.reply()
        if data and last is not None and last.code == 354:
            client.command(b".")
    except ConnectionDied:
        pass


class StaleConnection(AttemptError):
    """A cached connection did not survive until its reuse (its RSET got no good
    reply): nothing of this delivery reached the server; another connection follows."""


def _reset(client: Client, pipelined: bytes) -> bool:
    """RSET before reusing a connection, with the next commands when pipelining.

    Raises StaleConnection when nothing else can have been taken (no reply, a 421, or
    a refusal with nothing pipelined behind it); returns True when RSET was refused
    but the pipelined commands went anyway: their replies must be read."""
    try:
        client.send(b"RSET\r\n" + pipelined)
        reply = client.reply()
    except ConnectionDied as exc:
        raise StaleConnection(f"cached connection lost: {exc}") from None
    if reply.ok:
        return False
    if reply.code == 421 or not pipelined:
        client.alive = False
        raise StaleConnection(f"cached connection refused RSET: {reply.text}")
    return True


def _final(out: Outcome, reply: Reply, ip: str) -> Outcome:
    """The reply to the final dot (or to ``BDAT ... LAST``) decides."""
    if reply.ok:
        out.letter, out.text = "K", report.phrase(f"{ip} accepted message.", reply.text)
    else:
        out.letter = "D" if reply.permanent else "Z"
        out.text = report.phrase(f"{ip} failed after I sent the message.", reply.text)
    return out


def _died(out: Outcome, ip: str, critical: bool) -> Outcome:
    out.letter = "Z"
    out.text = (f"Connected to {ip} but connection died. "
                f"{'Possible duplicate! ' if critical else ''}(#4.4.2)\n")
    return out


def transaction(client: Client, job: Job, ip: str, ehlo: dict[str, str],
                detail: Detail, reuse: bool = False,
                progress: Callable[[str], None] | None = None) -> Outcome:
    """MAIL, RCPT, DATA and the message: the server's replies decide the outcome.

    With PIPELINING, MAIL, every RCPT and DATA go in one write; with CHUNKING too,
    a message held in memory goes in that same write as one ``BDAT ... LAST`` (RFC
    3030): one round trip in all. ``reuse``: the connection served an earlier
    delivery; it is reset first, and if that fails :class:`StaleConnection` is raised
    before anything was sent."""
    out = Outcome(detail=detail)
    size = ehlo.get("SIZE", "")
    # A limit of more than 18 digits is no limit (and Python's int() refuses 4300).
    if (size.isascii() and size.isdigit() and len(size) <= 18 and int(size) > 0
            and job.message.size > int(size)):
        out.letter, out.text = "D", report.phrase(
            f"Connected to {ip} but the message is {job.message.size} bytes and the "
            f"server accepts at most {size}. (#5.3.4)")
        return out
    if job.utf8 and "SMTPUTF8" not in ehlo:
        raise AttemptError("an address needs SMTPUTF8, which the server does not offer")
    pipelining = "PIPELINING" in ehlo
    content = job.message.unstuffed() if pipelining and "CHUNKING" in ehlo else None
    mail = b"MAIL FROM:<" + wire(job.sender) + b">" + _mail_params(job, ehlo) + b"\r\n"
    rcpts = [b"RCPT TO:<" + wire(r) + b">\r\n" for r in job.recipients]
    last = b"DATA\r\n" if content is None else b"BDAT %d LAST\r\n" % len(content) + content
    batch = mail + b"".join(rcpts) + last if pipelining else mail
    rset_refused = _reset(client, batch if pipelining else b"") if reuse else False
    if progress is not None:
        progress("mail")
    sent = content is not None  # from here on, the message may have been taken
    try:
        if not (reuse and pipelining):
            client.send(batch)
        reply = client.reply()
    except ConnectionDied as exc:
        if reuse and not sent:  # nothing of this message reached the server
            raise StaleConnection(f"cached connection lost at MAIL FROM: {exc}") from None
        return _died(out, ip, sent)
    if reuse and (reply.code == 421 or (rset_refused and not reply.ok)):
        # A server that ends a cached connection here (Exim's and others' limit of
        # messages per connection) took nothing: another connection takes the message.
        client.alive = False
        raise StaleConnection(f"cached connection refused MAIL FROM: {reply.text}")
    try:
        if reply.code == 530:
            # RFC 3207 / 4954: TLS or AUTH first. Ours to fix, not the sender's: the
            # attempt fails (nothing was accepted) and the next one follows.
            if pipelining:
                _settle(client, len(rcpts) + 1, data=not sent)
            raise AttemptError(f"the server wants TLS or AUTH before MAIL FROM: "
                               f"{reply.text}")
        if not reply.ok:
            out.letter = "D" if reply.permanent else "Z"
            out.text = report.phrase(f"Connected to {ip} but sender was rejected.",
                                     reply.text)
            if pipelining:
                _settle(client, len(rcpts) + 1, data=not sent)
            return out
        accepted = 0
        for rcpt in rcpts:
            if not pipelining:
                client.send(rcpt)
            reply = client.reply()
            letter = "r" if reply.ok else ("h" if reply.permanent else "s")
            accepted += letter == "r"
            out.recipients.append(report.recipient(letter, ip, reply.text))
        if not accepted:
            if pipelining:
                _settle(client, 1, data=not sent)
            out.letter, out.text = "D", report.phrase(f"Giving up on {ip}.")
            return out
        if sent:
            if progress is not None:
                progress("dot")
            return _final(out, client.reply(), ip)
        reply = client.reply() if pipelining else client.command(b"DATA")
    except ConnectionDied:
        return _died(out, ip, sent)
    if reply.code != 354:
        out.letter = "D" if reply.permanent else "Z"
        out.text = report.phrase(f"{ip} failed on DATA command.", reply.text)
        return out
    if progress is not None:
        progress("data")
    if not _send_body(client, job.message, ip, out):
        return out
    if progress is not None:
        progress("dot")
    try:
        reply = client.reply()
    except ConnectionDied:
        return _died(out, ip, True)
    return _final(out, reply, ip)
