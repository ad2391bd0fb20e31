"""``qremote simulate``: group recipients into deliveries, plan each, and print.

The plans come from :mod:`qremote.planning.planner`, the same planner qmail-remote uses; this
module only groups (as qmail-rspawn would: one delivery per recipient domain) and
renders, as text in the spirit of ``exim -bt`` or as the contract's JSON.

The failover memory (``queue/lock/qremote-tcpto``) is applied as qmail-remote applies
it (:func:`~qremote.planning.planner.apply_memory`): a skipped attempt is shown as skipped and
when its connect timed out, and when every attempt is marked they are shown in the
order they are then tried, oldest failure first.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from qremote.control.config import Config
from qremote.control.routes import Route
from qremote.delivery.session import CLEAR_OK, MECHANISMS
from qremote.delivery.tcpto import Key, Memory, key
from qremote.planning.helo import helo_name
from qremote.planning.mx import CHANCE, Lookup
from qremote.planning.planner import Attempt, Plan, apply_memory, plan

AUTH_MECHANISMS = (" > ".join(MECHANISMS) + " (in the clear only "
                   + ", ".join(sorted(CLEAR_OK)) + ")")
ALL_MARKED = ("every attempt is in the failover memory: qmail-remote tries them all "
              "anyway, oldest failure first")

Marked = dict[Key, float]


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
    """One plan per recipient domain; with DNS, an MX that is this host is dropped as
    qmail-remote drops it."""
    from qremote.planning.ipme import addresses

    rng = rng or CHANCE
    return [plan(config, host, sender, rcpts, lookup, rng, me=addresses)
            for host, rcpts in group_by_domain(recipients)]


def memory_of(config: Config) -> Marked:
    """The failover memory of ``config``'s qmail home, as qmail-remote reads it."""
    return Memory.for_home(config.home).read()


def ordered(attempts: list[Attempt], marked: Marked,
            ) -> tuple[list[tuple[int, float | None, bool]], bool]:
    """(index in ``attempts``, when its connect timed out or None, skipped) of each
    attempt, in the order qmail-remote meets them; and True when every attempt is
    marked (they are then all tried, oldest failure first)."""
    tried = apply_memory(attempts, marked)

    def when(a: Attempt) -> float | None:
        return marked.get(key(a.local_ip, a.address, a.port)) if a.address else None

    index = {id(a): i for i, a in enumerate(attempts)}
    # apply_memory keeps only unmarked attempts, unless every attempt is marked.
    all_marked = bool(tried) and all(when(a) is not None for a in tried)
    if all_marked:
        return [(index[id(a)], when(a), False) for a in tried], True
    kept = {id(a) for a in tried}
    return [(i, when(a), id(a) not in kept) for i, a in enumerate(attempts)], False


def plan_to_dict(config: Config, p: Plan, lookup: Lookup | None,
                 probes: list[dict[str, Any]] | None = None,
                 marked: Marked | None = None) -> dict[str, Any]:
    """The contract's JSON object for one delivery (plus each attempt's HELO name,
    ``skipped`` and ``timed_out_at`` from the failover memory, the plan's ``notes``,
    and with ``--probe`` what each attempt met). Attempts come in the order qmail-remote
    meets them; a skipped one is never tried. ``marked`` None: the home's memory."""
    if marked is None:
        marked = memory_of(config)
    helos: dict[str | None, str] = {}
    attempts = []
    order, all_marked = ordered(p.attempts, marked)
    for i, when, skipped in order:
        a = p.attempts[i]
        if a.local_ip not in helos:
            helos[a.local_ip] = helo_name(config, a.local_ip, lookup)
        attempts.append({"local_ip": a.local_ip, "remote": a.remote, "address": a.address,
                         "port": a.port, "implicit_tls": a.implicit_tls,
                         "helo": helos[a.local_ip], "skipped": skipped,
                         "timed_out_at": None if when is None else round(when)})
        if probes is not None:
            attempts[-1]["probe"] = probes[i]
    notes = [*p.notes, *([ALL_MARKED] if all_marked else [])]
    return {"host": p.host, "sender": p.sender, "recipients": p.recipients,
            "route": p.route.name if p.route else None, "matched": p.selection.matched,
            "tls": p.selection.tls, "auth": bool(p.route and p.route.auth),
            "attempts": attempts, "error": p.error, "notes": notes}


def to_dict(config: Config, plans: list[Plan], lookup: Lookup | None,
            probes: list[list[dict[str, Any]]] | None = None,
            marked: Marked | None = None) -> dict[str, Any]:
    """The whole ``--json`` document, as a dict (the console shows the same)."""
    if marked is None:
        marked = memory_of(config)
    return {"deliveries": [plan_to_dict(config, p, lookup, probes[i] if probes else None,
                                        marked)
                           for i, p in enumerate(plans)]}


def to_json(config: Config, plans: list[Plan], lookup: Lookup | None,
            probes: list[list[dict[str, Any]]] | None = None,
            marked: Marked | None = None) -> str:
    """The whole ``--json`` document."""
    return json.dumps(to_dict(config, plans, lookup, probes, marked), indent=2)


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


FIELD = 14  # where a field's value starts ("  recipients  x@example.com")


def text_lines(config: Config, plans: list[Plan], lookup: Lookup | None,
               probes: list[list[dict[str, Any]]] | None = None,
               marked: Marked | None = None,
               now: float | None = None) -> list[tuple[str, int]]:
    """Readable plans, one block per delivery (an empty line between two): each line
    with the indent its continuation lines take when it is wrapped (under the field's
    value, under the attempt's text)."""
    if marked is None:
        marked = memory_of(config)
    now = time.time() if now is None else now
    lines: list[tuple[str, int]] = []
    for n, p in enumerate(plans):
        if n:
            lines.append(("", 0))
        d = plan_to_dict(config, p, lookup, probes[n] if probes else None, marked)
        auth = (f"as {p.route.user!r}, {AUTH_MECHANISMS}"
                if p.route and p.route.auth else "none")
        fields = [f"{p.host} <- {p.sender or '<>'}",
                  f"  recipients  {', '.join(p.recipients)}",
                  f"  matched     {p.selection.matched}  "
                  f"{_matched_text(config, d['matched'])}",
                  f"  route       {_route_text(p.route)}",
                  f"  tls         {p.selection.tls}",
                  f"  auth        {auth}"]
        fields += [f"  note        {note}" for note in d["notes"]]
        if p.error:
            kind = "permanent" if p.permanent else "temporary"
            fields.append(f"  error       ({kind}) {p.error}")
        else:
            fields.append("  attempts")
        lines += [(line, FIELD) for line in fields]
        if p.error:
            continue
        width = len(str(len(p.attempts)))
        under = 4 + width + 2  # "    1. "
        number = 0
        for ad in d["attempts"]:
            tls = "  implicit TLS" if ad["implicit_tls"] else ""
            target = Attempt(ad["local_ip"], ad["remote"], ad["address"], ad["port"],
                             ad["implicit_tls"]).target
            memo = ""
            if ad["timed_out_at"] is not None:
                ago = f"connect timed out {max(0, now - ad['timed_out_at']):.0f} s ago"
                memo = f"  skipped: {ago}" if ad["skipped"] else f"  ({ago})"
            if ad["skipped"]:
                mark = f"{'-':>{width}} "
            else:
                number += 1
                mark = f"{number:>{width}}."
            lines.append((f"    {mark} from {ad['local_ip'] or '(kernel)'} to "
                          f"{target}  {ad['remote']}  helo {ad['helo']}{tls}{memo}", under))
            if "probe" in ad:
                lines.append((f"    {'':>{width}}  {_probe_text(ad['probe'])}", under))
    return lines


def hanging(line: str, indent: int, width: int) -> str:
    """``line`` wrapped at ``width`` columns, its continuation lines indented by
    ``indent`` (none when that leaves less than 20 columns)."""
    if len(line) <= width:
        return line
    import textwrap

    return "\n".join(textwrap.wrap(line, width, break_on_hyphens=False,
                                   subsequent_indent=" " * indent
                                   if width - indent >= 20 else ""))


def to_text(config: Config, plans: list[Plan], lookup: Lookup | None,
            probes: list[list[dict[str, Any]]] | None = None,
            marked: Marked | None = None, now: float | None = None,
            width: int | None = None) -> str:
    """Readable plans, one block per delivery (:func:`text_lines`); ``width`` (a
    terminal's): a longer line is wrapped, its continuation under its text."""
    lines = text_lines(config, plans, lookup, probes, marked, now)
    return "".join((line if width is None else hanging(line, indent, width)) + "\n"
                   for line, indent in lines)
