"""Configuration problems are loud: unparsable lines as rows, a banner on every view,
files changed on disk noticed; routemap wildcards warned about; USER and PASS
trimmed."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from textual.widgets import DataTable, Static

from qconsole.app import QConsole
from qconsole.form_screen import FormScreen
from qremote.control.check import check
from qremote.control.config import load_config
from qremote.control.routes import parse_route
from tests.test_console_edit import ROUTEMAP, ROUTES, _home

SIZE = (120, 40)
BAD_ROUTES = ROUTES.replace(b"gamma;;;;", b"gamma;;;;\ndelta;127.0.0.300;;;\n# end\n")


def _banner(app: QConsole) -> str:
    banner = app.query_one("#banner", Static)
    return str(banner.render()) if banner.has_class("shown") else ""


async def _case_a_bad_line_is_a_row_and_a_banner(home: Path) -> None:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one("#routes-table", DataTable)
        cells = [str(c) for c in table.get_row_at(table.row_count - 1)]
        assert cells[0] == "line 7: does not parse"
        assert cells[1] == "delta;127.0.0.300;;;"
        assert cells[2].startswith("local IP '127.0.0.300'")  # the reason, cut:
        await pilot.press("G")  # whole under the table
        assert "not a valid IPv4 address" in str(app.query_one("#routes-selected").render())
        for view in "12345":
            await pilot.press(view, "escape")  # escape: out of Simulate's first field
            assert app.query_one("TabbedContent").active == (
                "routes", "routemap", "simulate", "logs", "tcpto")[int(view) - 1]
            assert "qmail-remote is deferring every delivery: 1 error in control/routes" \
                in _banner(app), view
        # Fixed from the console: the form opens on the line's fields.
        await pilot.press("1", "G", "e")
        form = app.screen
        assert isinstance(form, FormScreen)
        assert form.query_one("#field-local_ips").value == "127.0.0.300"
        form.query_one("#field-local_ips").value = "127.0.0.3"
        await pilot.press("ctrl+s")
        await pilot.pause(0.5)
        await pilot.press("ctrl+s")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert _banner(app) == ""
    assert (home / "control" / "routes").read_bytes() == BAD_ROUTES.replace(
        b"delta;127.0.0.300;;;", b"delta;127.0.0.3;mx;;")  # as the form writes it


def test_a_line_that_does_not_parse_is_a_row_and_a_banner(make_home) -> None:
    home = _home(make_home)
    (home / "control" / "routes").write_bytes(BAD_ROUTES)
    asyncio.run(_case_a_bad_line_is_a_row_and_a_banner(home))


async def _case_files_changed_on_disk(home: Path) -> None:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")  # an edit in progress
        assert isinstance(app.screen, FormScreen)
        theirs = ROUTES + b"\nepsilon;;;;\n"
        (home / "control" / "routes").write_bytes(theirs)
        os.utime(home / "control" / "routes", ns=(1, 1))  # a different mtime for sure
        app.watch_control()
        await pilot.pause()
        assert "control/routes changed on disk" in _banner(app)
        assert isinstance(app.screen, FormScreen)  # the edit is left alone
        assert app.screen.query_one("#field-name").value == "alpha"
        await pilot.press("escape", "escape", "ctrl+r")
        await pilot.pause()
        names = [str(r[0]) for r in (app.query_one("#routes-table", DataTable).get_row_at(i)
                                     for i in range(4))]
        assert names == ["alpha", "beta", "gamma", "epsilon"]
        assert "changed on disk" not in _banner(app)
    assert (home / "control" / "routemap").read_bytes() == ROUTEMAP


def test_control_files_changed_on_disk_are_noticed(make_home) -> None:
    asyncio.run(_case_files_changed_on_disk(_home(make_home)))


def test_check_warns_about_wildcard_and_suffix_routemap_domains(make_home) -> None:
    home = make_home(routes="r1;;;;\n",
                     routemap="*;*.example.com;r1\n.example.org;*;r1\n*;x.example;r1\n")
    findings = [f for f in check(load_config(home)) if f.file == "routemap"]
    warned = {(f.line, f.severity) for f in findings if "match exactly" in f.text}
    assert warned == {(1, "warning"), (2, "warning")}
    assert not [f for f in findings if f.line == 3]


def test_user_and_pass_are_trimmed_like_the_other_fields() -> None:
    route = parse_route(" r1 ; 127.0.0.1 ; mx ;  user  ;  secret ")
    assert (route.name, route.user, route.password) == ("r1", "user", "secret")
