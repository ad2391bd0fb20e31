"""``qremote simulate --probe``: for each planned attempt, connect, EHLO, STARTTLS and
AUTH as a delivery would, then QUIT. No mail is sent and the failover memory is left
alone. The same :func:`~qremote.delivery.session.negotiate` as deliveries, so what a probe
reports is what a delivery would meet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qremote.control.config import Config
from qremote.delivery.message import Message
from qremote.delivery.session import Job, negotiate
from qremote.delivery.smtp import AttemptError, Client, ConnectionDied, connect
from qremote.planning.helo import helo_name
from qremote.planning.mx import Lookup
from qremote.planning.planner import Attempt, Plan


def probe_attempt(config: Config, p: Plan, a: Attempt, helo: str,
                  read_timeout: float | None = None) -> dict[str, Any]:
    """What one attempt meets: ``ok``, TLS version, AUTH mechanism, EHLO keywords.
    ``read_timeout`` bounds each read instead of ``timeoutremote`` (the console)."""
    if a.address is None:
        return {"ok": False, "stage": "dns", "text": "not resolved (--no-dns)"}
    try:
        sock = connect(a.local_ip, a.address, a.port, config.timeoutconnect)
    except AttemptError as exc:
        return {"ok": False, "stage": "connect", "text": str(exc)}
    client = Client(sock, read_timeout or config.timeoutremote)
    job = Job("", [], Message(data=b""), False, p.route, p.selection.tls, helo)
    try:
        ehlo, mech = negotiate(client, job, a.server_name, False, a.implicit_tls)
        try:
            client.command("QUIT")
        except ConnectionDied:
            pass
        return {"ok": True, "stage": "done", "tls": client.tls_version or "none",
                "auth": mech, "extensions": sorted(ehlo)}
    except (AttemptError, ConnectionDied) as exc:
        return {"ok": False, "stage": "session", "text": str(exc),
                "tls": client.tls_version or "none"}
    finally:
        client.close()


def probe(config: Config, plans: list[Plan], lookup: Lookup | None,
          progress: Callable[[int, int, dict[str, Any]], None] | None = None,
          read_timeout: float | None = None) -> list[list[dict[str, Any]]]:
    """Probe every attempt of every plan; ``progress(done, total, result)`` after each
    (an exception it raises stops the probe)."""
    total = sum(len(p.attempts) for p in plans)
    done = 0
    results: list[list[dict[str, Any]]] = []
    for p in plans:
        per_plan = []
        for a in p.attempts:
            result = probe_attempt(config, p, a, helo_name(config, a.local_ip, lookup),
                                   read_timeout)
            per_plan.append(result)
            done += 1
            if progress is not None:
                progress(done, total, result)
        results.append(per_plan)
    return results
