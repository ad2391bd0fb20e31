"""The ``qremote`` command: check, simulate, install, uninstall, tcpto, tcpok, worker,
status.

Imports are lazy: each subcommand loads only what it uses.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--qmail-home", metavar="DIR", default=argparse.SUPPRESS,
                        help="qmail home (default: $QMAIL_HOME, else /var/qmail)")
    parser = argparse.ArgumentParser(prog="qremote", parents=[common],
                                     description="Routes for qmail-remote.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("check", parents=[common], help="validate every control file")
    sim = sub.add_parser("simulate", parents=[common],
                         help="dry run: which route, local IP and remote a mail would take")
    sim.add_argument("--json", action="store_true", help="print JSON")
    sim.add_argument("--no-dns", action="store_true", help="resolve nothing")
    sim.add_argument("--probe", action="store_true",
                     help="connect for each attempt (EHLO, STARTTLS, AUTH, QUIT)")
    sim.add_argument("sender", help="envelope sender; '' or '<>' for the null sender")
    sim.add_argument("recipients", nargs="+", metavar="recipient")
    for name, text in (("install", "replace QMAIL_HOME/bin/qmail-remote with the drop-in"),
                       ("uninstall", "put qmail-remote.orig back")):
        cmd = sub.add_parser(name, parents=[common], help=text)
        cmd.add_argument("--dry-run", action="store_true", help="say what would be done")
    sub.add_parser("tcpto", parents=[common],
                   help="list the (local IP, remote) pairs skipped after a connect timeout")
    ok = sub.add_parser("tcpok", parents=[common], help="clear the failover memory")
    ok.add_argument("pair", nargs="*", metavar="LOCAL REMOTE PORT",
                    help="clear only this pair (three words, as tcpto prints them)")
    worker = sub.add_parser("worker", parents=[common],
                            help="deliver for qmail-remote from one long-lived process "
                                 "(foreground; one log line a delivery)")
    worker.add_argument("--user", metavar="USER",
                        help="the user deliveries run as (default: qmailr when started "
                             "as root)")
    status = sub.add_parser("status", parents=[common],
                            help="what the worker is doing: deliveries in flight, counts")
    status.add_argument("--json", action="store_true", help="print JSON")
    for cmd in (worker, status):
        cmd.add_argument("--socket", metavar="PATH",
                         help="the worker's socket (default: "
                              "QMAIL_HOME/queue/lock/qremote.sock)")
    return parser


def _home(args: argparse.Namespace):
    from qremote.config import qmail_home

    return qmail_home(getattr(args, "qmail_home", None))


def cmd_install(args: argparse.Namespace) -> int:
    """Install or uninstall the wrapper."""
    from qremote.install import install, uninstall

    action = install if args.command == "install" else uninstall
    try:
        steps = action(_home(args), dry_run=args.dry_run)
    except OSError as exc:
        print(f"qremote {args.command}: {exc}", file=sys.stderr)
        return 1
    prefix = "would " if args.dry_run else ""
    for step in steps:
        print(prefix + step)
    return 0


def cmd_tcpto(args: argparse.Namespace) -> int:
    """List or clear the failover memory."""
    import time

    from qremote.tcpto import Memory

    memory = Memory.for_home(_home(args))
    if args.command == "tcpok":
        if args.pair and len(args.pair) != 3:
            print("qremote tcpok: give LOCAL REMOTE PORT, or nothing to clear all",
                  file=sys.stderr)
            return 2
        memory.forget((args.pair[0], args.pair[1], int(args.pair[2])) if args.pair
                      else None)
        return 0
    now = time.time()
    for (local, address, port), when in sorted(memory.read().items(), key=lambda kv: kv[1]):
        print(f"{local} {address} {port}  timed out {now - when:.0f} s ago")
    return 0


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
    return server.serve()


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
    from qremote.check import check
    from qremote.config import load_config

    home = _home(args)
    if not (home / "control").is_dir():
        print(f"control/: error: {home / 'control'} is not a directory; "
              "pass --qmail-home or set QMAIL_HOME", flush=True)
        return 1
    from qremote.cache import compile_cache, fingerprint

    before = fingerprint(home / "control")
    config = load_config(home)
    findings = check(config)
    for finding in findings:
        print(finding.format())
    n_err = sum(f.severity == "error" for f in findings)
    try:
        compile_cache(config, before)
    except OSError as exc:
        print(f"qremote check: could not write control/routes.cache ({exc.strerror}); "
              "qmail-remote parses the text files instead", file=sys.stderr)
    print(f"qremote check: {n_err} error(s), {len(findings) - n_err} warning(s) "
          f"in {home / 'control'}", file=sys.stderr)
    return 1 if n_err else 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Plan each delivery and print it; exit 1 when a delivery has no plan."""
    from qremote.config import load_config
    from qremote.simulate import bad_recipients, null_sender, simulate, to_json, to_text

    bad = bad_recipients(args.recipients)
    if bad:
        print(f"qremote simulate: recipient {bad[0]!r} has no domain "
              "(write user@domain)", file=sys.stderr)
        return 2
    sender = null_sender(args.sender)
    config = load_config(_home(args))
    for finding in config.errors:
        print(finding.format(), file=sys.stderr)
    lookup = None
    if not args.no_dns:
        from qremote.dns import DnsLookup

        lookup = DnsLookup(config.dnsservers)
    plans = simulate(config, sender, args.recipients, lookup)
    probes = None
    if args.probe:
        from qremote.probe import probe

        probes = probe(config, plans, lookup)
    out = (to_json(config, plans, lookup, probes) if args.json
           else to_text(config, plans, lookup, probes))
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
