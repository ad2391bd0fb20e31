"""Session 9's operator sweep of the console (issue 11), as found in tmux at 80x24,
120x40, 200x60 and 60x20 on a hand-made qmail home and logs: each test is one thing
an operator met there, replayed with Pilot."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual import events
from textual.widgets import Button

from qconsole.app import QConsole
from qconsole.confirm_screen import ConfirmScreen
from qconsole.diff_screen import DiffScreen
from qremote.delivery.tcpto import Memory
from tests.test_console_edit import ROUTEMAP, _home
from tests.test_console_logs import _wait

SIZE = (80, 24)
_NAMES = {"\t": "tab", "\r": "enter", "\x1b": "escape"}


async def _burst(app: QConsole, pilot, text: str) -> None:
    """Every key of ``text`` queued before the first is handled (one read, as tmux
    send-keys or an SSH session delivers them), then what they opened settles."""
    for c in text:
        app.post_message(events.Key(_NAMES.get(c, c), None if c in _NAMES else c))
    await pilot.pause(0.3)
    for _ in range(5):
        await pilot.pause()


# A Tab typed ahead of a question is no answer to it ----------------------------------
#
# In tmux, `send-keys x Tab Enter` on a routemap rule: the Enter was ignored (typed
# before the diff was on screen), but the Tab, a priority binding of the App, moved the
# focus from Cancel to Save all the same; the next Enter, pressed a second later (the
# operator's next line), deleted the rule. Same with `X Tab` in the failover memory.

async def _case_delete_rule_tab_ahead(home: Path) -> tuple[str | None, bool]:
    async with QConsole(home).run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await _burst(pilot.app, pilot, "x\t")  # delete, and a Tab in the same read
        screen = pilot.app.screen
        assert isinstance(screen, DiffScreen)
        focused = pilot.app.focused
        focus = focused.id if isinstance(focused, Button) else None
        await pilot.pause(0.2)
        await pilot.press("enter")  # later, on its own: the answer of the focus
        await pilot.pause()
        return focus, isinstance(pilot.app.screen, DiffScreen)


def test_a_tab_typed_with_x_leaves_the_focus_on_cancel(make_home) -> None:
    home = _home(make_home)
    focus, _ = asyncio.run(_case_delete_rule_tab_ahead(home))
    assert focus == "diff-cancel"
    assert (home / "control" / "routemap").read_bytes() == ROUTEMAP
    assert not (home / "control" / "routemap.bak").exists()


async def _case_clear_memory_tab_ahead(home: Path) -> str | None:
    async with QConsole(home).run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await _burst(pilot.app, pilot, "X\t")  # clear all, and a Tab in the same read
        assert isinstance(pilot.app.screen, ConfirmScreen)
        focused = pilot.app.focused
        focus = focused.id if isinstance(focused, Button) else None
        await pilot.pause(0.2)
        await pilot.press("enter")
        await pilot.pause()
        return focus


def test_a_tab_typed_with_clear_all_leaves_the_focus_on_cancel(make_home) -> None:
    home = _home(make_home)
    (home / "queue" / "lock").mkdir(parents=True)
    memory = Memory.for_home(home)
    memory.record(("127.0.0.2", "127.0.0.20", 465))
    before = memory.read()
    assert asyncio.run(_case_clear_memory_tab_ahead(home)) == "confirm-cancel"
    assert memory.read() == before


# The logs table in the theme's colours ------------------------------------------------
#
# Every other table is drawn in the theme's foreground and background; the logs table
# wrote its rows (and the blank lines under them) in the terminal's own default
# colours: with the default dark theme on a light terminal, the rows were dark text on
# white in the middle of a dark console, and `success` (the theme's light green) and
# `deferral` (its yellow) on white could hardly be read; with textual-light on a dark
# terminal, dark green on black.

async def _case_log_rows_colours(home: Path, log: Path, theme: str) -> list:
    from qconsole.log_table import LogTable
    from qconsole.logs_view import LogsView

    app = QConsole(home, log=log, theme_name=theme)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogsView)
        table = app.query_one(LogTable)
        await _wait(pilot, lambda: view.index is not None and view.index.history_done
                    and len(table.model))
        await pilot.pause()
        background = table.rich_style.bgcolor
        assert background is not None
        styles = []
        for y in (0, table.size.height - 1):  # the row, and a blank line below
            for seg in table.render_line(y):
                if seg.text.strip() or y:
                    style = seg.style
                    styles.append((y, seg.text, style is not None
                                   and style.bgcolor == background,
                                   style is not None and style.color is not None))
        return styles


def test_the_log_rows_are_drawn_in_the_theme_colours(make_home, tmp_path: Path) -> None:
    import time

    from tests.test_logs import OK_TEXT, delivery_lines, write

    home = _home(make_home)
    log = tmp_path / "current"
    write(log, delivery_lines(time.time() - 60, 1, 100, "a@x.org", "success", OK_TEXT))
    for theme in ("textual-dark", "textual-light"):
        styles = asyncio.run(_case_log_rows_colours(home, log, theme))
        assert styles and all(bg and fg for _, _, bg, fg in styles), (theme, styles)


# Routemap at 80 columns: the route of each rule -------------------------------------
#
# At 80x24 every route name longer than five characters was cut to four and `…`
# (`client00` ... `client39` all read `clie…`, `smarthost` `smar…`): the floors of the
# cut were the titles "Sender domain" and "Recipient domain" (16 columns for a column
# of `*`), plus the notes, and nothing under the table shows the selected rule whole.
# Which route a rule sends to is what the view is for.

ROUTES_MANY = "".join(f"client{i:02d};127.0.0.{10 + i};;;\n" for i in range(12)) + (
    "smarthost;;127.0.0.50:2525;;\n")
ROUTEMAP_MANY = ("*.example.com;*;smarthost\n"  # '*' inside a domain is literal
                 "acme.example;*;smarthost\n"
                 "acme.example;gmail.com;client00\n"  # never matches: line 2 first
                 + "".join(f"client{i}.example;*;client{i:02d}\n" for i in range(12))
                 + "*;*;smarthost\n")


async def _case_routemap_routes_at_80(home: Path) -> list[tuple[str, str]]:
    from textual.widgets import DataTable

    async with QConsole(home).run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        table = pilot.app.query_one("#routemap-table", DataTable)
        return [(str(table.get_row_at(i)[3]), str(table.get_row_at(i)[4]))
                for i in range(table.row_count)]


def test_routemap_at_80_columns_shows_each_route_whole(make_home) -> None:
    home = make_home(routes=ROUTES_MANY, routemap=ROUTEMAP_MANY)
    rows = asyncio.run(_case_routemap_routes_at_80(home))
    routes = [route for route, _ in rows]
    assert routes == ["smarthost", "smarthost", "client00",
                      *(f"client{i:02d}" for i in range(12)), "smarthost"]
    notes = [note for _, note in rows]
    assert notes[0] == "'*' inside a domain is literal"
    assert notes[2] == "never matches: line 2 first"


# The counters at 80 columns ----------------------------------------------------------
#
# `c` at 80x24 on a log whose routes include a long name (64 characters, written in
# control/routes by a provisioning script): the Name column took its width, and the
# Success, Deferral and Failure columns were off the right edge, with nothing to say
# so (only "S" of "Success" showed). And after the terminal was made narrower (200
# columns, then 80), the Name column kept the width of the wide terminal.

LONG_ROUTE = "customer-" + "x" * 55


async def _case_counters_at_80(home: Path, log: Path, size: tuple[int, int],
                               ) -> tuple[int, int]:
    from textual.widgets import DataTable

    from qconsole.log_table import LogTable
    from qconsole.logs_view import LogsView

    app = QConsole(home, log=log)
    async with app.run_test(size=size) as pilot:
        view = app.query_one(LogsView)
        table = app.query_one(LogTable)
        await _wait(pilot, lambda: view.index is not None and view.index.history_done
                    and len(table.model))
        counters = app.query_one("#log-counters", DataTable)
        if counters.has_class("hidden"):
            await pilot.press("c")
        view.show_counters()
        await pilot.pause()
        if size != SIZE:  # the terminal made narrower while the console runs
            await pilot.resize_terminal(*SIZE)
            await pilot.pause()
            if counters.has_class("hidden"):  # (by default on a short terminal)
                await pilot.press("c")
            view.show_counters()  # (every 2 s)
            await pilot.pause()
        await pilot.pause()
        assert counters.row_count >= 2
        columns = list(counters.columns.values())
        failure_edge = sum(c.get_render_width(counters) for c in columns[:5])
        return failure_edge, counters.size.width


def test_the_counters_show_their_counts_at_80_columns(make_home, tmp_path: Path) -> None:
    import time

    from tests.test_logs import delivery_lines, write

    home = _home(make_home)
    log = tmp_path / "current"
    text = ("127.0.0.1 accepted message.\nRemote host said: 250 ok\n"
            f"route={LONG_ROUTE} local=127.0.0.2 remote=127.0.0.20:25 tls=none auth=none")
    write(log, delivery_lines(time.time() - 60, 1, 100, "a@x.org", "success", text))
    for size in (SIZE, (200, 60)):
        edge, width = asyncio.run(_case_counters_at_80(home, log, size))
        assert edge <= width, size


# route:? and route:(local) ------------------------------------------------------------
#
# The Route column (and the story, and the counters) shows `?` for a delivery whose
# report has no detail line (the stock qmail-remote, still installed on a host, or
# the reports from before qremote was) and `(local)` for a local delivery. Typing
# what the column shows, `route:?`, found nothing (0 matches) on a log holding 226 of
# them; `route:(local)` the same: a route: term read only a detail line, in the
# single-row test (logquery.Term._detail_holds) and in the bulk search (the detail
# bits of logscan.Plan, its required bytes `route=? local=`). Now route:? holds for a
# report without a detail line (Term.bare, Plan.bare_bits) and route:(local) stands
# for it and a local start line (logquery.NO_ROUTE).

STOCK_TEXT = "192.0.2.5 accepted message.\nRemote host said: 250 ok\n"


async def _case_route_column_values(home: Path, log: Path, query: str) -> list[str]:
    from qconsole.log_table import LogTable
    from qconsole.logs_view import LogsView

    app = QConsole(home, log=log)
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one(LogsView)
        table = app.query_one(LogTable)
        await _wait(pilot, lambda: view.index is not None and view.index.history_done)
        await pilot.press("slash", *query)
        await _wait(pilot, lambda: view.filtered is not None and view.filtered.complete)
        await pilot.pause()
        return [table.model.row(i).route for i in range(len(table.model))]


def test_the_filter_finds_the_route_the_column_shows(make_home, tmp_path: Path) -> None:
    import time

    from tests.test_logs import OK_TEXT, delivery_lines, stamp, write

    home = _home(make_home)
    log = tmp_path / "current"
    now = time.time() - 600
    write(log, [*delivery_lines(now, 1, 100, "a@x.org", "success", OK_TEXT),
                *delivery_lines(now + 10, 2, 101, "b@y.org", "success", STOCK_TEXT),
                f"{stamp(now + 20)} starting delivery 3: msg 102 to local p@acme.example",
                f"{stamp(now + 21)} delivery 3: success: did_0+0+1/"])
    assert asyncio.run(_case_route_column_values(home, log, "route:?")) == ["?"]
    assert asyncio.run(_case_route_column_values(home, log, "route:(local)")) == ["(local)"]


# The story's "Now" while the configuration has errors --------------------------------
#
# A line that does not parse was added to control/routemap (by hand, on disk; ctrl+r
# read it): the banner said qmail-remote defers every delivery, and Simulate said so
# (#4.3.0). Enter on a row: the story, which covers the banner, said "Now
# routemap:5 acme.example;*;smarthost → route smarthost", today's answer, when
# today's answer is a deferral of every delivery (delivery_screen.current_answer asks
# the planner's select(), which does not look at the configuration's errors; plan()
# does).

async def _case_story_now(home: Path, log: Path) -> str:
    from qconsole.delivery_screen import DeliveryScreen
    from qconsole.log_table import LogTable

    app = QConsole(home, log=log)
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one("LogsView")
        await _wait(pilot, lambda: view.index is not None and view.index.history_done)
        table = app.query_one(LogTable)
        table.move_to(len(table.model) - 1)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DeliveryScreen)
        story = str(app.screen.query_one("#delivery-text").render())
        return next(line for line in story.split("\n") if line.startswith("Now"))


def test_the_story_says_today_every_delivery_defers(make_home, tmp_path: Path) -> None:
    import time

    from tests.test_logs import OK_TEXT, delivery_lines, write

    home = make_home(routes="route1;;;;\n", routemap="*;*;route1\nbad;line\n")
    log = tmp_path / "current"
    write(log, delivery_lines(time.time() - 60, 1, 100, "a@x.org", "success", OK_TEXT))
    now = asyncio.run(_case_story_now(home, log))
    assert "#4.3.0" in now and "defer" in now, now


# The findings an edit brings, when the file has one of the same words ------------------
#
# routemap line 2, `acme.example;gmail.com;r2`, never matches (line 1,
# `acme.example;*`, comes first): a warning the file has. The operator adds
# `acme.example;yahoo.com;r2` above line 3: it never matches either, for the same
# reason, but the diff said nothing: "the warnings the edit brings" were those whose
# text the configuration did not have yet, and "never matches: line 1 (acme.example;*)
# matches first" it had. The same comparison let an edit add an error the file had
# already for another line: a second rule naming the undefined route `ghost` was
# saved without a word.

ROUTEMAP_SHADOW = ("acme.example;*;r1\n"
                   "acme.example;gmail.com;r2\n"
                   "*;*;r1\n")


async def _case_add_rule(home: Path, line: int, values: dict[str, str]) -> tuple:
    from textual.widgets import DataTable

    from qconsole.form_screen import FormScreen
    from tests.test_console_edit import _fill

    async with QConsole(home).run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await pilot.pause()
        table = pilot.app.query_one("#routemap-table", DataTable)
        table.move_cursor(row=line - 1)
        await pilot.press("a")
        await pilot.pause()
        await _fill(pilot, **values)
        screen = pilot.app.screen
        if isinstance(screen, DiffScreen):
            return "diff", str(screen.query_one("#diff-status").render())
        assert isinstance(screen, FormScreen)
        return "form", ""


def test_a_new_rule_that_never_matches_is_warned_of(make_home) -> None:
    home = make_home(routes="r1;;;;\nr2;;;;\n", routemap=ROUTEMAP_SHADOW)
    where, status = asyncio.run(_case_add_rule(
        home, 3, {"sender": "acme.example", "recipient": "yahoo.com", "route": "r2"}))
    assert where == "diff"
    assert "routemap:3: warning: never matches: line 1" in status, status


def test_a_second_rule_to_an_undefined_route_is_refused(make_home) -> None:
    home = make_home(routes="r1;;;;\n", routemap="a.test;*;ghost\n*;*;r1\n")
    where, _ = asyncio.run(_case_add_rule(
        home, 2, {"sender": "b.test", "recipient": "*", "route": "ghost"}))
    assert where == "form"
    assert (home / "control" / "routemap").read_bytes() == b"a.test;*;ghost\n*;*;r1\n"


async def _case_add_route_status(home: Path) -> str:
    from tests.test_console_edit import add_route

    async with QConsole(home).run_test(size=(120, 40)) as pilot:
        await add_route(pilot)
        assert isinstance(pilot.app.screen, DiffScreen)
        return str(pilot.app.screen.query_one("#diff-status").render())


def test_a_new_line_of_a_crlf_file_brings_no_crlf_warning(make_home) -> None:
    """Counted, the findings an edit brings include no line-ending warning for the new
    line: it takes the file's usual CRLF, as each of its lines warns already."""
    home = make_home(routes=b"alpha;;;;\r\nbeta;;;;\r\n", routemap=b"*;*;alpha\r\n")
    status = asyncio.run(_case_add_route_status(home))
    assert "route 'eps' is not used" in status and "CRLF" not in status, status


# The worker view at 80 columns with a long host ---------------------------------------
#
# A delivery in flight to a 120-character host (a recipient domain is anyone's choice)
# at 80x24: the Host column took its width and Recipients and Client pid were off the
# right edge; once that delivery ended, the Host column kept the width (DataTable's
# clear() keeps each column's widest cell), so the next deliveries' counts stayed
# hidden until the console was restarted.

def _status(*hosts: str) -> dict:
    return {"pid": 1, "uid": 0, "uptime": 5, "socket": "/x", "deliveries": 0,
            "in_flight": [{"id": i, "stage": "smtp 127.0.0.99:2526", "age": 5.0,
                           "host": host, "recipients": 1, "client_pid": 4242}
                          for i, host in enumerate(hosts, 1)], "connections": []}


async def _case_worker_columns(home: Path) -> list[tuple[int, int, int]]:
    from textual.widgets import DataTable

    from qconsole.worker_view import WorkerView

    async with QConsole(home).run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await pilot.pause()
        view = pilot.app.query_one(WorkerView)
        table = pilot.app.query_one("#worker-table", DataTable)
        edges = []
        for number, doc in enumerate((_status("a" * 120 + ".example"),
                                      _status("gmail.com")), 10**6):
            view.show(doc, None, number)  # (numbered past the view's own questions)
            await pilot.pause()
            await pilot.pause()
            columns = list(table.columns.values())
            edges.append((sum(c.get_render_width(table) for c in columns), table.size.width,
                          columns[3].get_render_width(table)))
        return edges


def test_the_worker_table_keeps_its_counts_on_screen(make_home) -> None:
    home = _home(make_home)
    long_host, after = asyncio.run(_case_worker_columns(home))
    assert long_host[0] <= long_host[1], long_host
    assert after[2] == len("gmail.com") + 2, after  # not the long host's width


# A control file that is a symbolic link ------------------------------------------------
#
# control/routes -> /etc/qremote/routes (kept by configuration management, as many
# sites keep qmail's control files): a route added in the console and saved replaced
# the link with a regular file (controlwrite._write_file renamed its temporary file
# over the path), said "saved", and left the link's target, the file the site's
# tooling reads and deploys, without the change: the next deployment dropped it. Now
# the target is written (as vi writes through a link) and the link stays.

def test_saving_a_linked_control_file_writes_its_target(make_home, tmp_path: Path) -> None:
    home = make_home(routemap="*;*;alpha\n")
    target = tmp_path / "etc" / "routes"
    target.parent.mkdir()
    target.write_bytes(b"alpha;;;;\n")
    (home / "control" / "routes").symlink_to(target)

    async def add_and_save() -> None:
        from tests.test_console_edit import _save, add_route

        async with QConsole(home).run_test(size=(120, 40)) as pilot:
            await add_route(pilot)
            await _save(pilot)

    asyncio.run(add_and_save())
    assert (home / "control" / "routes").is_symlink()
    assert target.read_bytes() == b"alpha;;;;\neps;;mx;;\n"
    assert (home / "control" / "routes.bak").read_bytes() == b"alpha;;;;\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["routes"]  # (no temporary)


# A form's title at 80x24 ----------------------------------------------------------------
#
# `e` on a route at 80x24: the form opened scrolled by a line, its first field at
# the top and its title above the screen: "Edit route beta (control/routes line 4)"
# or "Fix routes line 9" (which line is being changed) and its keys ("ctrl+s OK ·
# escape leaves a field, then cancels") were not shown, though the first field fits
# under them. At 60x20 the Name field's label was gone too.

async def _case_form_top(home: Path, size: tuple[int, int]) -> tuple[float, str]:
    from textual.containers import VerticalScroll

    from qconsole.form_screen import FormScreen

    async with QConsole(home).run_test(size=size) as pilot:
        await pilot.press("j", "e")
        await pilot.pause()
        await pilot.pause(0.2)
        assert isinstance(pilot.app.screen, FormScreen)
        focused = pilot.app.focused
        return (pilot.app.screen.query_one(VerticalScroll).scroll_y,
                focused.id if focused is not None else "")


def test_a_form_opens_with_its_title_on_screen(make_home) -> None:
    home = _home(make_home)
    for size in (SIZE, (60, 20)):
        assert asyncio.run(_case_form_top(home, size)) == (0, "field-name"), size


# ctrl+s typed twice, on a busy machine ------------------------------------------------
#
# ctrl+s in the form opens the diff; a second ctrl+s in the same read (an editor's
# reflex, or a key held) is ignored only while it comes within 0.4 s of the diff's
# creation, measured when it is handled: on a machine busy enough that the diff took
# longer to be shown (its check of the whole configuration), the second ctrl+s,
# typed before the diff was on screen, saved the file unseen.

async def _case_double_ctrl_s(home: Path, monkeypatch) -> None:
    import time

    slow = DiffScreen.new_warnings

    def busy(self):
        time.sleep(0.6)  # (a loaded machine, a large configuration)
        return slow(self)

    monkeypatch.setattr(DiffScreen, "new_warnings", busy)
    async with QConsole(home).run_test(size=(120, 40)) as pilot:
        await pilot.press("a")
        await pilot.pause()
        screen = pilot.app.screen
        screen.query_one("#field-name").value = "eps"
        pilot.app.post_message(events.Key("ctrl+s", None))
        pilot.app.post_message(events.Key("ctrl+s", None))
        await pilot.pause(1.5)
        await pilot.pause()
        assert isinstance(pilot.app.screen, DiffScreen)


def test_a_ctrl_s_typed_before_the_diff_shows_does_not_save(make_home, monkeypatch) -> None:
    home = _home(make_home)
    before = (home / "control" / "routes").read_bytes()
    asyncio.run(_case_double_ctrl_s(home, monkeypatch))
    assert (home / "control" / "routes").read_bytes() == before


# Fixing a routes line with an unknown option -------------------------------------------
#
# `relay;;127.0.0.1:465;u;p;tls=verify,retries=3` (an option qremote does not know,
# from another program's syntax): a red row. `e` to fix it: the form's TLS said `may`
# (line_values read "verify,retries=3" as the policy, unknown, so the default), and
# removing the option in the form, then saving, downgraded the route from verify to
# may, in a diff line one reads as "the option is gone".

def test_fixing_a_line_keeps_its_tls_policy() -> None:
    from qconsole.routes_view import line_values

    for options, tls in (("tls=verify,retries=3", "verify"),
                         ("retries=3, TLS=encrypt", "encrypt"),
                         ("tls=none", "none"), ("", "may")):
        assert line_values(f"relay;;127.0.0.1:465;u;p;{options}")["tls"] == tls, options


# A report line longer than a read chunk ------------------------------------------------
#
# A remote may answer with up to 1 MiB of reply (qremote.delivery.smtp.MAX_REPLY) and
# a report holds it whole: qmail-send logs a delivery line of over a megabyte. In the
# logs view that one delivery was its row plus two or more rows "not a delivery line,
# shown as read" of 65,536 bytes of the reply each (the index reads the log in 1 MiB
# chunks, and a line longer than a chunk was cut into pieces: logsource.CHUNK), with
# the cursor, following, on the last of those pieces. Now LogSource.backward reads such
# a line from where it begins (up to LONG_LINE back).

def test_a_long_report_is_one_row(make_home, tmp_path: Path) -> None:
    import time

    from tests.test_logs import delivery_lines, write

    text = ("Connected to 192.0.2.1 but sender was rejected.\nRemote host said: 451 "
            + "Z" * 3_000_000 + "\nroute=route1 local=127.0.0.2 remote=192.0.2.1:25 "
            "tls=none auth=none")
    log = tmp_path / "current"
    write(log, delivery_lines(time.time() - 60, 1, 100, "a@x.org", "deferral", text))
    statuses = asyncio.run(_case_statuses(_home(make_home), log))
    assert statuses == ["deferral"]


async def _case_statuses(home: Path, log: Path) -> list[str]:
    from qconsole.log_table import LogTable
    from qconsole.logs_view import LogsView

    app = QConsole(home, log=log)
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one(LogsView)
        await _wait(pilot, lambda: view.index is not None and view.index.history_done)
        table = app.query_one(LogTable)
        return [table.model.row(i).status for i in range(len(table.model))]
