"""``qmail-remote HOST SENDER RECIP...``: the drop-in that qmail-rspawn runs.

Reads the message on stdin, writes reports on stdout, and always exits 0. Nothing is
ever written to stderr (qmail-rspawn would read it as part of a report): stderr is
pointed at /dev/null first, and any exception becomes a ``Z`` report.
"""

from __future__ import annotations

import os
import sys


def run(argv: list[str] | list[bytes], message: bytes | int, home: str | None = None,
        ) -> bytes:
    """The reports for one delivery, as bytes (the engine in a form tests can call)."""
    from qremote.control.config import qmail_home
    from qremote.delivery.engine import Engine

    return Engine(qmail_home(home)).deliver(argv, message)


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
        out = run([os.fsencode(a) for a in sys.argv[1:]], 0)
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
