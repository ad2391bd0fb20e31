"""The delivery engine: a plan from the planner, then one attempt after another.

:func:`deliver` is a plain function of its arguments (no global state), so a
long-running process can call it many times with the same :class:`Config`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

from qremote.control.config import Config
from qremote.delivery import report
from qremote.delivery.envelope import unsendable
from qremote.delivery.message import Message
from qremote.delivery.report import Detail, Outcome
from qremote.delivery.session import Job, StaleConnection, negotiate, transaction
from qremote.delivery.smtp import AttemptError, Client, ConnectionDied, connect
from qremote.delivery.tcpto import Memory
from qremote.delivery.tcpto import key as key_of
from qremote.planning.helo import helo_name
from qremote.planning.mx import Lookup
from qremote.planning.planner import Attempt, apply_memory, plan

if TYPE_CHECKING:  # the pool only exists in the worker: not imported by qmail-remote
    from qremote.delivery.connections import Cached, Key, Pool


Progress = Callable[[str], None]


def _quit(client: Client) -> None:
    """Say QUIT without waiting for the answer (qmail: "just too ridiculous")."""
    if client.alive:
        try:
            client.send(b"QUIT\r\n")
        except ConnectionDied:
            pass


def _key(a: Attempt, job: Job, plain_only: bool) -> Key:
    from qremote.delivery.connections import Key

    route = job.route
    return Key(a.local_ip, a.address or "", a.port, a.implicit_tls, job.tls, a.server_name,
               route.user if route else "", route.password if route else "", job.helo,
               plain_only)


def _reuse(pool: Pool, key: Key, a: Attempt, job: Job, route_name: str, timeout: float,
           progress: Progress | None) -> Outcome | None:
    """The delivery on a cached connection for ``key``, or None when there is none
    alive (a stale one is closed and the next tried: nothing was sent on it)."""
    from qremote.delivery.connections import farewell

    while (cached := pool.take(key)) is not None:
        cached.client.timeout = timeout  # timeoutremote as it is now, not when opened
        detail = Detail(route_name, cached.local, a.target,
                        cached.client.tls_version or "none", cached.mech)
        if progress is not None:
            progress(f"reuse {a.target}")
        try:
            out = transaction(cached.client, job, a.address or "", cached.ehlo, detail,
                              reuse=True, progress=progress)
        except StaleConnection:
            pool.count("stale")
            cached.client.close()
            continue
        except AttemptError as exc:
            exc.tls = cached.client.tls_version or "none"
            exc.local, exc.auth = cached.local, cached.mech
            farewell(cached.client)
            raise
        pool.count("reused")
        _release(pool, key, cached)
        return out
    return None


def _release(pool: Pool, key: Key, cached: Cached) -> None:
    from qremote.delivery.connections import farewell

    if cached.client.alive and cached.client.reusable:
        pool.give(key, cached)
    else:
        farewell(cached.client)


def _attempt(config: Config, a: Attempt, job: Job, memory: Memory,
             marked: dict[tuple[str, str, int], float], route_name: str,
             plain_only: bool = False, pool: Pool | None = None,
             progress: Progress | None = None) -> Outcome:
    """One attempt; raises AttemptError when it fails before MAIL FROM."""
    contexts = pool.tls_contexts if pool is not None else None
    if a.address is None:  # only when the engine is called without DNS
        raise AttemptError(f"{a.remote} was not resolved (no DNS lookup given)")
    if pool is not None:
        key = _key(a, job, plain_only)
        out = _reuse(pool, key, a, job, route_name, config.timeoutremote, progress)
        if out is not None:
            return out
    if progress is not None:
        progress(f"connect {a.target}")
    try:
        sock = connect(a.local_ip, a.address, a.port, config.timeoutconnect)
    except AttemptError as exc:
        if exc.timed_out:
            memory.record(key_of(a.local_ip, a.address, a.port))
        raise
    if key_of(a.local_ip, a.address, a.port) in marked:
        memory.forget(key_of(a.local_ip, a.address, a.port))
    client = Client(sock, config.timeoutremote)
    local = sock.getsockname()[0]
    kept = False
    mech = "none"
    try:
        try:
            if progress is not None:
                progress(f"smtp {a.target}")
            ehlo, mech = negotiate(client, job, a.server_name, plain_only, a.implicit_tls,
                                   contexts)
        except ConnectionDied as exc:
            raise AttemptError(f"connection died: {exc}") from None
        detail = Detail(route_name, local, a.target, client.tls_version or "none", mech)
        outcome = transaction(client, job, a.address, ehlo, detail, progress=progress)
        if pool is not None:
            from qremote.delivery.connections import Cached

            pool.count("created")
            _release(pool, key, Cached(client, ehlo, mech, local, pool.clock()))
            kept = True
        else:
            _quit(client)
        return outcome
    except AttemptError as exc:
        exc.tls, exc.local = client.tls_version or exc.tls, local
        if mech != "none":  # authenticated, then failed (SMTPUTF8, a 530 at MAIL ...)
            exc.auth = mech
        _quit(client)
        raise
    finally:
        if not kept:
            client.close()


def _refusals(sender: str, recipients: Sequence[str]) -> tuple[str | None, dict[int, str]]:
    """Envelope addresses that can never be sent (CR, LF, NUL): the sender's reason,
    and each such recipient's index and reason."""
    why = unsendable(sender)
    bad = {i: w for i, r in enumerate(recipients) if (w := unsendable(r))}
    return why, bad


def _merge(out: Outcome, recipients: Sequence[str], refused: dict[int, str]) -> Outcome:
    """Put the refused recipients' ``h`` reports back at their argv positions."""
    if not refused:
        return out
    sent = iter(out.recipients)
    merged: list[tuple[str, str]] = []
    for i in range(len(recipients)):
        if i in refused:
            merged.append(("h", f"Sorry, I will not send to this address: {refused[i]}. "
                                "(#5.1.3)\n"))
        elif (report_ := next(sent, None)) is not None:
            merged.append(report_)
    out.recipients = merged
    return out


def deliver(config: Config, host: str, sender: str, recipients: Sequence[str],
            message: Message | bytes, lookup: Lookup | None, memory: Memory,
            rng: random.Random | None = None,
            me: Callable[[], Collection[str]] | None = None, pool: Pool | None = None,
            progress: Progress | None = None) -> Outcome:
    """Deliver ``message`` for one recipient domain; every failure is an Outcome.

    ``me`` gives this host's addresses (an MX that is one of them is never a target);
    ``pool`` (the worker's) keeps connections for later deliveries; ``progress`` hears
    each stage (``connect IP:PORT``, ``mail``, ``data``, ``dot`` ...)."""
    if isinstance(message, bytes):
        message = Message(data=message)
    bad_sender, refused = _refusals(sender, recipients)
    if bad_sender:
        return Outcome(letter="D", text=f"Sorry, I will not send this message: its sender "
                                        f"address cannot be sent: {bad_sender}. (#5.1.7)\n")
    sendable = [r for i, r in enumerate(recipients) if i not in refused]
    if not sendable:
        return _merge(Outcome(letter="D", text="Sorry, no recipient address of this "
                                               "delivery can be sent. (#5.1.3)\n"),
                      recipients, refused)
    p = plan(config, host, sender, sendable, lookup, rng, me=me)
    if p.error:
        return _merge(Outcome(letter="D" if p.permanent else "Z", text=p.error + "\n",
                              detail=Detail(route=p.route_name)), recipients, refused)
    marked = memory.read()
    attempts = apply_memory(p.attempts, marked)
    utf8 = not (sender.isascii() and all(r.isascii() for r in sendable))
    helos: dict[str | None, str] = {}
    failed: list[str] = []
    last = Detail(route=p.route_name)
    for a in attempts:
        if a.local_ip not in helos:
            helos[a.local_ip] = helo_name(config, a.local_ip, lookup)
        job = Job(sender, sendable, message, utf8, p.route, p.selection.tls,
                  helos[a.local_ip])
        where = f"{a.target} from {a.local_ip or 'any'}"
        try:
            out = _attempt(config, a, job, memory, marked, p.route_name, pool=pool,
                           progress=progress)
        except AttemptError as exc:
            last = Detail(p.route_name, exc.local or a.local_ip or "-", a.target, exc.tls,
                          exc.auth)
            if not (exc.tls_fallback and job.tls == "may" and not a.implicit_tls):
                failed.append(f"{where}: {exc}")
                if progress is not None:
                    progress(f"failed {where}: {exc}")
                continue
            # tls=may: a failed handshake is followed by a plaintext connection.
            try:
                out = _attempt(config, a, job, memory, marked, p.route_name,
                               plain_only=True, pool=pool, progress=progress)
            except AttemptError as again:
                last = Detail(p.route_name, again.local or a.local_ip or "-", a.target,
                              again.tls, again.auth)
                failed.append(f"{where}: {exc}; then in plaintext: {again}")
                continue
            failed.append(f"{where}: {exc}; continued in plaintext")
        out.failed = failed
        return _merge(out, recipients, refused)
    out = Outcome(letter="Z", text=report.NO_CONNECTION, detail=last)
    out.failed = failed
    return _merge(out, recipients, refused)
