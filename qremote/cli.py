"""The ``qremote`` command: check, simulate, install, uninstall, tcpto, tcpok, worker,
status.

Imports are lazy: each subcommand loads only what it uses.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


USER_HELP = ("the user qmail-remote runs as (default: the owner of qmail's "
             "QMAIL_HOME/queue/lock/tcpto, else qmailr)")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--qmail-home", metavar="DIR", default=argparse.SUPPRESS,
                        help="qmail home (default: $QMAIL_HOME, else /var/qmail)")
    parser = argparse.ArgumentParser(prog="qremote", parents=[common],
                                     description="Routes for qmail-remote.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chk = sub.add_parser("check", parents=[common], help="validate every control file")
    chk.add_argument("--user", metavar="NAME", help=USER_HELP + ": every control file "
                                                    "must be readable by it")
    sim = sub.add_parser("simulate", parents=[common],
                         help="dry run: which route, local IP and remote a mail would take")
    sim.add_argument("--json", action="store_true", help="print JSON")
    sim.add_argument("--no-dns", action="store_true", help="resolve nothing")
    sim.add_argument("--probe", action="store_true",
                     help="connect for each attempt (EHLO, STARTTLS, AUTH, QUIT)")
    sim.add_argument("--user", metavar="NAME", help=USER_HELP + ": what it cannot read "
                                                    "makes qmail-remote defer")
    sim.add_argument("sender", help="envelope sender; '' or '<>' for the null sender")
    sim.add_argument("recipients", nargs="+", metavar="recipient")
    for name, text in (("install", "replace QMAIL_HOME/bin/qmail-remote with the drop-in, "
                                   "once it has passed a self-test as qmailr"),
                       ("uninstall", "put qmail-remote.orig back and remove the failover "
                                     "memory")):
        cmd = sub.add_parser(name, parents=[common], help=text, description=text[0].upper()
                             + text[1:] + ".")
        cmd.add_argument("--dry-run", action="store_true", help="say what would be done")
    sub.choices["install"].add_argument(
        "--user", metavar="NAME", help=USER_HELP + "; the self-test runs as it")
    sub.choices["install"].add_argument(
        "--script", action="store_true",
        help="install the shell wrapper (Python client) even where a C compiler exists")
    sub.choices["uninstall"].add_argument(
        "--keep-memory", action="store_true",
        help="keep the failover memory file queue/lock/qremote-tcpto")
    sub.add_parser("tcpto", parents=[common],
                   help="list the (local IP, remote) pairs skipped after a connect timeout")
    ok = sub.add_parser("tcpok", parents=[common], help="clear the failover memory")
    ok.add_argument("pair", nargs="*", metavar="LOCAL REMOTE PORT",
                    help="clear only this pair (three words, as tcpto prints them)")
    worker = sub.add_parser("worker", parents=[common],
                            help="deliver for qmail-remote from one long-lived process "
                                 "(foreground; one log line a delivery)")
    worker.add_argument("--user", metavar="USER",
                        help="the user deliveries run as (default when started as root: "
                             "the owner of QMAIL_HOME/queue/lock/tcpto, else qmailr)")
    worker.add_argument("--all-cpus", action="store_true",
                        help="let the delivery threads run on every CPU (default: one: "
                             "they share one interpreter lock, and handing it from CPU "
                             "to CPU costs more than it gives)")
    status = sub.add_parser("status", parents=[common],
                            help="what the worker is doing: deliveries in flight, counts")
    status.add_argument("--json", action="store_true", help="print JSON")
    for cmd in (worker, status):
        cmd.add_argument("--socket", metavar="PATH",
                         help="the worker's socket (default: "
                              "QMAIL_HOME/queue/lock/qremote.sock)")
    return parser


def _home(args: argparse.Namespace):
    from qremote.control.config import qmail_home

    return qmail_home(getattr(args, "qmail_home", None))


def _user(args: argparse.Namespace, home: Path) -> tuple[str, str]:
    """The user qmail-remote runs as, and how it was chosen: ``--user``, else the owner
    of qmail's queue/lock/tcpto, else qmailr."""
    if args.user:
        return args.user, "--user"
    from qremote.qmailuser import remote_user

    return remote_user(home)


def cmd_install(args: argparse.Namespace) -> int:
    """Install or uninstall the wrapper."""
    from qremote.install import InstallError, install, uninstall

    try:
        if args.command == "install":
            user, why = _user(args, _home(args))
            steps = install(_home(args), dry_run=args.dry_run, user=user,
                            compiled=not args.script)
            if not args.user:
                print(f"qmail-remote runs as {user} ({why}; --user NAME says otherwise)")
        else:
            steps = uninstall(_home(args), dry_run=args.dry_run,
                              keep_memory=args.keep_memory)
    except InstallError as exc:
        print(f"qremote {args.command}: {exc}", file=sys.stderr)
        if args.command == "install" and not args.dry_run:
            print(f"qremote {args.command}: nothing was replaced", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"qremote {args.command}: {exc}", file=sys.stderr)
        return 1
    for step in steps:
        print(step)
    return 0


def _pair(words: list[str]) -> tuple[str, str, int] | str:
    """LOCAL REMOTE PORT as the failover memory keys it, or the reason it is not one."""
    from qremote.control.addresses import parse_ip
    from qremote.errors import LineError

    local, remote, port = words
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        return f"port {port!r} is not a number from 1 to 65535"
    ips = []
    for what, ip in (("LOCAL", local), ("REMOTE", remote)):
        if ip == "*" and what == "LOCAL":
            ips.append(ip)
            continue
        try:
            ips.append(parse_ip(ip))
        except LineError:
            also = " (or * for a kernel-chosen local IP)" if what == "LOCAL" else ""
            return (f"{what} {ip!r} is not an IP address{also}; give LOCAL REMOTE PORT as "
                    "qremote tcpto lists them")
    return ips[0], ips[1], int(port)


def _tcpto_table(entries: dict[tuple[str, str, int], float], now: float) -> list[str]:
    rows = [(local, address, str(port), f"timed out {max(0, now - when):.0f} s ago")
            for (local, address, port), when in sorted(entries.items(),
                                                       key=lambda kv: kv[1])]
    rows.insert(0, ("LOCAL", "REMOTE", "PORT", "LAST CONNECT TIMEOUT"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}"
            for r in rows]


MISSING_FIX = ("qmail-remote creates it only where its user may write in queue/lock "
               "(qremote check says whether it can); qremote install creates it")


def _memory_home_problem(home: Path, memory: Path) -> str | None:
    """Why ``home`` cannot hold a failover memory at ``memory`` (no such home, no
    queue/lock), or None (a directory this process cannot enter is said when read)."""
    import os

    for path, what in ((home, f"the qmail home {home} does not exist"),
                       (memory.parent, f"{memory.parent} does not exist: is {home} the "
                                       "qmail home?")):
        try:
            os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return f"{what} (pass --qmail-home DIR or set QMAIL_HOME)"
        except OSError:
            return None
    return None


def cmd_tcpto(args: argparse.Namespace) -> int:
    """List or clear the failover memory."""
    import os
    import time

    from qremote.delivery.tcpto import Memory

    home = _home(args)
    memory = Memory.for_home(home)
    name = f"qremote {args.command}"
    assert memory.path is not None
    where = _memory_home_problem(home, memory.path)
    if where:
        print(f"{name}: {where}", file=sys.stderr)
        return 1
    missing = not os.path.lexists(memory.path)
    if args.command == "tcpok":
        if args.pair and len(args.pair) != 3:
            print(f"{name}: give LOCAL REMOTE PORT (as qremote tcpto lists them), or "
                  "nothing to clear every pair", file=sys.stderr)
            return 2
        pair = _pair(args.pair) if args.pair else None
        if isinstance(pair, str):
            print(f"{name}: {pair}", file=sys.stderr)
            return 2
        if missing:
            print(f"{name}: the failover memory ({memory.path}) is missing: nothing to "
                  f"clear. {MISSING_FIX}", file=sys.stderr)
            return 1 if pair is not None else 0
        try:
            gone = memory.forget(pair, strict=True)
        except OSError as exc:
            print(f"{name}: cannot write {memory.path}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 1
        now = time.time()
        if pair is not None and not gone:
            print(f"{name}: {' '.join(map(str, pair))} is not in the failover memory "
                  f"({memory.path}); nothing cleared. qremote tcpto lists what is",
                  file=sys.stderr)
            return 1
        if not gone:
            print(f"the failover memory ({memory.path}) was already empty")
            return 0
        print(f"cleared {len(gone)} pair(s) from {memory.path}:")
        for line in _tcpto_table(gone, now):
            print("  " + line)
        return 0
    try:
        entries = memory.read(strict=True)
    except OSError as exc:
        print(f"{name}: cannot read {memory.path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if missing:
        print(f"the failover memory ({memory.path}) is missing: no pair is skipped, and "
              f"none is remembered. {MISSING_FIX}")
        return 0
    if not entries:
        print(f"the failover memory ({memory.path}) is empty: no pair is skipped")
        return 0
    for line in _tcpto_table(entries, time.time()):
        print(line)
    return 0


def _control_dir_problem(home: Path, command: str = "check") -> str | None:
    """Why ``home/control`` cannot be used by this process, or None."""
    import os
    import stat

    control = home / "control"
    try:
        st = os.stat(control)
    except (FileNotFoundError, NotADirectoryError):
        return f"{control} is not a directory; pass --qmail-home or set QMAIL_HOME"
    except OSError:
        from qremote.qmailuser import explain, user_name

        who = user_name(os.geteuid())
        why = explain(control, os.R_OK | os.X_OK, who) or "permission denied"
        return (f"cannot read {control}: {why}; run qremote {command} as root (or as a "
                "user who can read the control files)")
    if not stat.S_ISDIR(st.st_mode):
        return f"{control} is not a directory; pass --qmail-home or set QMAIL_HOME"
    return None


def _socket(args: argparse.Namespace):
    from pathlib import Path

    from qremote.worker.protocol import default_socket

    return Path(args.socket) if args.socket else default_socket(_home(args))


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the worker until SIGTERM; exit 1 when it cannot start."""
    from qremote.errors import QremoteError
    from qremote.worker.server import Server

    try:
        server = Server(_home(args), socket_path=_socket(args))
        server.open(args.user)
    except (QremoteError, OSError) as exc:
        print(f"qremote worker: {exc}", file=sys.stderr)
        return 1
    return server.serve(one_cpu=not args.all_cpus)


def cmd_status(args: argparse.Namespace) -> int:
    """Print the worker's status; exit 1 when no worker answers."""
    from qremote.worker.status import WorkerUnavailable, query, render, to_json

    try:
        doc = query(_socket(args))
    except WorkerUnavailable as exc:
        print(f"qremote status: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(to_json(doc) if args.json else render(doc))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Print every finding; exit 1 when there is at least one error."""
    from qremote.control.check import check_as, install_warnings
    from qremote.control.config import finding_order, load_config

    home = _home(args)
    problem = _control_dir_problem(home)
    if problem:
        print(f"control/: error: {problem}", flush=True)
        return 1
    from qremote.control.cache import compile_cache, fingerprint

    user, why = _user(args, home)
    before = fingerprint(home / "control")
    config = load_config(home)
    findings = sorted(check_as(config, user) + install_warnings(home), key=finding_order)
    for finding in findings:
        print(finding.format())
    n_err = sum(f.severity == "error" for f in findings)
    try:
        compile_cache(config, before)
    except OSError as exc:
        print(f"qremote check: could not write control/routes.cache ({exc.strerror}); "
              "qmail-remote parses the text files instead", file=sys.stderr)
    print(f"qremote check: {n_err} error(s), {len(findings) - n_err} warning(s) "
          f"in {home / 'control'}, {_seen_by(user, why)}", file=sys.stderr)
    return 1 if n_err else 0


def _seen_by(user: str, why: str) -> str:
    """Whose view check reported: the user qmail-remote runs as, or (said in a warning)
    this process's own."""
    import os

    from qremote.qmailuser import can_become, lookup, user_name

    found = lookup(user)
    if found is not None and can_become(found):
        return f"as seen by {user}, the user qmail-remote runs as ({why})"
    return (f"as seen by {user_name(os.geteuid())}, not by {user}, the user qmail-remote "
            f"runs as ({why})")


def cmd_simulate(args: argparse.Namespace) -> int:
    """Plan each delivery and print it; exit 1 when a delivery has no plan (also when
    qmail-remote, as its user, cannot read the control files: it would defer them all)."""
    from qremote.control.check import user_findings
    from qremote.control.config import FILES, load_config
    from qremote.planning.simulate import (
        bad_recipients,
        memory_of,
        null_sender,
        simulate,
        to_json,
        to_text,
    )

    bad = bad_recipients(args.recipients)
    if bad:
        print(f"qremote simulate: recipient {bad[0]!r} has no domain "
              "(write user@domain)", file=sys.stderr)
        return 2
    sender = null_sender(args.sender)
    home = _home(args)
    problem = _control_dir_problem(home, "simulate")
    if problem:
        print(f"control/: error: {problem}; qmail-remote would defer every delivery "
              "(#4.3.0)", file=sys.stderr)
        return 1
    config = load_config(home)
    for finding in config.errors:
        print(finding.format(), file=sys.stderr)
    # What qmail-remote, running as its user, cannot read makes it defer (the failover
    # memory changes no plan: left to check).
    user, _ = _user(args, home)
    theirs = [f for f in user_findings(config, user) if f.severity == "error" and f.file]
    for finding in theirs:
        print(finding.format(), file=sys.stderr)
    if any(f.line == 0 and f.file in FILES for f in theirs):
        print(f"qremote simulate: qmail-remote runs as {user}, which cannot read every "
              "control file: it would defer every delivery (#4.3.0); fix the errors above "
              "(qremote check lists them)", file=sys.stderr)
        return 1
    lookup = None
    if not args.no_dns:
        from qremote.planning.dns import DnsLookup

        lookup = DnsLookup(config.dnsservers)
    plans = simulate(config, sender, args.recipients, lookup)
    probes = None
    if args.probe:
        from qremote.planning.probe import probe

        probes = probe(config, plans, lookup)
    marked = memory_of(config)
    # On a terminal, long lines wrap under their text, not at its left edge.
    import shutil

    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    out = (to_json(config, plans, lookup, probes, marked) if args.json
           else to_text(config, plans, lookup, probes, marked, width=width))
    sys.stdout.write(out if out.endswith("\n") else out + "\n")
    return 1 if any(p.error for p in plans) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``qremote``."""
    args = _parser().parse_args(argv)
    handler = {"check": cmd_check, "simulate": cmd_simulate, "install": cmd_install,
               "uninstall": cmd_install, "tcpto": cmd_tcpto, "tcpok": cmd_tcpto,
               "worker": cmd_worker, "status": cmd_status}[args.command]
    try:
        return handler(args)
    except BrokenPipeError:
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
