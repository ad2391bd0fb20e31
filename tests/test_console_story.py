"""The whole story of a delivery: Enter on a log row, and where it leads."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from textual.widgets import DataTable, Input

from qconsole.app import QConsole
from qconsole.delivery_screen import DeliveryScreen
from qconsole.log_table import LogTable
from qconsole.logformat import logsafe
from qconsole.logs_view import LogsView
from qconsole.simulate_view import SimulateView
from tests.test_console import screen_text
from tests.test_logs import OK_TEXT, stamp, write

SIZE = (120, 40)
# The report format qmail-remote writes: failed attempts before the detail line, the
# detail line last.
FAILED = ("127.0.0.20 does not like recipient.\n"
          "Remote host said: 550 5.1.1 <anne@domaine2.com>: no such user here\n"
          "Giving up on 127.0.0.20.\n"
          "Failed attempts: 192.0.2.1:25 from 127.0.0.2: cannot connect to 192.0.2.1:25: "
          "Connection refused; [2001:db8::1]:25 from 2001:db8::2: greeting failed: 421 "
          "busy\n"
          "route=route2 local=127.0.0.2 remote=127.0.0.20:465 tls=TLSv1.3 auth=PLAIN")


def story_log(path: Path, now: float) -> None:
    """Message 10: one failure (then its bounce) and one success; a stock
    qmail-remote row; a local delivery."""
    t = now - 60
    write(path, [
        f"{stamp(t)} new msg 10",
        f"{stamp(t)} info msg 10: bytes 300 from <shop@shop.test> qp 1 uid 2",
        f"{stamp(t + 1)} starting delivery 1: msg 10 to remote anne@domaine2.com",
        f"{stamp(t + 1)} status: local 0/10 remote 1/20",
        f"{stamp(t + 1)} starting delivery 2: msg 10 to remote bob@relay.test",
        f"{stamp(t + 1)} status: local 0/10 remote 2/20",
        f"{stamp(t + 3)} delivery 1: failure: {logsafe(FAILED)}",
        f"{stamp(t + 3)} status: local 0/10 remote 1/20",
        f"{stamp(t + 4)} delivery 2: success: {logsafe(OK_TEXT)}",
        f"{stamp(t + 4)} status: local 0/10 remote 0/20",
        f"{stamp(t + 5)} bounce msg 10 qp 77",
        f"{stamp(t + 5)} end msg 10",
        f"{stamp(t + 6)} new msg 11",
        f"{stamp(t + 6)} info msg 11: bytes 300 from <a@b.org> qp 2 uid 2",
        f"{stamp(t + 6)} starting delivery 3: msg 11 to remote c@d.org",
        f"{stamp(t + 7)} delivery 3: success: 10.0.0.1_accepted_message./"
        "Remote_host_said:_250_ok/",
        f"{stamp(t + 7)} starting delivery 4: msg 11 to local e@here.org",
        f"{stamp(t + 7)} delivery 4: success: did_0+0+1/",
        f"{stamp(t + 8)} end msg 11",
    ])


async def _ready(pilot, app: QConsole) -> LogTable:
    view = app.query_one(LogsView)
    while view.index is None or not view.index.history_done:
        await pilot.pause(0.05)
    await pilot.pause()
    return app.query_one(LogTable)


async def _open(pilot, app: QConsole, recipient: str) -> DeliveryScreen:
    table = app.query_one(LogTable)
    for i in range(len(table.model)):
        if table.model.row(i).recipient == recipient:
            table.move_to(i)
            break
    await pilot.press("enter")
    await pilot.pause()
    assert isinstance(app.screen, DeliveryScreen)
    return app.screen


async def _case_enter_tells_the_whole_story(home: Path, log: Path) -> None:
    app = QConsole(home, log=log)
    async with app.run_test(size=SIZE) as pilot:
        table = await _ready(pilot, app)
        statuses = [table.model.row(i).status for i in range(len(table.model))]
        assert statuses == ["failure", "success", "bounce", "success", "success"]
        status = str(app.query_one("#log-status").render())
        assert "qmail-send local 0/10 remote 0/20" in status  # the newest status: line
        screen = await _open(pilot, app, "anne@domaine2.com")
        story = str(screen.query_one("#delivery-text").render())
        for said in (
                "Delivery 1 of msg 10: failure",
                "From        shop@shop.test",
                "To          anne@domaine2.com  (remote)",
                "Route       route2", "Local IP    127.0.0.2",
                "Remote      127.0.0.20:465", "TLS, AUTH   TLSv1.3, PLAIN",
                "Failed attempts: 2",
                "1. 192.0.2.1:25 from 127.0.0.2: cannot connect to 192.0.2.1:25: "
                "Connection refused",
                "2. [2001:db8::1]:25 from 2001:db8::2: greeting failed: 421 busy",
                "Remote host said: 550 5.1.1 <anne@domaine2.com>: no such user here",
                "Giving up on 127.0.0.20.",
                # qremote's planner, asked now: the routemap line and its route.
                "Now         routemap:4  *;domaine2.com;route2 → route route2",
                "the current configuration's answer",
                "qmail-send's deliveries when it started (in use/limit)\n"
                "  local 0/10 remote 1/20",
                "qmail-send sent the failure notice to the sender (bounce msg 10 qp 77)",
                "info msg 10: bytes 300 from <shop@shop.test>",
                "starting delivery 1: msg 10 to remote anne@domaine2.com",
                "delivery 1: failure: 127.0.0.20_does_not_like_recipient."):
            assert said in story, said
        assert "route=route2" not in story.split("Log lines")[0]  # read, not repeated
        # From here: every delivery of the message ...
        await pilot.press("a")
        await pilot.pause()
        view = app.query_one(LogsView)
        assert view.filtered is not None and str(view.filtered.query) == "msg:10"
        while not view.filtered.complete:
            await pilot.pause(0.05)
        rows = [table.model.row(i) for i in range(len(table.model))]
        assert [(r.status, r.recipient) for r in rows] == [
            ("failure", "anne@domaine2.com"), ("success", "bob@relay.test"),
            ("bounce", "shop@shop.test")]
        # ... the route that carried it, the rule that matches now, a simulation now.
        await _open(pilot, app, "anne@domaine2.com")
        await pilot.press("r")
        assert app.query_one("TabbedContent").active == "routes"
        routes = app.query_one("#routes-table", DataTable)
        assert str(routes.get_row_at(routes.cursor_row)[0]) == "route2"
        await pilot.press("4")
        await _open(pilot, app, "anne@domaine2.com")
        await pilot.press("m")
        assert app.query_one("TabbedContent").active == "routemap"
        rules = app.query_one("#routemap-table", DataTable)
        assert str(rules.get_row_at(rules.cursor_row)[0]) == "4"
        await pilot.press("4")
        await _open(pilot, app, "anne@domaine2.com")
        await pilot.press("s")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.query_one("#sender", Input).value == "shop@shop.test"
        assert app.query_one("#recipients", Input).value == "anne@domaine2.com"
        result = app.query_one(SimulateView).result
        assert result is not None and result["deliveries"][0]["route"] == "route2"


def test_enter_tells_the_whole_story_of_a_delivery(tmp_path: Path, demo_home: Path,
                                                   ) -> None:
    log = tmp_path / "current"
    story_log(log, time.time())
    asyncio.run(_case_enter_tells_the_whole_story(demo_home, log))


async def _case_stock_and_local_rows(home: Path, log: Path) -> None:
    app = QConsole(home, log=log)
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot, app)
        screen = await _open(pilot, app, "c@d.org")
        story = str(screen.query_one("#delivery-text").render())
        assert "the report has no detail line: the stock qmail-remote" in story
        await pilot.press("escape")
        screen = await _open(pilot, app, "e@here.org")
        story = str(screen.query_one("#delivery-text").render())
        assert "a local delivery (qmail-local): no route" in story
        await pilot.press("escape")
        counters = app.query_one(LogsView).index.counters.table(time.time())
        routes = {name: (ok, deferred, failed) for kind, name, ok, deferred, failed, _
                  in counters if kind == "route"}
        assert routes == {"route1": (1, 0, 0), "route2": (0, 0, 1),
                          "? (no detail line)": (1, 0, 0), "(local)": (1, 0, 0)}
        assert "-" not in routes
        app.query_one(LogsView).show_counters()
        await pilot.press("c")
        await pilot.pause()
        assert "(local)" in screen_text(app)


def test_stock_and_local_rows_are_not_counted_under_dash(tmp_path: Path,
                                                          demo_home: Path) -> None:
    log = tmp_path / "current"
    story_log(log, time.time())
    asyncio.run(_case_stock_and_local_rows(demo_home, log))
