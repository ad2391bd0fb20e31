"""``qremote check``: every error of the parsers, plus warnings that need judgement.

Warnings: a routemap line that an earlier line shadows, a route no rule uses, a
routes file with passwords that other users can read, a local IP that is not an
address of this host, credentials on a route that never uses TLS, a missing ``me``.

:func:`user_findings` adds what only the user qmail-remote runs as can tell (asked
of the kernel by a child that has dropped to that user): a control file it cannot
read, a ``tls=verify`` route without CA certificates it can load, a failover memory it
cannot write. :func:`check_as` is the whole of ``qremote check``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from qremote.control.config import Config, finding_order
from qremote.control.findings import Finding
from qremote.planning.hostaddrs import is_local_address


def routemap_warnings(config: Config) -> list[Finding]:
    """Shadowed routemap lines (a line an earlier one always wins over)."""
    out: list[Finding] = []
    for rule in config.routemap.rules:
        earlier = config.routemap.shadowing(rule)
        if earlier is not None:
            out.append(Finding("routemap", rule.line, "warning",
                               f"never matches: line {earlier.line} "
                               f"({earlier.sender};{earlier.recipient}) matches first"))
    return out


def literal_domain_warnings(config: Config) -> list[Finding]:
    """Routemap domains written like wildcards or suffixes (``*.example.com``,
    ``.example.com``): routemap compares domains exactly, so they match no subdomain."""
    source = config.files.get("routemap")
    out: list[Finding] = []
    for line in source.lines if source is not None else ():
        if not line.is_content or line.text is None:
            continue
        for field in (f.strip() for f in line.text.split(";")[:2]):
            if field != "*" and ("*" in field or field.startswith(".")):
                out.append(Finding("routemap", line.number, "warning",
                                   f"{field!r}: routemap domains match exactly, with no "
                                   "wildcard and no .suffix (unlike smtproutes); list "
                                   "each domain, or use * for any"))
    return out


def route_warnings(config: Config) -> list[Finding]:
    """Unused routes and credentials that could only travel in the clear."""
    used = {rule.route for rule in config.routemap.rules}
    out: list[Finding] = []
    for route in config.routes.routes.values():
        if route.name not in used:
            out.append(Finding("routes", route.line, "warning",
                               f"route {route.name!r} is not used by any routemap line"))
        if route.auth and route.tls == "none":
            out.append(Finding("routes", route.line, "warning",
                               f"route {route.name!r} has credentials but tls=none: only "
                               "CRAM-MD5 may be used without TLS; AUTH will otherwise defer"))
    return out


def permission_warnings(config: Config, home: Path) -> list[Finding]:
    """A routes file holding passwords that is readable by others."""
    if not any(r.password for r in config.routes.routes.values()):
        return []
    try:
        mode = os.stat(home / "control" / "routes").st_mode
    except OSError:
        return []
    if mode & 0o004:
        return [Finding("routes", 0, "warning",
                        f"holds passwords and is readable by every user (mode "
                        f"{mode & 0o777:o}); chmod 640 and chown root:qmail")]
    return []


def local_ip_warnings(config: Config,
                      is_local: Callable[[str], bool] = is_local_address) -> list[Finding]:
    """Local IPs (routes and defaultoutgoingip) that are not addresses of this host."""
    out: list[Finding] = []
    checked: dict[str, bool] = {}

    def local(ip: str) -> bool:
        if ip not in checked:
            checked[ip] = is_local(ip)
        return checked[ip]

    if config.defaultoutgoingip and not local(config.defaultoutgoingip):
        out.append(Finding("defaultoutgoingip", 1, "warning",
                           f"{config.defaultoutgoingip} is not an address of this host; "
                           "connections from it will fail"))
    for route in config.routes.routes.values():
        for ip in route.local_ips:
            if not local(ip):
                out.append(Finding("routes", route.line, "warning",
                                   f"local IP {ip} of route {route.name!r} is not an "
                                   "address of this host; attempts from it will fail"))
    return out


def check(config: Config, is_local: Callable[[str], bool] = is_local_address) -> list[Finding]:
    """Every finding about ``config``, in file order, then by line."""
    findings = list(config.findings)
    if not config.files.get("me") or not config.files["me"].exists:
        findings.append(Finding("me", 0, "warning",
                                f"missing; using this host's name {config.me!r} "
                                "(write the host's FQDN in control/me)"))
    findings += routemap_warnings(config)
    findings += literal_domain_warnings(config)
    findings += route_warnings(config)
    findings += permission_warnings(config, config.home)
    findings += local_ip_warnings(config, is_local)
    return sorted(set(findings), key=finding_order)


def _user_view(home: str, names: list[str], who: str, ca: list[str | None] | None,
               group: str) -> dict:
    """Run as the user qmail-remote runs as: the control files it cannot read (name,
    why, the directory at fault), why it cannot load CA certificates and the fix, and
    why it cannot use the failover memory ([why, fix])."""
    from qremote.qmailuser import (
        memory_problem,
        trust_store_fix,
        trust_store_problem,
        unreadable,
    )

    ca_problem = trust_store_problem(ca[0], ca[1], who) if ca is not None else None
    return {"unreadable": unreadable(Path(home), names, who),
            "ca": ca_problem,
            "ca_fix": trust_store_fix(ca[0], ca[1]) if ca is not None and ca_problem
            else None,
            "memory": memory_problem(home, who, group)}


def user_findings(config: Config, user_name: str) -> list[Finding]:
    """Errors for what the user qmail-remote runs as (``user_name``, normally
    ``qmailr``) cannot read or write; checked as that user when this process is root or
    that user. Else (with a warning) what this process sees is said as warnings: it may
    not see what that user sees, so it can tell no error."""
    from qremote.qmailuser import (
        can_become,
        default_ca_locations,
        group_name,
        lookup,
        read_fix,
        run_as,
    )
    from qremote.qmailuser import user_name as name_of

    user = lookup(user_name)
    out: list[Finding] = []
    me = name_of(os.geteuid())
    if user is None:
        out.append(Finding("", 0, "warning",
                           f"there is no user {user_name!r} on this host (qmail-remote runs "
                           "as qmail's remote user: pass --user NAME if it has another "
                           f"name); checked what {me} can read instead"))
    elif not can_become(user):
        out.append(Finding("", 0, "warning",
                           f"run qremote check as root (or as {user.name}) to check that "
                           f"{user.name}, the user qmail-remote runs as, can read every "
                           f"control file; checked what {me} can read instead"))
    as_user = user is not None and can_become(user)
    who = user.name if as_user else me
    # What root cannot reach, no user can: an error. What another user cannot reach,
    # the user qmail-remote runs as may: a warning that says it was not checked.
    sure = as_user or os.geteuid() == 0
    severity = "error" if sure else "warning"
    unchecked = "" if sure else f"could not check as {user_name} (run qremote check as root): "
    group = group_name(user.gid if user is not None else os.getegid())
    names = [n for n, f in config.files.items()
             if f.exists and (config.home / "control" / n).exists()]
    verify = [r for r in config.routes.routes.values() if r.tls == "verify"]
    ca = list(default_ca_locations()) if verify else None
    args = (str(config.home), names, who, ca, group)
    try:
        seen = run_as(user, _user_view, *args) if as_user else _user_view(*args)
    except OSError as exc:
        return [*out, Finding("", 0, "warning", f"could not check as {who}: {exc}")]
    for name, why, blocked in seen["unreadable"]:
        path = config.home / "control" / name
        if not sure:
            out.append(Finding(name, 0, severity, f"{unchecked}{why}"))
            continue
        out.append(Finding(name, 0, severity,
                           f"qmail-remote runs as {who}, which cannot read this file: "
                           f"{why}; every delivery would defer. Fix: "
                           f"{read_fix(path, blocked, group)}"))
    if seen["ca"]:
        for route in verify:
            out.append(Finding(
                "routes", route.line, severity,
                f"{unchecked}route {route.name!r} has tls=verify, which needs the system's "
                f"CA certificates, and {who} cannot load any: {seen['ca']}"
                + (". qmail starts qmail-remote with an empty environment, so "
                   f"SSL_CERT_FILE and SSL_CERT_DIR do not apply. Fix: {seen['ca_fix']}"
                   if sure else "")))
    if seen["memory"]:
        why, fix = seen["memory"]
        out.append(Finding("", 0, severity,
                           f"{unchecked}the failover memory: {why}"
                           + (f", so qmail-remote, running as {who}, never remembers a "
                              "connect timeout and every delivery waits out a dead remote "
                              f"again. Fix: {fix}" if sure else "")))
    return out


def unchecked_reads(config: Config, user_name: str) -> list[Finding]:
    """``config``'s findings, except that a control file this process cannot read is a
    warning when it is not the user qmail-remote runs as (``user_name``) and cannot
    become it: that user may read it (640 root:qmail), and only a check as that user
    can tell (an error would invite a chmod 644 of the passwords)."""
    from qremote.qmailuser import can_become, can_read, explain, lookup
    from qremote.qmailuser import user_name as name_of

    user = lookup(user_name)
    if os.geteuid() == 0 or (user is not None and can_become(user)):
        return list(config.findings)
    me = name_of(os.geteuid())
    out = []
    for f in config.findings:
        path = config.home / "control" / f.file
        if f.severity == "error" and f.line == 0 and f.file and \
                isinstance(can_read(path), PermissionError):
            why = explain(path, os.R_OK, me) or "permission denied"
            f = Finding(f.file, 0, "warning",
                        f"could not check as {user_name} (run qremote check as root): "
                        f"{why}; qmail-remote runs as {user_name}, which may read it")
        out.append(f)
    return out


def check_as(config: Config, user_name: str,
             is_local: Callable[[str], bool] = is_local_address) -> list[Finding]:
    """What ``qremote check`` reports: :func:`check`, and what the user qmail-remote runs
    as (``user_name``) can reach (:func:`user_findings`)."""
    mine = check(config, is_local)
    own = set(config.findings)
    seen = unchecked_reads(config, user_name)
    findings = [f for f in mine if f not in own] + seen + user_findings(config, user_name)
    return sorted(set(findings), key=finding_order)


def install_warnings(home: Path) -> list[Finding]:
    """A warning when ``bin/qmail-remote`` is not qremote's (qmail installed again over
    it): qmail's own then ignores routes and routemap."""
    from qremote.install import is_wrapper

    target = home / "bin" / "qmail-remote"
    orig = target.with_name("qmail-remote.orig")
    if not target.exists() or is_wrapper(target):
        return []
    if orig.exists():
        fix = (f"qmail was probably installed again over qremote's: keep the newer of "
               f"the two (if that is {target}: rm {orig}), then run qremote install")
    else:
        fix = f"qremote install (it keeps qmail's own as {orig})"
    return [Finding("", 0, "warning",
                    f"{target} is not qremote's: qmail's own qmail-remote delivers, and "
                    "ignores routes and routemap (and qremote worker). Fix: " + fix)]
