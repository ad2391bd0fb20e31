"""Adversarial tests of the logs view and the layout around it (issue 11, tried again
in tmux on hand-made logs: rotation and truncation while watching, garbage lines,
``--log`` without a qmail home, 80x24)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from qconsole.app import QConsole
from qconsole.help_screen import help_text
from qconsole.log_table import LogTable
from qconsole.logs_view import LogsView
from tests.test_console import screen_text
from tests.test_logs import OK_TEXT, delivery_lines, write

NO_HOME = Path("/nonexistent-qmail-home")
STATUS = ("success", "deferral", "failure", "raw", "bounce")  # logindex's status codes
BOB_TEXT = ("Remote host said: 550 5.1.1 <bob@b.test>: recipient unknown in this "
            "domain, see https://example.net/why\nGiving up on 127.0.0.8.\n"
            "route=r2 local=127.0.0.2 remote=127.0.0.8:25 tls=none auth=none")


async def _ready(pilot, app: QConsole) -> LogsView:
    view = app.query_one(LogsView)
    while view.index is None or not view.index.history_done:
        await pilot.pause(0.05)
    await pilot.pause()
    return view


def _rows(app: QConsole) -> list[tuple[str, str, str]]:
    """Every row of the table: (recipient, status shown, status the index keeps)."""
    model = app.query_one(LogTable).model
    return [(model.row(i).recipient, model.row(i).status, STATUS[model.status(i)])
            for i in range(len(model))]


async def _case_truncated(log: Path, regrow_before_poll: bool) -> list[tuple[str, str, str]]:
    app = QConsole(NO_HOME, log=log)
    async with app.run_test(size=(120, 40)) as pilot:
        view = await _ready(pilot, app)
        assert [r[0] for r in _rows(app)] == ["alice@a.test"] * 3
        bob = delivery_lines(time.time(), 7, 300, "bob@b.test", "failure", BOB_TEXT)
        if regrow_before_poll:  # copytruncate, then qmail-send logs on before a poll
            write(log, bob, mode="w")
            for n in range(3):  # the file is larger than before the truncation
                write(log, delivery_lines(time.time(), 8 + n, 301 + n, f"carol{n}@c.test",
                                          "deferral", BOB_TEXT.replace("550", "451")))
            assert log.stat().st_size > view.index.source.end
        else:
            write(log, [], mode="w")  # copytruncate
            view.follow_tick()
            write(log, bob)
        view.follow_tick()
        await pilot.pause()
        return _rows(app)


def _alice_log(tmp_path: Path) -> Path:
    log = tmp_path / "qmail.log"  # a file qmail-send logs to (splogger), logrotated
    now = time.time() - 300
    for n in range(3):
        write(log, delivery_lines(now + n * 10, n + 1, 100 + n, "alice@a.test", "success",
                                  OK_TEXT))
    return log


def test_rows_read_before_a_truncation_keep_their_delivery(tmp_path: Path) -> None:
    """``qconsole --log qmail.log`` shows three successful deliveries to alice; then
    logrotate's copytruncate empties the file and qmail-send logs one failure to bob.

    Today: the three alice rows turn into bob's failure and two garbage rows (the
    rows are offsets read again from the file, which now holds other bytes): the
    screen shows bob three times, two raw fragments, and rows whose text says
    ``failure`` while the index counts them as successes (``n`` skips them).

    Should: rows read before the truncation keep showing what they were (or are
    dropped, the file having lost them); bob's failure is one row.
    """
    rows = asyncio.run(_case_truncated(_alice_log(tmp_path), regrow_before_poll=False))
    assert [r[0] for r in rows].count("bob@b.test") == 1, rows
    assert all(shown == kept and shown != "raw" for _, shown, kept in rows), rows


def test_a_truncation_followed_by_more_lines_before_a_poll_is_noticed(
        tmp_path: Path) -> None:
    """As above, but before the view's next poll (every 0.25 s) qmail-send has
    logged bob's failure and three deferrals to carol, so the file is already larger
    than it was before the truncation.

    Today: the truncation is not noticed at all (LogSource.poll compares only the
    inode and ``size < last size``): reading goes on from the old end, in the middle
    of a line: a raw garbage row; bob's failure and two of carol's deferrals are
    never rows of their own, while the alice rows now show them.

    Should: the truncation is noticed (e.g. the bytes just before the old end
    changed): bob and each carol are one row, read from the start of the file, and
    no garbage row.
    """
    rows = asyncio.run(_case_truncated(_alice_log(tmp_path), regrow_before_poll=True))
    names = [r[0] for r in rows]
    assert [names.count(n) for n in ("bob@b.test", "carol0@c.test", "carol1@c.test",
                                     "carol2@c.test")] == [1, 1, 1, 1], rows
    assert all(shown == kept and shown != "raw" for _, shown, kept in rows), rows


async def _case_dates(log: Path) -> str:
    app = QConsole(NO_HOME, log=log)
    async with app.run_test(size=(120, 40)) as pilot:
        await _ready(pilot, app)
        await pilot.pause()
        return str(app.query_one("#log-header").render())


def test_dates_show_even_when_the_newest_line_has_no_stamp(tmp_path: Path) -> None:
    """A log whose deliveries span three days ends with one line that has no stamp
    (garbage, e.g. a line another program wrote into the file).

    Today: the time column shows the time alone (``Time`` 8 columns wide): the rows
    span days but LogTable._check_dates compares the first and the last row only,
    and the last one has no time. Seen in tmux on a 5-day multilog log with one
    binary line appended.

    Should: README "with the date when the rows span several days": the header's
    time column is the dated one (14 columns).
    """
    log = tmp_path / "current"
    now = time.time()
    write(log, delivery_lines(now - 3 * 86400, 1, 100, "old@a.test", "success", OK_TEXT))
    write(log, delivery_lines(now - 60, 2, 101, "new@a.test", "success", OK_TEXT))
    write(log, ["garbage without a stamp \x1b[2J"])
    header = asyncio.run(_case_dates(log))
    assert header.startswith("Time" + " " * 11), repr(header)


async def _case_status_on_screen(log: Path, size: tuple[int, int]) -> str:
    app = QConsole(NO_HOME, log=log)
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.5)
        return screen_text(app)


def test_log_without_a_home_says_why_at_80x24(tmp_path: Path) -> None:
    """``qconsole --log /var/log/qmail/current`` (no qmail home, as README suggests)
    on an 80x24 terminal, the file not readable (here: missing).

    Today: the screen shows an empty table and no reason: the line "cannot read ...:
    No such file or directory" is the view's status line, which is drawn below the
    footer. The banner ("No qmail home at ...", two lines at 80 columns) pushes the
    views down without shrinking them (TabbedContent is ``height: auto``): the last
    two lines of every view are lost at 80x24 while a banner shows (one at 120
    columns: at 120x40 the last counters row hides under the footer).

    Should: README "an unreadable file is said on screen": the reason is visible.
    (``Views { height: 1fr; }`` in QConsole.CSS makes it so.)
    """
    shown = asyncio.run(_case_status_on_screen(tmp_path / "missing" / "current", (80, 24)))
    assert "cannot read" in shown, shown


def test_the_logs_status_line_shows_at_120x24_with_a_banner(tmp_path: Path) -> None:
    """Same as above on a 120x24 terminal (the banner is one line there).

    Today: the status line (file, rows, filter matches, "following") is under the
    footer. Should: it is on screen.
    """
    log = tmp_path / "current"
    write(log, delivery_lines(time.time() - 60, 1, 100, "anne@a.test", "success",
                              OK_TEXT))
    shown = asyncio.run(_case_status_on_screen(log, (120, 24)))
    assert f"1 row · following · {log}" in shown, shown


def test_help_names_every_view() -> None:
    """``?`` at 80x24: the help says "1-5 views" and has no line for the Worker view
    (key ``6``, its ``g`` refresh); README's keys paragraph says `1`–`5` too. Should:
    the help names the six views."""
    text = help_text().plain
    assert "1-6" in text and "Worker" in text, text


GREYLISTED = ("127.0.0.60 does not like recipient.\nRemote host said: 451 4.7.1 greylisted, "
              "try again later\nroute=route5 local=127.0.0.1 remote=127.0.0.60:587 "
              "tls=TLSv1.3 auth=none")


async def _case_reason_at_80(home: Path, log: Path) -> str:
    app = QConsole(home, log=log, initial="logs")
    async with app.run_test(size=(80, 24)) as pilot:
        await _ready(pilot, app)
        await pilot.pause()
        assert not app.query_one("#banner").has_class("shown")  # not the banner's fault
        return screen_text(app)


def test_why_a_delivery_deferred_shows_at_80_columns(make_home, tmp_path: Path) -> None:
    """At 80x24 the operator selects a deferral (the only row; the table has a dozen
    empty lines) to see why it deferred.

    Today: the reason, ``451 4.7.1 greylisted, try again later``, is nowhere on
    screen: the Reply column is 10 columns wide (``127.0.0.6…``) and the panel under
    the table (``max-height: 4``, a border line included) is filled by the first line,
    wrapped (time, msg, sender → recipient, result), and the TLS/route line; the
    reply, and the "enter: the whole story" hint, are cut.

    Should: "the logs view hides [not] the one thing an operator opens it for: why a
    delivery deferred" (issue 11), also at 80 columns: the reply is on screen (e.g.
    the reply before the TLS line, or a panel that grows when the table has room).
    """
    from tests.test_console_edit import _home

    log = tmp_path / "current"
    lines = delivery_lines(time.time() - 60, 3, 1234567, "someone@partner.example.org",
                           "deferral", GREYLISTED)
    lines[1] = lines[1].replace("<a@b.org>", "<newsletter@shop.example.com>")
    write(log, lines)
    shown = asyncio.run(_case_reason_at_80(_home(make_home), log))
    assert "greylisted" in shown, shown
