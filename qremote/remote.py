"""``qmail-remote HOST SENDER RECIP...``: the drop-in that qmail-rspawn runs.

Reads the message on stdin, writes reports on stdout, and always exits 0. Nothing is
ever written to stderr (qmail-rspawn would read it as part of a report): stderr is
pointed at /dev/null first, and any exception becomes a ``Z`` report.
"""

from __future__ import annotations

import os
import sys


def run(argv: list[str], message: bytes, home: str | None = None) -> bytes:
    """The reports for one delivery, as bytes (the engine in a form tests can call)."""
    from qremote.report import Outcome

    if len(argv) < 3:
        return Outcome(letter="Z", text="qmail-remote needs HOST SENDER RECIP... "
                                         "(#4.3.0)\n").encode()
    from qremote.config import load_config, qmail_home
    from qremote.deliver import deliver
    from qremote.dns import DnsLookup
    from qremote.tcpto import Memory

    root = qmail_home(home)
    if not (root / "control").is_dir():
        return Outcome(letter="Z", text=f"qmail home {root} has no control directory; "
                                         "set QMAIL_HOME. (#4.3.0)\n").encode()
    config = load_config(root, use_cache=True)
    host, sender, recipients = argv[0], argv[1], argv[2:]
    outcome = deliver(config, host, sender, recipients, message,
                      DnsLookup(config.dnsservers), Memory.for_home(root))
    return outcome.encode()


def main() -> None:
    """Entry point of ``qmail-remote``: exit status 0 in every case."""
    if sys.argv[1:] == ["--self-test"]:  # never from qmail: it passes 3 arguments or more
        from qremote.selftest import main as self_test
        self_test()
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
    except OSError:
        pass
    try:
        message = sys.stdin.buffer.read()
        out = run(sys.argv[1:], message)
    except BaseException as exc:  # never a traceback, never non-zero
        text = f"qmail-remote internal error: {type(exc).__name__}: {exc} (#4.3.0)"
        out = ("Z" + text.replace("\0", " ")[:900] + "\nroute=- local=- remote=- "
               "tls=none auth=none\0").encode("utf-8", "replace")
    try:
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()
    except BaseException:
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
