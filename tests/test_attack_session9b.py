"""Issue 11 tried again on this session's changes (session 9b): another program's
syslog lines in logs not in the repository, ``route:?`` and ``route:(local)``, a
control file that is a symbolic link, a probe cancelled or quit."""

from __future__ import annotations

import asyncio
from pathlib import Path

from qconsole.logformat import logsafe
from tests.test_logs import OK_TEXT

# qmail-send's lines under another name, with one line that is no program's ---------
#
# journalctl's own lines ("-- Logs begin at ... --", "-- Boot ... --") and sysklogd's
# ("-- MARK --", "last message repeated 3 times") are no syslog line of a program: each
# is a raw row. A single one of them made the log's row count 1, and the status line's
# word on qmail-send's lines logged by another program (rc[812]: systemd running
# /var/qmail/rc) was not said, though the view shows not one delivery.

def test_the_skipped_lines_are_told_of_when_the_log_shows_no_delivery(
        tmp_path: Path, make_home) -> None:
    from qconsole.app import QConsole
    from qconsole.logs_view import LogsView
    from tests.test_console_logs import _wait

    pre = "Nov 24 10:00:0{} mail rc[812]: "
    log = tmp_path / "journal.txt"
    log.write_text("\n".join([
        "-- Logs begin at Mon 2026-11-23 08:00:01 UTC, end at Tue 2026-11-24 10:00:04 UTC. --",
        pre.format(0) + "info msg 8: bytes 300 from <a@b.org> qp 1 uid 2",
        pre.format(1) + "starting delivery 7: msg 8 to remote real@x.org",
        pre.format(3) + f"delivery 7: success: {logsafe(OK_TEXT)}",
        "Nov 24 10:00:04 mail sshd[9]: Accepted publickey for root"]) + "\n")

    async def status() -> str:
        app = QConsole(make_home(), log=log)
        async with app.run_test(size=(200, 30)) as pilot:
            view = app.query_one(LogsView)
            await _wait(pilot, lambda: view.index is not None and view.index.history_done)
            await pilot.pause()
            view.show_status()
            await pilot.pause()
            return str(app.query_one("#log-status").render())

    said = asyncio.run(status())
    assert "1 row" in said and "3 lines of rc[812] hold qmail-send's words" in said, said


# A control file that is a link whose target cannot be written ------------------------
#
# control/routes -> /etc/qremote/routes, a directory configuration management has not
# made yet (or a read-only one): the save writes the target's directory, and the
# console said "cannot write control/routes: No such file or directory" (or
# "Permission denied") of a file the operator sees there, writable. It names what
# could not be written.

def test_a_linked_control_file_that_cannot_be_written_names_the_path(
        make_home, tmp_path: Path) -> None:
    from qconsole.app import QConsole
    from qconsole.diff_screen import DiffScreen

    home = make_home(routemap="*;*;alpha\n")
    (home / "control" / "routes").unlink(missing_ok=True)
    target = tmp_path / "etc" / "qremote" / "routes"  # (etc/qremote is not there)
    (home / "control" / "routes").symlink_to(target)

    async def add_and_save() -> str:
        from tests.test_console_edit import _fill

        async with QConsole(home).run_test(size=(120, 40)) as pilot:
            await pilot.press("a")
            await pilot.pause()
            await _fill(pilot, name="eps", local_ips="", remotes="", user="",
                        password="", tls="may")
            await pilot.press("ctrl+s")
            for _ in range(50):
                await pilot.pause(0.05)
                if isinstance(pilot.app.screen, DiffScreen):
                    break
            screen = pilot.app.screen
            assert isinstance(screen, DiffScreen)
            await pilot.pause(0.5)  # (past the held-key guard)
            screen.action_save()
            await pilot.pause()
            return str(screen.query_one("#diff-status").render())

    said = asyncio.run(add_and_save())
    assert "cannot write control/routes" in said, said
    assert str(target.parent) in said, said
    assert (home / "control" / "routes").is_symlink()
