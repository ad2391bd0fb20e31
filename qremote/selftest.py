"""``qmail-remote --self-test``: proves, as the user qmail runs it as, that it works.

``qremote install`` runs the new wrapper this way, as ``qmailr`` with an empty
environment (as qmail-start does), before it replaces anything; an operator can run
it too (``qremote install`` prints how). qmail itself can never start this mode:
qmail-rspawn always passes three arguments or more (HOST SENDER RECIP...).

It checks that the interpreter starts and imports qremote, dnspython and the delivery
modules, that the wrapper set the qmail home, that every control file qmail-remote reads
can be read, that the control files have no error and a dry delivery (planned, no
network) has a plan, that a ``tls=verify`` route finds the system's CA certificates,
and that the failover memory file can be written. One line a check,
``ok`` or ``FAIL`` with the fix, then the verdict; exit status 0 when all passed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PASSED = "self-test passed"
FAILED = "self-test FAILED"
HOME_LINE = "qmail home: "
DRY_HOST = "self-test.invalid"  # RFC 2606: never a real domain


def _who() -> str:
    from qremote.qmailuser import user_name

    return user_name(os.getuid())


def checks() -> list[tuple[bool, str]]:
    """(passed, text) of each check, in order; stops at the first that makes the rest
    meaningless."""
    from qremote.qmailuser import group_name

    who = _who()
    groups = ",".join(group_name(g) for g in os.getgroups()) or "-"
    out = [(True, f"running as {who} (uid {os.getuid()}, gid {os.getgid()} "
                  f"{group_name(os.getgid())}, groups {groups})")]
    import qremote

    out.append((True, f"Python {sys.version.split()[0]} at {sys.executable} imports "
                      f"qremote from {Path(qremote.__file__).parent}"))
    try:
        import dns.resolver
        import dns.version

        out.append((True, f"dnspython {dns.version.version} imports"))
    except Exception as exc:
        out.append((False, f"dnspython cannot be imported ({type(exc).__name__}: {exc}); "
                           "install qremote with pip into this environment (pip installs "
                           "dnspython with it)"))
    try:
        import ssl

        import qremote.delivery.deliver
        import qremote.planning.dns

        out.append((True, f"the delivery modules import ({ssl.OPENSSL_VERSION})"))
    except Exception as exc:
        out.append((False, f"the delivery modules cannot be imported ({type(exc).__name__}: "
                           f"{exc}); install qremote again into this environment"))
    home_text = os.environ.get("QMAIL_HOME")
    if not home_text:
        out.append((False, "QMAIL_HOME is not set: qmail starts qmail-remote with an "
                           "empty environment, so the wrapper must set it; run qremote "
                           "install again"))
        return out
    home = Path(home_text)
    out.append((True, f"{HOME_LINE}{home} (set by the wrapper)"))
    out += _home_checks(home, who)
    return out


def _home_checks(home: Path, who: str) -> list[tuple[bool, str]]:
    from qremote.control.config import FILES, load_config
    from qremote.qmailuser import blocked_dir, explain, group_name, read_fix, unreadable

    group = group_name(os.getgid())
    for sub, use in (("control", "read the control files"),
                     ("queue/lock", "use its failover memory")):
        path = home / sub
        why = explain(path, os.X_OK, who)
        if why and not path.exists():
            return [(False, f"{path} does not exist: is {home} the qmail home? Run "
                            "qremote --qmail-home DIR install with the right one")]
        if why:
            fix = read_fix(path, blocked_dir(str(path)) or str(path), group)
            return [(False, f"{path}: {why}; qmail-remote could not {use}. Fix: {fix}")]
    out: list[tuple[bool, str]] = []
    bad = unreadable(home, list(FILES), who)
    for name, why, blocked in bad:
        fix = read_fix(home / "control" / name, blocked, group)
        out.append((False, f"control/{name}: {why}; qmail-remote could not read it and "
                           f"every delivery would defer. Fix: {fix}"))
    if not bad:
        present = [n for n in FILES if (home / "control" / n).exists()]
        out.append((True, f"control files readable: {', '.join(present) or 'none present'}"))
    config = load_config(home, use_cache=True)
    unread = {name for name, _, _ in bad}
    errors = [f for f in config.errors if not (f.line == 0 and f.file in unread)]
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        out.append((False, f"control files have errors, every delivery would defer: "
                           f"{errors[0].format()}{more}; run qremote check and fix them"))
    elif not config.errors:
        from qremote.planning.planner import plan

        p = plan(config, DRY_HOST, "", [f"postmaster@{DRY_HOST}"], None)
        if p.error:
            out.append((False, f"a dry delivery to {DRY_HOST} (no network) has no plan: "
                               f"{p.error}; see qremote simulate"))
        else:
            out.append((True, f"a dry delivery to {DRY_HOST} (no network): route "
                              f"{p.route_name}, {len(p.attempts)} attempt(s) planned"))
    verify = [r.name for r in config.routes.routes.values() if r.tls == "verify"]
    if verify:
        from qremote.qmailuser import (
            default_ca_locations,
            trust_store_fix,
            trust_store_problem,
        )

        locations = default_ca_locations()
        problem = trust_store_problem(*locations, who=who)
        if problem:
            out.append((False, f"tls=verify (route {verify[0]}) needs the system's CA "
                               f"certificates: {problem}. Fix: "
                               f"{trust_store_fix(*locations)}"))
        else:
            out.append((True, "CA certificates found for tls=verify"))
    out.append(_memory_check(home, who))
    return out


def _memory_check(home: Path, who: str) -> tuple[bool, str]:
    from qremote.delivery.tcpto import FILE
    from qremote.qmailuser import group_name, memory_problem

    path = home / FILE
    problem = memory_problem(home, who, group_name(os.getgid()))
    if problem:
        return (False, f"failover memory: {problem[0]}; connect timeouts would not be "
                       f"remembered. Fix: {problem[1]}")
    if not path.exists():
        return (True, f"failover memory {path} missing; {who} may create it")
    return (True, f"failover memory {path} writable")


def report() -> tuple[bool, str]:
    """(passed, text) of the whole self-test."""
    try:
        results = checks()
    except Exception as exc:  # the self-test must say what broke, not crash
        results = [(False, f"self-test crashed: {type(exc).__name__}: {exc}")]
    lines = [f"{'ok  ' if ok else 'FAIL'}  {text}" for ok, text in results]
    failed = sum(not ok for ok, _ in results)
    lines.append(PASSED if not failed else f"{FAILED}: {failed} problem(s)")
    return not failed, "\n".join(lines) + "\n"


def main() -> None:
    """Print the self-test and exit 0 when it passed, 1 otherwise."""
    ok, text = report()
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError:
        pass
    os._exit(0 if ok else 1)
