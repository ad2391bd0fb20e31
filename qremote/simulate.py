"""``qremote simulate``: group recipients into deliveries, plan each, and print.

The plans come from :mod:`qremote.planner`, the same planner qmail-remote uses; this
module only groups (as qmail-rspawn would: one delivery per recipient domain) and
renders, as text in the spirit of ``exim -bt`` or as the contract's JSON.
"""

from __future__ import annotations

import json
import random
from typing import Any

from qremote.config import Config
from qremote.helo import helo_name
from qremote.mx import Lookup
from qremote.planner import Plan, plan
from qremote.routes import Route
from qremote.session import CLEAR_OK, MECHANISMS

AUTH_MECHANISMS = (" > ".join(MECHANISMS) + " (in the clear only "
                   + ", ".join(sorted(CLEAR_OK)) + ")")


def null_sender(sender: str) -> str:
    """The envelope sender as qmail passes it: ``<>`` is written as the empty string."""
    return "" if sender.strip() == "<>" else sender.strip()


def bad_recipients(recipients: list[str]) -> list[str]:
    """Recipients without a domain (a delivery needs ``user@domain``)."""
    return [r for r in recipients if "@" not in r or not r.rpartition("@")[2]]


def group_by_domain(recipients: list[str]) -> list[tuple[str, list[str]]]:
    """(domain, recipients) in order of first appearance; domains compared lower-case."""
    groups: dict[str, list[str]] = {}
    for rcpt in recipients:
        groups.setdefault(rcpt.rpartition("@")[2].lower(), []).append(rcpt)
    return list(groups.items())


def simulate(config: Config, sender: str, recipients: list[str], lookup: Lookup | None,
             rng: random.Random | None = None) -> list[Plan]:
    """One plan per recipient domain."""
    rng = rng or random.Random()
    return [plan(config, host, sender, rcpts, lookup, rng)
            for host, rcpts in group_by_domain(recipients)]


def plan_to_dict(config: Config, p: Plan, lookup: Lookup | None,
                 probes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The contract's JSON object for one delivery (plus each attempt's HELO name, and
    with ``--probe`` what each attempt met)."""
    helos: dict[str | None, str] = {}
    attempts = []
    for a in p.attempts:
        if a.local_ip not in helos:
            helos[a.local_ip] = helo_name(config, a.local_ip, lookup)
        attempts.append({"local_ip": a.local_ip, "remote": a.remote, "address": a.address,
                         "port": a.port, "implicit_tls": a.implicit_tls,
                         "helo": helos[a.local_ip]})
        if probes is not None:
            attempts[-1]["probe"] = probes[len(attempts) - 1]
    return {"host": p.host, "sender": p.sender, "recipients": p.recipients,
            "route": p.route.name if p.route else None, "matched": p.selection.matched,
            "tls": p.selection.tls, "auth": bool(p.route and p.route.auth),
            "attempts": attempts, "error": p.error}


def to_dict(config: Config, plans: list[Plan], lookup: Lookup | None,
            probes: list[list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """The whole ``--json`` document, as a dict (the console shows the same)."""
    return {"deliveries": [plan_to_dict(config, p, lookup, probes[i] if probes else None)
                           for i, p in enumerate(plans)]}


def to_json(config: Config, plans: list[Plan], lookup: Lookup | None,
            probes: list[list[dict[str, Any]]] | None = None) -> str:
    """The whole ``--json`` document."""
    return json.dumps(to_dict(config, plans, lookup, probes), indent=2)


def _matched_text(config: Config, matched: str) -> str:
    kind, _, number = matched.partition(":")
    source = config.files.get(kind)
    if not number or source is None:
        return "no routemap or smtproutes entry: the recipient domain's MX"
    line = source.lines[int(number) - 1]
    return (line.text or "").strip()


def _route_text(route: Route | None) -> str:
    if route is None:
        return "none"
    local = route.local_text() or "defaultoutgoingip"
    return (f"{route.name}  (local {local} {route.local_mode}, "
            f"remotes {route.remotes_text()} {route.remote_mode})")


def _probe_text(result: dict[str, Any]) -> str:
    if result["ok"]:
        return f"probe ok: tls={result['tls']} auth={result['auth']}"
    return f"probe failed ({result['stage']}): {result['text']}"


def to_text(config: Config, plans: list[Plan], lookup: Lookup | None,
            probes: list[list[dict[str, Any]]] | None = None) -> str:
    """Readable plans, one block per delivery."""
    blocks = []
    for n, p in enumerate(plans):
        d = plan_to_dict(config, p, lookup, probes[n] if probes else None)
        auth = (f"as {p.route.user!r}, {AUTH_MECHANISMS}"
                if p.route and p.route.auth else "none")
        lines = [f"{p.host} <- {p.sender or '<>'}",
                 f"  recipients  {', '.join(p.recipients)}",
                 f"  matched     {p.selection.matched}  {_matched_text(config, d['matched'])}",
                 f"  route       {_route_text(p.route)}",
                 f"  tls         {p.selection.tls}",
                 f"  auth        {auth}"]
        lines += [f"  note        {note}" for note in p.notes]
        if p.error:
            kind = "permanent" if p.permanent else "temporary"
            lines.append(f"  error       ({kind}) {p.error}")
        else:
            lines.append("  attempts")
            width = len(str(len(p.attempts)))
            for i, (a, ad) in enumerate(zip(p.attempts, d["attempts"], strict=True), 1):
                tls = "  implicit TLS" if a.implicit_tls else ""
                lines.append(f"    {i:>{width}}. from {a.local_ip or '(kernel)'} to "
                             f"{a.target}  {a.remote}  helo {ad['helo']}{tls}")
                if "probe" in ad:
                    lines.append(f"    {'':>{width}}  {_probe_text(ad['probe'])}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
