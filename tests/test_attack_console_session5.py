"""Issue 11 tried again as an operator would (session 5): qconsole in tmux at 80x24,
100x30 and 200x60, on a qmail home and logs made by hand (CRLF, 200 routes, AUTH and
TLS fields, lines that do not parse), typing fast. Each test is one stumble found
there, reproduced with Pilot.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Button, DataTable

from qconsole.app import QConsole
from qconsole.diff_screen import DiffScreen
from qconsole.form_screen import FormScreen
from tests.test_console_probe import Mute

BAD_LINE = "broken;127.0.0.2&127.0.0.3|127.0.0.4;mx;;"  # mixes & and |: a long reason


def _routes(count: int, crlf: bool = False, bad: bool = True) -> bytes:
    """``count`` routes with AUTH and TLS fields, then (``bad``) one that does not parse."""
    lines = ["# routes written by hand"]
    lines += [f"r{i:03d};127.0.0.2&127.0.0.3;relay{i}.example:587;user{i}@example.com;"
              f"secret{i};tls=verify" for i in range(count)]
    if bad:
        lines.append(BAD_LINE)
    return ("\r\n" if crlf else "\n").join(lines).encode()  # no final newline


def _home(make_home, routes: bytes) -> Path:
    home = make_home(routes=routes, routemap=b"*;*;r000\n")
    os.chmod(home / "control" / "routes", 0o640)
    return home


def _columns_width(table: DataTable) -> int:
    return sum(c.get_render_width(table) for c in table.ordered_columns)


# A line that does not parse hid the AUTH and TLS columns ---------------------------

async def _case_columns(home: Path, size: tuple[int, int]) -> tuple[int, int, str]:
    app = QConsole(home)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        table = app.query_one("#routes-table", DataTable)
        await pilot.press("G")  # the red row: its reason, whole, under the table
        await pilot.pause()
        selected = str(app.query_one("#routes-selected").render())
        return _columns_width(table), table.scrollable_content_region.width, selected


def test_a_line_that_does_not_parse_hides_no_column_at_80(make_home) -> None:
    """tmux 80x24, a routes file with one line that does not parse (``&`` and ``|``
    mixed): the reason in the Remotes column was as wide as the whole message,
    so the AUTH and TLS columns of every route were off the screen, with no hint
    (issue 11: "usable at 80 columns (no hidden AUTH/TLS columns without a hint)").

    Should: the row's reason is cut; the line under the table gives it whole."""
    width, room, selected = asyncio.run(_case_columns(_home(make_home, _routes(5)),
                                                      (80, 24)))
    assert width <= room, (width, room)
    assert "line 7 does not parse" in selected and "use one kind of list" in selected


def test_a_line_that_does_not_parse_hides_no_column_at_200(make_home) -> None:
    """tmux 200x60, same file: the wide table put the reason in the first "Mode"
    column, pushing Remotes, AUTH user, Password and TLS off a 200-column screen."""
    width, room, _ = asyncio.run(_case_columns(_home(make_home, _routes(5)), (200, 60)))
    assert width <= room, (width, room)


# A long routes file hid the findings -------------------------------------------------

async def _case_findings(home: Path) -> list[tuple[str, bool]]:
    app = QConsole(home)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen.region
        return [(name, screen.contains_region(app.query_one(name).region))
                for name in ("#routes-findings", "#routes-selected")]


def test_findings_show_below_a_long_routes_file(make_home) -> None:
    """tmux 100x30, 60 routes and one line that does not parse: the table grew to
    the whole view and the findings of control/routes (README: "with qremote check's
    findings for control/routes below") and the selected route's line were below
    the bottom of the screen, out of reach."""
    shown = asyncio.run(_case_findings(_home(make_home, _routes(60))))
    assert all(inside for _, inside in shown), shown


# The diff of a CRLF file: its buttons out of sight, Tab to Save did nothing ---------

async def _case_diff(home: Path, size: tuple[int, int], keys: tuple[str, ...]
                     ) -> tuple[bool, bytes]:
    app = QConsole(home)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        app.query_one("#routes-table", DataTable).move_cursor(row=0)
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, FormScreen)
        await pilot.press("tab", "end", "backspace", "4", "ctrl+s")  # 127.0.0.3 -> .4
        await pilot.pause(DiffScreen.REPEAT_GUARD + 0.1)
        screen = app.screen
        assert isinstance(screen, DiffScreen), screen
        save = screen.query_one("#diff-save", Button)
        shown = screen.region.contains_region(save.region)
        await pilot.press(*keys)
        await pilot.pause()
        await app.workers.wait_for_complete()
        return shown, (home / "control" / "routes").read_bytes()


def test_the_diff_of_a_crlf_file_shows_its_buttons_at_80x24(make_home) -> None:
    """tmux 80x24, a CRLF routes file of 30 routes (``check`` warns on each line):
    the diff screen listed every warning the file already had (31 here, 380 on a
    200-route file), so Save and Cancel were hundreds of lines below the screen
    and the help text that says how to save could not be seen."""
    routes = _routes(30, crlf=True, bad=False)
    shown, after = asyncio.run(_case_diff(_home(make_home, routes), (80, 24), ()))
    assert shown
    assert after == routes


def test_tab_then_enter_saves_the_diff(make_home) -> None:
    """README and the diff screen itself: "ctrl+s (or Tab to Save, then Enter)". The
    focus starts on Cancel; Tab went to the diff's scroll area, not to Save, so Tab,
    Enter did nothing (a second Tab was needed, with Save out of sight)."""
    routes = _routes(3, bad=False)
    _, after = asyncio.run(_case_diff(_home(make_home, routes), (120, 40),
                                      ("tab", "enter")))
    assert after == routes.replace(b"127.0.0.2&127.0.0.3;relay0", b"127.0.0.2&127.0.0.4;relay0")


def test_a_line_that_does_not_parse_hides_no_column_at_120(make_home) -> None:
    """tmux 120x40 (the wide table, over 110 columns), same file: the reason, even
    cut, pushed TLS off the screen. The wide table is for when it fits."""
    width, room, _ = asyncio.run(_case_columns(_home(make_home, _routes(5)), (120, 40)))
    assert width <= room, (width, room)


def test_a_long_list_of_remotes_hides_no_column_at_120(make_home) -> None:
    """tmux 120x40, a route failing over to four relays: the wide table never cut a
    list, so AUTH user, Password and TLS of every route were off the screen."""
    relays = "&".join(f"relay{i}.partner-network.example.net:587" for i in range(4))
    routes = _routes(5, bad=False) + f"\nmany;127.0.0.2;{relays};;\n".encode()
    width, room, _ = asyncio.run(_case_columns(_home(make_home, routes), (120, 40)))
    assert width <= room, (width, room)


# A resize left the table drawn with the old widths ----------------------------------

async def _case_resize(home: Path) -> str:
    from tests.test_console import screen_text

    app = QConsole(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.resize_terminal(200, 60)
        await pilot.pause(0.3)
        await pilot.resize_terminal(100, 30)
        await pilot.pause(0.3)
        return screen_text(app)


def test_a_resize_redraws_every_row_with_the_new_widths(make_home) -> None:
    """tmux 80x24, then 200x60, then 100x30 (``tmux resize-window``): the routes
    table was drawn with each column as wide as its title ("r0", "user" and "ver"
    for r001, user1@example.com and verify) until the cursor passed on each row:
    the rows drawn before the columns were measured stayed in the cache."""
    shown = asyncio.run(_case_resize(_home(make_home, _routes(5))))
    assert "user3@example.com" in shown and "verify" in shown, shown


# A conflict: the button that says what to do was cut ------------------------------

async def _case_conflict(home: Path) -> tuple[str, str]:
    app = QConsole(home)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        await pilot.press("tab", "end", "backspace", "4", "ctrl+s")
        await pilot.pause(DiffScreen.REPEAT_GUARD + 0.1)
        with (home / "control" / "routes").open("ab") as f:
            f.write(b"\nother;;;;\n")  # another operator's edit, meanwhile
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        cancel = app.screen.query_one("#diff-cancel", Button)
        return str(cancel.label), "".join(
            s.text for s in cancel.render_line(0))


def test_the_button_after_a_conflict_reads_whole(make_home) -> None:
    """tmux 100x30: the file changed on disk while the diff was open; ctrl+s is
    refused (good) and Cancel becomes "Close and reload", shown as "Close and" (the
    button kept its 16 columns): the one word that says what happens was cut."""
    label, shown = asyncio.run(_case_conflict(_home(make_home, _routes(3, bad=False))))
    assert label == "Close and reload"
    assert "reload" in shown, shown


def test_a_long_auth_user_hides_no_column_at_80(make_home) -> None:
    """tmux 80x24, a route whose AUTH user is an e-mail address (common with a
    smarthost) and one whose user is written in CJK (two cells a character): the
    AUTH column took the user whole, so TLS was off the screen at 80 columns."""
    routes = _routes(3, bad=False) + (
        b"\nsmarthost;127.0.0.2;smtp.provider.example:587;"
        b"notifications-and-alerts@company-name.example.com;pw;tls=encrypt\n"
        + "cjk;;mx;用户用户用户用户用户用户;密码;tls=verify\n".encode())
    width, room, _ = asyncio.run(_case_columns(_home(make_home, routes), (80, 24)))
    assert width <= room, (width, room)


# The routemap's errors were below dozens of routes warnings ------------------------

async def _case_routemap_findings(home: Path) -> str:
    app = QConsole(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause()
        panel = app.query_one("#routemap-findings")
        return "\n".join("".join(s.text for s in panel.render_line(y))
                         for y in range(panel.size.height))


def test_routemap_errors_show_before_unused_routes(make_home) -> None:
    """tmux 80x24, 30 routes, a routemap that uses one and has a line that does not
    parse: the routemap view's findings listed the 29 "not used by any routemap
    line" warnings of control/routes first, and the panel (8 lines) cut the list
    there: the routemap's own error was never on screen, and nothing said more
    were hidden."""
    home = _home(make_home, _routes(30, bad=False))
    (home / "control" / "routemap").write_bytes(b"*;*;r000\nbad line\n")
    shown = asyncio.run(_case_routemap_findings(home))
    assert "control/routemap:2: error" in shown, shown
    assert "1 error, 29 warnings" in shown, shown


async def _case_tcpto_note(home: Path) -> bool:
    from qremote.delivery.tcpto import Memory

    (home / "queue" / "lock").mkdir(parents=True)
    memory = Memory.for_home(home)
    for i in range(30):
        memory.record((f"127.0.0.{2 + i % 4}", f"192.0.2.{i}", 25))
    app = QConsole(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        await pilot.pause()
        return app.screen.region.contains_region(app.query_one("#tcpto-note").region)


def test_the_failover_note_shows_with_many_pairs(make_home) -> None:
    """tmux 80x24, 30 pairs in the failover memory (a relay network down for a
    while): the table grew to the whole view and the note under it (how long a pair
    is skipped, which file holds them) was below the screen."""
    assert asyncio.run(_case_tcpto_note(_home(make_home, _routes(3, bad=False))))


# The probe's progress bar was off the right edge -----------------------------------

@pytest.fixture
def silent() -> Iterator[Mute]:
    server = Mute()  # accepts, never speaks
    yield server
    server.release()


async def _case_progress(home: Path, mute: Mute) -> tuple[bool, bool]:
    from textual.widgets import ProgressBar

    from qconsole.simulate_view import SimulateView
    from tests.test_console_probe import _until

    app = QConsole(home)
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(SimulateView)
        await pilot.press("3", *"a@b.org", "tab", *"c@d.org")
        await pilot.click("#probe")
        await _until(pilot, lambda: mute.accepted.is_set(), 10)
        await pilot.pause()
        bar = app.query_one("#probe-progress", ProgressBar)
        shown = bar.has_class("shown")
        inside = app.screen.region.contains_region(bar.region) and bar.region.width > 0
        await pilot.press("escape")
        assert not view.probing
        for conn in mute.conns:
            conn.close()  # the attempt under way ends now, not after its 10 s
        return shown, inside


def test_the_probe_progress_bar_is_on_screen_at_100_columns(make_home, silent) -> None:
    """tmux 100x30, Probe against a server that never speaks: README promises "a
    progress bar"; the bar sat to the right of the Use DNS box and the three buttons,
    in the same row, beyond the 100th column (it shows from about 110)."""
    home = make_home(routes=f"stall;;127.0.0.1:{silent.port};;\n", routemap="*;*;stall\n")
    assert asyncio.run(_case_progress(home, silent)) == (True, True)


# Read-only: a burst of edit keys stacked a notice each ------------------------------

async def _case_read_only_burst(home: Path) -> list[str]:
    app = QConsole(home, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("e", "x", "a", "d", "enter", "2", "K", "x")
        await pilot.pause()
        return [n.message for n in app._notifications]


def test_read_only_says_why_once_for_a_burst_of_edit_keys(make_home) -> None:
    """tmux 80x24, --read-only, the operator tries e, x, a, d, Enter, then on the
    routemap K and x: each key stacked one more identical "Read-only: ..." notice, 7
    of them covering most of the view (and the help, if opened) for 5 seconds."""
    said = asyncio.run(_case_read_only_burst(_home(make_home, _routes(3, bad=False))))
    assert len(said) == 1 and "--read-only" in said[0], said


# An operator's own account: routes 640 root:qmail ----------------------------------

def _as_nobody(home: Path) -> QConsole:
    """The console made (control files read and checked) by the user nobody."""
    QConsole(home)  # first as root: every module it imports is loaded (nobody may
    os.seteuid(65534)  # not reach this Python's files)
    try:
        return QConsole(home)
    finally:
        os.seteuid(0)


async def _case_unreadable(app: QConsole) -> tuple[str, list[str]]:
    from textual.widgets import Static

    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        banner = app.query_one("#banner", Static)
        shown = str(banner.render()) if banner.has_class("shown") else ""
        return shown, [f.format() for f in app.findings if f.file == "routes"]


@pytest.mark.skipif(os.geteuid() != 0, reason="reads the files as nobody")
def test_a_routes_file_the_console_cannot_read_is_not_a_false_alarm(
        make_home, tmp_path: Path) -> None:
    """tmux 80x24, qconsole run from an operator's own account (README: "Run it as a
    user who can read control/"; routes is best 640 root:qmail): the banner said
    "qmail-remote is deferring every delivery: 1 error in control/routes" and the
    finding said "make it readable by the user qmail-remote runs as" -- a false
    alarm that invites a chmod 644 of the passwords. ``qremote check`` as that user
    says it right: a warning, "could not check as qmailr (run qremote check as root)",
    since qmail-remote's user may well read it."""
    home = _home(make_home, _routes(3, bad=False))
    for p in (tmp_path.parent.parent, tmp_path.parent, tmp_path, home, home / "control"):
        p.chmod(0o755)
    (home / "control" / "routes").chmod(0o600)  # the operator is not in group qmail
    banner, findings = asyncio.run(_case_unreadable(_as_nobody(home)))
    assert "deferring every delivery" not in banner, banner
    assert not [f for f in findings if ": error: " in f], findings
    assert any("could not check as" in f for f in findings), findings


# A multilog directory without current -----------------------------------------------

async def _case_no_current(log: Path) -> tuple[list[str], list[str]]:
    from qconsole.log_table import LogTable
    from qconsole.logs_view import LogsView
    from tests.test_logs import OK_TEXT, delivery_lines, write

    app = QConsole(log.parent / "no-home", log=log)
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(LogsView)
        for _ in range(100):  # the history read (never, when the log did not open)
            if view.index is not None and view.index.history_done:
                break
            await pilot.pause(0.05)
        await pilot.pause()
        model = app.query_one(LogTable).model
        before = [model.row(i).recipient for i in range(len(model))]
        write(log / "current", delivery_lines(T1 + 60, 2, 2, "new@y.org", "success",
                                              OK_TEXT))
        for _ in range(40):
            await pilot.pause(0.05)
            if len(model) > len(before):
                break
        return before, [model.row(i).recipient for i in range(len(model))]


T1 = 1_795_000_000.0


def test_a_multilog_directory_without_current_shows_its_history(tmp_path: Path) -> None:
    """tmux 80x24, ``--log`` on a multilog directory that holds only rotated files
    (logs copied from another host, or opened between multilog's rename of current
    and the new current): "cannot read .../current: No such file or directory", no
    row of the history (README: "rotated @*.s/@*.u files beside current are
    history"), and a current written later was never read (tail -F waits for it).
    """
    from tests.test_logs import OK_TEXT, delivery_lines, write

    log = tmp_path / "log"
    log.mkdir()
    write(log / "@400000006b000000000000aa.s",
          delivery_lines(T1, 1, 1, "old@x.org", "success", OK_TEXT))
    before, after = asyncio.run(_case_no_current(log))
    assert before == ["old@x.org"]
    assert after == ["old@x.org", "new@y.org"]


# Deleting a rule: the route it leaves unused was not said ------------------------

async def _case_delete_rule(home: Path) -> str:
    app = QConsole(home)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await pilot.pause()
        await pilot.press("x")  # the first rule: *;partner.example;r001
        await pilot.pause()
        assert isinstance(app.screen, DiffScreen), app.screen
        return str(app.screen.query_one("#diff-status").render())


def test_deleting_a_rule_says_the_route_it_leaves_unused(make_home) -> None:
    """tmux 100x30 (the demo's routemap does it too): ``x`` on a rule shows the diff
    and "the warnings", but only those of control/routemap: that the rule's route
    is now used by no line (a warning ``qremote check`` gives on control/routes)
    was not said before saving."""
    home = _home(make_home, _routes(2, bad=False))
    (home / "control" / "routemap").write_bytes(b"*;partner.example;r001\n*;*;r000\n")
    status = asyncio.run(_case_delete_rule(home))
    assert "route 'r001' is not used by any routemap line" in status, status


async def _case_unreadable_notes(app: QConsole) -> list[str]:
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await pilot.pause()
        table = app.query_one("#routemap-table", DataTable)
        return [str(table.get_row_at(i)[-1]) for i in range(table.row_count)]


@pytest.mark.skipif(os.geteuid() != 0, reason="reads the files as nobody")
def test_rules_of_an_unreadable_routes_file_are_not_said_undefined(
        make_home, tmp_path: Path) -> None:
    """tmux 80x24, the same operator's account (routes 600 root): the routemap view
    marks every rule "route not defined" in red, while the routes are defined (the
    console just cannot read them; the findings say so, as a warning)."""
    home = _home(make_home, _routes(3, bad=False))
    for p in (tmp_path.parent.parent, tmp_path.parent, tmp_path, home, home / "control"):
        p.chmod(0o755)
    (home / "control" / "routes").chmod(0o600)
    notes = asyncio.run(_case_unreadable_notes(_as_nobody(home)))
    assert not any("route not defined" in n for n in notes), notes
