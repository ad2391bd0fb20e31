"""Console defects found in session 5 (issue 11): the footer under a form, the story's
long lines at 80 columns, typed-ahead palette keys."""

from __future__ import annotations

import asyncio
from itertools import takewhile

import pytest
from textual import events

from qconsole.app import QConsole
from qconsole.form_screen import FormScreen
from tests.test_console import screen_text
from tests.test_console_edit import _home


@pytest.mark.parametrize("key", ["e", "a"])
def test_the_footer_under_a_form_shows_the_forms_keys(make_home, key: str) -> None:
    """Found in tmux: under a form the footer showed the routes view's keys (``a``
    Add, ``x`` Delete, ``r`` Reveal) and the views' numbers, none of which acts there.
    Should: the form's own keys."""

    async def case() -> str:
        app = QConsole(_home(make_home))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.press(key)
            await pilot.pause(0.3)
            assert isinstance(app.screen, FormScreen)
            return screen_text(app).splitlines()[-1]

    footer = asyncio.run(case())
    assert "OK" in footer and "Cancel" in footer and "Next field" in footer, footer
    for other in ("Add", "Delete", "Duplicate", "Reveal", "Routemap", "Quit"):
        assert other not in footer, footer


async def _palette_keys(app: QConsole, pilot, query: str, *keys: str,
                        burst: str) -> None:
    """ctrl+p, then the query and the keys: in one read (each key queued before the
    first is handled) or each once the palette has answered the one before."""
    await pilot.press("ctrl+p")
    await pilot.pause(0.3)
    typed = [*query, *keys]
    if burst == "read":
        for key in typed:
            app.post_message(events.Key(key, key if len(key) == 1 else None))
    else:
        for key in typed:
            await pilot.press(key)
            await pilot.pause(0.3)
    for _ in range(20):  # what the palette ran settles
        await pilot.pause(0.05)


@pytest.mark.parametrize("burst", ["slow", "read"])
@pytest.mark.parametrize(("keys", "tab"), [(("down", "enter"), "routemap"),
                                          (("down", "down", "up", "enter"), "routemap"),
                                          (("down", "down", "enter"), "routes")])
def test_down_in_the_palette_moves_in_the_list_the_query_gave(
        make_home, burst: str, keys: tuple[str, ...], tab: str) -> None:
    """``route``, Down, Enter in one read (a fast typist, a paste). Before: Down moved
    in the list of every command, which the search for ``route`` then replaced with
    its top match highlighted, and Enter ran that (Routes). Should: the second match,
    Routemap, as when typed slowly. (``route`` lists Routes, Routemap, Add route:
    twice Down is Add route, a form over the routes view.)"""

    async def case() -> tuple[str, str]:
        app = QConsole(_home(make_home))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await _palette_keys(app, pilot, "route", *keys, burst=burst)
            return (type(app.screen).__name__,
                    app.screen_stack[0].query_one("TabbedContent").active)

    screen, active = asyncio.run(case())
    assert active == tab, (screen, active)
    assert screen == (FormScreen.__name__ if tab == "routes" else "Screen"), screen


LONG_REPLY = ("550-5.7.1 The user or domain that you are sending to (or from) has a "
              "policy that prohibited the mail that you sent. Please contact your "
              "domain administrator for further details")


def _inner(line: str) -> str:
    """A line of the story inside the screen's border and padding."""
    return line[2:].rstrip("█▊▎▌▐▕▏▇▆▅▄▃▂▁ ")  # (a border, padding; a scroll bar)


def test_the_story_wraps_long_lines_under_their_text(tmp_path, demo_home) -> None:
    """At 80x24 a long ``Remote host said:`` reply and a long raw log line went on at
    the story's left edge, under the labels. Should: under their text (a hanging
    indent), the labels alone at the left."""
    from qconsole.logformat import logsafe
    from tests.test_console_story import _open, _ready
    from tests.test_logs import OK_TEXT, stamp, write

    log = tmp_path / "current"
    t = 1_700_000_000
    text = OK_TEXT.replace("Remote host said: 250 ok", f"Remote host said: {LONG_REPLY}")
    write(log, [f"{stamp(t)} new msg 10",
                f"{stamp(t)} info msg 10: bytes 300 from <shop@shop.test> qp 1 uid 2",
                f"{stamp(t + 1)} starting delivery 1: msg 10 to remote anne@domaine2.com",
                f"{stamp(t + 3)} delivery 1: success: {logsafe(text)}",
                f"{stamp(t + 5)} end msg 10"])

    async def case() -> list[str]:
        app = QConsole(demo_home, log=log)
        async with app.run_test(size=(80, 24)) as pilot:
            await _ready(pilot, app)
            await _open(pilot, app, "anne@domaine2.com")
            shown = []
            for _ in range(6):  # the whole story, a screenful at a time
                shown += screen_text(app).splitlines()[1:-2]
                await pilot.press("pagedown")
                await pilot.pause()
            return shown

    shown = list(dict.fromkeys(map(_inner, asyncio.run(case()))))
    said = next(i for i, line in enumerate(shown) if "Remote host said:" in line)
    assert shown[said].startswith("  Remote host said: 550-5.7.1"), shown[said]
    reply = list(takewhile(lambda line: line.startswith(" " * 20) and line.strip(),
                           shown[said + 1:]))
    assert reply, shown
    assert " ".join(line.strip() for line in [shown[said][20:], *reply]).split() \
        == LONG_REPLY.split(), shown
    raw = next(i for i, line in enumerate(shown) if "delivery 1: success:" in line)
    assert all(line.startswith("    ") and line.strip() for line in shown[raw + 1:raw + 3]
               ), shown


def test_the_simulate_view_wraps_long_lines_under_their_text(make_home) -> None:
    """At 80 columns route5's line (its local IPs and remotes) and its AUTH line went
    on at the view's left edge, under the field names. Should: under the value, as
    ``qremote simulate`` on a terminal."""
    from qconsole.simulate_view import SimulateView

    home = make_home(routes="route5;1.1.1.1&2.2.2.2&3.3.3.3&4.4.4.4;mx&6.6.6.6:587;"
                            "relay-user;pass;\n", routemap="*;example.com;route5\n")

    async def case() -> list[str]:
        app = QConsole(home)
        async with app.run_test(size=(80, 30)) as pilot:
            await pilot.pause()
            await pilot.press("3", *"a@sender.org", "tab", *"x@example.com", "enter")
            view = app.query_one(SimulateView)
            while view.result is None:
                await pilot.pause(0.05)
            await pilot.pause()
            return screen_text(app).splitlines()

    lines = [line[1:].rstrip("▇▆▅▄▃▂▁▊▎▌▐▕▏ ") for line in asyncio.run(case())]
    route = next(i for i, line in enumerate(lines) if line.startswith("  route       "))
    auth = next(i for i, line in enumerate(lines) if line.startswith("  auth        "))
    for i in (route, auth):
        assert lines[i + 1].startswith(" " * 14) and lines[i + 1][14] != " ", lines
    assert lines[auth - 1].startswith("  tls ")


def test_a_long_local_ip_list_takes_the_room_the_remotes_leave_at_80_columns(
        make_home) -> None:
    """Found in tmux (session 6): at 80 columns a list of four local IPs was cut
    (``127.0.0.1&127.0.0.2&12…``) while the Remotes column had room to spare: the
    two lists shared the room 55/45 whatever they held. Should: a list that needs
    less than its share leaves the rest to the other."""
    from textual.widgets import DataTable

    local = "127.0.0.11&127.0.0.22&127.0.0.33"
    home = make_home(routes=f"r1;{local};mx&127.0.0.60:587;;\nr2;127.0.0.2;mx;;\n",
                     routemap="*;*;r1\n")

    async def case() -> list[str]:
        app = QConsole(home)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            table = app.query(DataTable).first()
            return [str(cell) for cell in table.get_row_at(0)]

    row = asyncio.run(case())
    assert row[1] == local and row[2] == "mx&127.0.0.60:587", row
