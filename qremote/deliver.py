"""The delivery engine: a plan from the planner, then one attempt after another.

:func:`deliver` is a plain function of its arguments (no global state), so a
long-running process can call it many times with the same :class:`Config`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from qremote import report
from qremote.config import Config
from qremote.helo import helo_name
from qremote.mx import Lookup
from qremote.planner import Attempt, apply_memory, plan
from qremote.report import Detail, Outcome
from qremote.session import Job, negotiate, transaction
from qremote.smtp import AttemptError, Client, ConnectionDied, connect, prepare_message
from qremote.tcpto import Memory, key


def _attempt(config: Config, a: Attempt, job: Job, memory: Memory,
             marked: dict[tuple[str, str, int], float], route_name: str,
             plain_only: bool = False) -> Outcome:
    """One attempt; raises AttemptError when it fails before MAIL FROM."""
    if a.address is None:  # only when the engine is called without DNS
        raise AttemptError(f"{a.remote} was not resolved (no DNS lookup given)")
    try:
        sock = connect(a.local_ip, a.address, a.port, config.timeoutconnect)
    except AttemptError as exc:
        if exc.timed_out:
            memory.record(key(a.local_ip, a.address, a.port))
        raise
    if key(a.local_ip, a.address, a.port) in marked:
        memory.forget(key(a.local_ip, a.address, a.port))
    client = Client(sock, config.timeoutremote)
    try:
        local = sock.getsockname()[0]
        try:
            ehlo, mech = negotiate(client, job, a.server_name, plain_only, a.implicit_tls)
        except ConnectionDied as exc:
            raise AttemptError(f"connection died: {exc}") from None
        detail = Detail(route_name, local, a.target, client.tls_version or "none", mech)
        outcome = transaction(client, job, a.address, ehlo, detail)
        try:
            client.send(b"QUIT\r\n")
        except ConnectionDied:
            pass
        return outcome
    finally:
        client.close()


def deliver(config: Config, host: str, sender: str, recipients: Sequence[str],
            message: bytes, lookup: Lookup | None, memory: Memory,
            rng: random.Random | None = None) -> Outcome:
    """Deliver ``message`` for one recipient domain; every failure is an Outcome."""
    p = plan(config, host, sender, recipients, lookup, rng)
    if p.error:
        return Outcome(letter="D" if p.permanent else "Z", text=p.error + "\n",
                       detail=Detail(route=p.route_name))
    marked = memory.read()
    attempts = apply_memory(p.attempts, marked)
    body = prepare_message(message)
    utf8 = not (sender.isascii() and all(r.isascii() for r in recipients))
    helos: dict[str | None, str] = {}
    reasons: list[str] = []
    last = Detail(route=p.route_name)
    for a in attempts:
        if a.local_ip not in helos:
            helos[a.local_ip] = helo_name(config, a.local_ip, lookup)
        job = Job(sender, list(recipients), body, not message.isascii(), utf8, p.route,
                  p.selection.tls, helos[a.local_ip])
        last = Detail(p.route_name, a.local_ip or "-", a.target)
        try:
            return _attempt(config, a, job, memory, marked, p.route_name)
        except AttemptError as exc:
            if not (exc.tls_fallback and job.tls == "may" and not a.implicit_tls):
                reasons.append(f"{a.target} from {a.local_ip or 'any'}: {exc}")
                continue
            # tls=may: a failed handshake is followed by a plaintext connection.
            try:
                return _attempt(config, a, job, memory, marked, p.route_name,
                                plain_only=True)
            except AttemptError as again:
                reasons.append(f"{a.target} from {a.local_ip or 'any'}: {exc}; "
                               f"then in plaintext: {again}")
    return Outcome(letter="Z", text=report.no_connection(reasons), detail=last)
