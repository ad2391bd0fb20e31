"""Issue 11 tried again as an operator would (session 6): qconsole in tmux at 80x24,
100x30, 200x60 and 60x20, on a qmail home and logs made by hand under /tmp (CRLF,
no final newline, long route names, Unicode domains, a multilog directory with
rotated files, a syslog file, escape sequences in replies, a writer loop), typing
fast. Each test is one stumble found there, reproduced with Pilot.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Static

from qconsole.app import QConsole
from qconsole.diff_screen import DiffScreen
from qconsole.form_screen import FormScreen

# A routes file as written by hand: CRLF, no final newline after its last route.
NO_FINAL_NEWLINE = (b"# routes by hand\r\n"
                    b"relay;127.0.0.2;127.0.0.1:2525;;;tls=none\r\n"
                    b"last;;mx;us\xc3\xa9r;p\xc3\xa4ss;tls=may")


# Adding a route to a file without a final newline: the diff said the last route went

async def _case_append_diff(home: Path) -> list[str]:
    app = QConsole(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("a", *"new-route", "tab", *"127.0.0.9", "tab", "m", "x",
                          "ctrl+s")
        await pilot.pause(DiffScreen.REPEAT_GUARD + 0.1)
        assert isinstance(app.screen, DiffScreen), app.screen
        shown = str(app.screen.query_one("#diff-text", Static).render())
        await pilot.press("escape")  # back to the form: nothing written
        await pilot.pause()
        assert isinstance(app.screen, FormScreen)
        return shown.splitlines()


def test_the_diff_of_a_file_without_a_final_newline_shows_its_last_line_kept(
        make_home) -> None:
    """tmux 80x24, a routes file whose last line (a route with a password) has no
    line ending, ``a`` to append a route: the diff showed ``-last;;mx;usér;********``
    and ``+new-route;...``, as if the last route were replaced. difflib wrote the
    old last line without its line break, so the ``+last;...`` line that keeps it
    was glued to the end of the ``-`` line, where the password mask hid it.

    Should: the ``-`` line alone, ``\\ No newline at end of file``, ``+last;...``,
    then the new route (as ``git diff`` shows it)."""
    home = make_home(routes=NO_FINAL_NEWLINE, routemap="*;*;relay\n")
    lines = asyncio.run(_case_append_diff(home))
    assert "-last;;mx;usér;********;tls=may" in lines, lines
    assert "\\ No newline at end of file" in lines, lines
    assert "+last;;mx;usér;********;tls=may" in lines, lines
    assert "+new-route;127.0.0.9;mx;;" in lines, lines
    assert (home / "control" / "routes").read_bytes() == NO_FINAL_NEWLINE


def test_a_diff_line_ends_at_a_line_feed_only() -> None:
    """A comment holding a form feed (or U+2028): the diff split the line there, and
    its second half was shown with no ``' '``/``-``/``+`` mark, glued to the next."""
    from qremote.control.controlwrite import diff

    shown = diff("routemap", b"# page\x0cbreak\n*;*;r1\n", b"# page\x0cbreak\n*;*;r2\n")
    assert " # page\x0cbreak" in shown.split("\n"), shown


# A long route name pushed AUTH and TLS (and the routemap's notes) off the screen ----

LONG = "very-long-route-name-for-the-partner-network-in-europe"
LONG_ROUTES = (f"relay;127.0.0.2&127.0.0.3;127.0.0.1:2525;;;tls=none\n"
               f"{LONG};127.0.0.4|127.0.0.5;mx&relay1.partner.example.net:587;bob;pw;"
               f"tls=verify\n")


def _columns_width(table) -> int:
    return sum(c.get_render_width(table) for c in table.ordered_columns)


async def _case_long_name(home: Path, size: tuple[int, int], view: str
                          ) -> tuple[int, int, str]:
    from textual.widgets import DataTable

    app = QConsole(home)
    async with app.run_test(size=size) as pilot:
        await pilot.press(view)
        await pilot.pause()
        table = app.query_one(f"#{'routes' if view == '1' else 'routemap'}-table",
                              DataTable)
        await pilot.press("j")
        await pilot.pause()
        selected = str(app.query_one("#routes-selected").render()) if view == "1" else ""
        return _columns_width(table), table.scrollable_content_region.width, selected


def test_a_long_route_name_hides_no_column_at_80(make_home) -> None:
    """tmux 80x24, a route named for its partner network (54 characters): the narrow
    table kept every name whole, so the Remotes column was cut to "127.0." and AUTH
    and TLS of every route were off the screen, with only a scrollbar for a hint.

    Should: the name is cut like a long list (``…``); the line under the table
    gives it whole."""
    home = make_home(routes=LONG_ROUTES, routemap=f"*;*;{LONG}\n*;x.test;relay\n")
    for size in ((80, 24), (60, 20), (100, 30)):
        width, room, selected = asyncio.run(_case_long_name(home, size, "1"))
        assert width <= room, (size, width, room)
        assert selected.startswith(LONG + ": "), selected



async def _case_routemap_notes(home: Path, size: tuple[int, int]) -> tuple[int, int, str]:
    from textual.widgets import DataTable

    from tests.test_console import screen_text

    app = QConsole(home)
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.press("2")
        await pilot.pause()
        await pilot.resize_terminal(*size)  # the width the table was filled for changes
        await pilot.pause(0.3)
        table = app.query_one("#routemap-table", DataTable)
        return _columns_width(table), table.scrollable_content_region.width, screen_text(app)


def test_a_long_route_name_hides_no_routemap_note_at_80(make_home) -> None:
    """tmux 80x24, the same route in a routemap with Unicode domains and a rule
    that the catch-all above it shadows: the Route column took the name whole, so
    the Note column ("never matches: line 1 first", "route not defined") was off
    the screen, with only a scrollbar for a hint.

    Should: the long cells are cut (``…``) so that the notes show."""
    home = make_home(routes=LONG_ROUTES, routemap=(
        f"*;b\u00fccher-und-zeitschriften.example;{LONG}\n*;*;{LONG}\n*;x.test;relay\n"
        "*;y.test;nosuchroute\n"))
    for size in ((80, 24), (100, 30)):  # at 60 the titles alone take more
        width, room, shown = asyncio.run(_case_routemap_notes(home, size))
        assert width <= room, (size, width, room)
        assert "never matches: line 2 first" in shown, shown
        assert "route not defined" in shown, shown


# A filter that matches none of the new rows: the status line's count stood still ---

async def _case_filter_count(log: Path) -> tuple[str, str]:
    from qconsole.logs_view import LogsView
    from tests.test_logs import OK_TEXT, delivery_lines, write

    app = QConsole(log.parent / "no-home", log=log)
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(LogsView)
        for _ in range(100):
            if view.index is not None and view.index.history_done:
                break
            await pilot.pause(0.05)
        await pilot.press("/", *"nomatch", "enter")
        await pilot.pause(0.3)
        before = str(app.query_one("#log-status").render())
        for i in range(3):  # qmail-send goes on logging meanwhile
            write(log, delivery_lines(T1 + 60 * i, 2, 10 + i, "new@y.org", "success",
                                      OK_TEXT))
        for _ in range(40):
            await pilot.pause(0.05)
            if len(view.index) == 4:
                break
        await pilot.pause(0.5)  # two follow ticks
        return before, str(app.query_one("#log-status").render())


T1 = 1_795_000_000.0


def test_the_row_count_grows_under_a_filter_that_matches_nothing_new(
        tmp_path: Path) -> None:
    """tmux 100x30, a log being appended to (a writer loop), the filter
    ``zzznomatch`` (or ``result:def -closed``): the status line said "0 matches ·
    56 rows" for as long as the filter stayed, while the log grew by three
    deliveries a second: it was redrawn only when a new row matched."""
    from tests.test_logs import OK_TEXT, delivery_lines, write

    log = tmp_path / "current"
    write(log, delivery_lines(T1 - 600, 1, 1, "old@x.org", "success", OK_TEXT))
    before, after = asyncio.run(_case_filter_count(log))
    assert "0 matches for 'nomatch' · 1 row" in before, before
    assert "0 matches for 'nomatch' · 4 rows" in after, after


# --log without a qmail home: Simulate showed a plan from no configuration -----------

async def _case_simulate_no_home(app: QConsole) -> str:
    from qconsole.simulate_view import SimulateView

    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3", *"a@b.org", "tab", *"s39@x.test", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        view = app.query_one(SimulateView)
        return str(view.query_one("#simulate-output", Static).render())


def test_simulate_without_a_qmail_home_says_there_is_none(tmp_path: Path) -> None:
    """tmux 60x20, ``qconsole --log /tmp/.../syslog`` (no qmail home), Enter on a row,
    ``s`` (simulate now): the banner says "the routes, routemap and simulate views
    are empty", but Simulate showed a plan: "matched default ... the recipient
    domain's MX", "from (kernel) to mx:25", "helo vm" -- made from no control files
    at all, where ``qremote simulate`` says "control/: error: ... is not a
    directory ... qmail-remote would defer every delivery (#4.3.0)".

    Should: no plan; the view says there is no qmail home and what to pass."""
    log = tmp_path / "current"
    log.write_text("")
    shown = asyncio.run(_case_simulate_no_home(QConsole(tmp_path / "no-home", log=log)))
    assert "attempts" not in shown and "mx:25" not in shown, shown
    assert "is not a directory" in shown and "--qmail-home" in shown, shown


# A bounce whose message's info line is not in the log: "to the postmaster" ---------

def test_a_bounce_of_an_unknown_sender_is_not_said_sent_to_the_postmaster() -> None:
    """tmux 80x24, a multilog directory where ``bounce msg 42`` is logged without the
    ``info msg 42`` line before it (in an older rotated file, or written after ``end
    msg``): the row said "qmail-send sent a failure notice (bounce) to the
    postmaster" with "? → ?" beside it. qmail-send sends a bounce to the message's
    sender; only a bounce of a bounce (sender ``<>``) goes to the postmaster."""
    from qconsole.logformat import delivery

    unknown = delivery(b"@400000006b0000000000000a bounce msg 42 qp 77")
    assert unknown.status == "bounce"
    assert "postmaster" not in unknown.reply, unknown.reply
    assert "the sender" in unknown.reply, unknown.reply
    null = delivery(b"@400000006b0000000000000a bounce msg 42 qp 77",
                    info=b"@400000006b00000000000009 info msg 42: bytes 3 from <> qp 1 "
                         b"uid 2")
    assert "the postmaster" in null.reply, null.reply
    known = delivery(b"@400000006b0000000000000a bounce msg 42 qp 77",
                     info=b"@400000006b00000000000009 info msg 42: bytes 3 from "
                          b"<ops1@mx.example.org> qp 1 uid 2")
    assert known.reply.endswith("to ops1@mx.example.org"), known.reply


# The diff at 80x24: the new line was below the diff's box -------------------------

HAND = (b"# routes by hand\r\n# NAME;LOCAL;REMOTES;USER;PASS;OPTS\r\n"
        b"relay;127.0.0.2&127.0.0.3;127.0.0.1:2525;;;tls=none\r\n"
        b"smart;127.0.0.2;127.0.0.1:2526;alerts-and-notifications@very-long-company-name"
        b".example.com;s3cr3t;tls=encrypt\r\n"
        + f"{LONG};127.0.0.4|127.0.0.5;mx&relay1.partner-network.example.net:587&"
          f"relay2.partner-network.example.net:587;bob;pw;tls=verify\r\n".encode()
        + b"closed;127.0.0.2;127.0.0.1:1;;;tls=may\r\n")


async def _case_diff_change_shown(home: Path) -> str:
    from tests.test_console import screen_text

    app = QConsole(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("j", "j", "e")  # the partner network's route
        await pilot.pause()
        await pilot.press("tab", "end", "backspace", "6", "ctrl+s")  # .5 -> .6
        await pilot.pause(DiffScreen.REPEAT_GUARD + 0.1)
        assert isinstance(app.screen, DiffScreen), app.screen
        return screen_text(app)


def test_the_diff_shows_the_new_line_at_80x24(make_home) -> None:
    """tmux 80x24, a hand-written CRLF routes file, ``e`` on the route of the partner
    network, one local IP changed, ctrl+s: the diff's box (10 lines) showed the
    headers, three lines of context (one wrapped) and the removed line (three rows),
    and stopped there: the line that would be saved was below, out of sight, and
    Save was one Tab away.

    Should: the diff opens scrolled to its first change, so that the removed and
    the added lines are both on screen."""
    home = make_home(routes=HAND, routemap=f"*;*;{LONG}\n*;x.test;relay\n*;y.test;"
                     "smart\n*;z.test;closed\n")
    shown = asyncio.run(_case_diff_change_shown(home))
    assert f"-{LONG};127.0.0.4|127.0.0." in shown, shown  # wrapped there
    assert f"+{LONG};127.0.0.4|127.0.0." in shown, shown


# A log file that does not exist yet was never read once it appeared ---------------

async def _case_log_appears(log: Path) -> tuple[str, str, list[str]]:
    from qconsole.log_table import LogTable
    from tests.test_logs import OK_TEXT, delivery_lines, write

    app = QConsole(log.parent / "no-home", log=log)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.3)
        before = str(app.query_one("#log-status").render())
        write(log, delivery_lines(T1, 1, 1, "new@y.org", "success", OK_TEXT))
        model = app.query_one(LogTable).model
        for _ in range(40):
            await pilot.pause(0.05)
            if len(model):
                break
        await pilot.pause(0.3)
        return (before, str(app.query_one("#log-status").render()),
                [model.row(i).recipient for i in range(len(model))])


def test_a_log_file_that_appears_later_is_followed(tmp_path: Path) -> None:
    """tmux 80x24, ``qconsole --log /var/log/qmail/current`` started while multilog
    (or logrotate, for a syslog file) had renamed the file and not yet made the new
    one: "cannot read ...: No such file or directory", and the file, created a
    moment later and filling up, was never read (README: "the file is followed like
    tail -F"; tail -F says so and waits for it).

    Should: the status line says the file is missing and that it is waited for;
    once it appears its lines are read and the message goes."""
    log = tmp_path / "current"
    before, after, rows = asyncio.run(_case_log_appears(log))
    assert "No such file or directory" in before, before
    assert rows == ["new@y.org"], rows
    assert "No such file" not in after, after


# The form's field labels were cut at 80 columns ------------------------------------

async def _case_labels(home: Path, size: tuple[int, int]) -> list[str]:
    from textual.containers import VerticalScroll
    from textual.widgets import Label

    app = QConsole(home)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, FormScreen)
        room = app.screen.query_one(VerticalScroll).scrollable_content_region
        # each label's lines, as far as the form's room goes (the rest is cut)
        return [" ".join("".join(s.text for s in label.render_line(y))
                         [:room.right - label.region.x].strip()
                         for y in range(label.size.height)).strip()
                for label in app.screen.query(Label)]


def test_the_form_labels_read_whole_at_80_and_60(make_home) -> None:
    """tmux 80x24 (and 60x20), ``a`` in the routes view: the labels were cut at the
    form's edge, "Local IPs: ... empty = defaultoutgoi" and at 60 columns "...
    (round robin); e" and "Remotes: ... with & or |; em": what an empty field means
    (defaultoutgoingip, the MX) was not on the screen."""
    from qconsole.routes_view import FIELDS

    home = make_home(routes=LONG_ROUTES, routemap=f"*;*;{LONG}\n*;x.test;relay\n")
    for size in ((80, 24), (60, 20)):
        shown = asyncio.run(_case_labels(home, size))
        assert shown == [f.label for f in FIELDS], (size, shown)


# A short terminal: the findings left the table one row -----------------------------

async def _case_short(home: Path, size: tuple[int, int], view: str) -> tuple[int, int]:
    from textual.widgets import DataTable

    app = QConsole(home)
    async with app.run_test(size=size) as pilot:
        await pilot.press(view)
        await pilot.pause()
        name = "routes" if view == "1" else "routemap"
        table = app.query_one(f"#{name}-table", DataTable)
        panel = app.query_one(f"#{name}-findings")
        first = " ".join("".join(s.text for s in panel.render_line(y)).strip()
                         for y in (0, 1, 2))  # wrapped at 60
        assert "qremote check lists them all" in first, first  # what it cannot show
        return table.scrollable_content_region.height - 1, panel.size.height


def test_a_short_terminal_leaves_the_table_its_rows(make_home) -> None:
    """tmux 60x20, the hand-written CRLF routes file (8 warnings) and a routemap with
    two errors: the banner took three lines, the findings panel its eight, the
    selected route three, and the routes table showed one route, the routemap
    table three rules.

    Should: on a short terminal the findings panel gives way (its first line counts
    them all; ``qremote check`` lists them), so that the table shows several rows."""
    home = make_home(routes=HAND, routemap=f"*;*;{LONG}\n*;x.test;relay\n.bad;*;relay\n"
                     "bad line\n*;y.test;smart\n*;z.test;closed\n")
    for view in ("1", "2"):
        rows, panel = asyncio.run(_case_short(home, (60, 20), view))
        assert rows >= 4, (view, rows, panel)
        assert panel >= 3, (view, rows, panel)  # the count and an error still show


# The 2-second watch, firing while the console closes: a traceback -----------------

async def _case_watch_closing(home: Path) -> None:
    app = QConsole(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        with (home / "control" / "routes").open("ab") as f:
            f.write(b"other;;;;\n")  # another operator's edit, as the console quits
        # quitting removes the main screen's widgets before the App's timers stop
        await app.query_one("#banner").remove()
        app.watch_control()


def test_the_control_watch_while_the_console_closes_raises_nothing(make_home) -> None:
    """The full test suite on a busy machine (session 5's conflict test, which
    changes control/routes on disk and then quits): "NoMatches: No nodes match
    '#banner' on Screen(id='_default')" from ``watch_control``, a traceback on the
    terminal: the App's 2-second timer fired after quitting had taken the main
    screen's widgets away. An operator quitting just as another one saves a control
    file gets the same."""
    home = make_home(routes=LONG_ROUTES, routemap=f"*;*;{LONG}\n*;x.test;relay\n")
    asyncio.run(_case_watch_closing(home))
