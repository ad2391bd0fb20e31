"""Adversarial test of ``qconsole --demo`` on a real terminal (a pty): the operator
closes the terminal window (or the SSH connection drops) instead of pressing ``q``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _drain(fd: int) -> None:
    """Read the terminal's output until it closes (so the console never blocks)."""
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


def test_demo_removes_its_home_when_the_terminal_goes_away(tmp_path: Path) -> None:
    """``qconsole --demo`` in a terminal; the operator closes the window (tmux
    ``kill-window``, an SSH drop): the console gets SIGHUP.

    Today: the console dies and its temporary qmail home stays behind in $TMPDIR
    (``qconsole-demo-*/qmail`` with control/, log/current, queue/): tried in tmux.
    The cleanup is a ``finally`` in app.main, which a signal's default action never
    runs.

    Should: README "`--demo` removes its temporary qmail home when it quits": on
    SIGHUP (and SIGTERM) too, e.g. a handler that makes the app exit normally.
    """
    master, slave = os.openpty()
    env = {**os.environ, "TMPDIR": str(tmp_path), "TERM": "xterm-256color",
           "COLUMNS": "100", "LINES": "30"}
    proc = subprocess.Popen([sys.executable, "-m", "qconsole.app", "--demo"], cwd=REPO,
                            stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True)
    os.close(slave)
    threading.Thread(target=_drain, args=(master,), daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("qconsole-demo-*/qmail/log/current")):
            assert proc.poll() is None, "qconsole --demo did not start"
            assert time.monotonic() < deadline, "no demo home appeared"
            time.sleep(0.1)
        time.sleep(2)  # the console is up and drawing
        assert proc.poll() is None
        os.kill(proc.pid, signal.SIGHUP)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert list(tmp_path.iterdir()) == []
