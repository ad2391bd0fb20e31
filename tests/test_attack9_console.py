"""Issue 9 on a real qmail, the console's share: a routes line that does not parse
because its password holds a ``;`` is shown as a red row with its raw text, password
included.

README (Passwords): "No finding, report, simulate output (text or JSON) or console
screen shows a password: a finding about a routes line never quotes the PASS field or
anything after it". Seen in ``qconsole --read-only`` on a real qmail home, for
``semi;127.0.0.1;127.0.0.1:2525;bob;pa;ss``: the Routes view's red row read
``semi;127.0.0.1;127.0.0.1:2525;bob;pa;ss…`` (cut at 40 characters only: a shorter line
shows all of it).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import DataTable

from qconsole.app import QConsole

SIZE = (120, 40)
# The password is "Pa55;W0rd-Tail": split on its ';', the line has a sixth field that
# is not key=value; with one more ';' it has seven fields.
ROUTES = (b"ok;;127.0.0.1:2525;;\n"
          b"six;;h.example;bob;Pa55;W0rd-Tail\n"
          b"seven;;h.example;bob;Pa55;W0rd;Tail9\n")
ROUTEMAP = b"*;*;ok\n"


async def _rows(home: Path) -> list[str]:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.query_one("#routes-table", DataTable)
        return [" | ".join(str(c) for c in table.get_row_at(i))
                for i in range(table.row_count)]


def test_a_routes_line_that_does_not_parse_never_shows_its_password(make_home) -> None:
    home = make_home(routes=ROUTES, routemap=ROUTEMAP)
    (home / "control" / "routes").chmod(0o640)
    rows = asyncio.run(_rows(home))
    bad = [row for row in rows if "does not parse" in row]
    assert len(bad) == 2, rows  # both lines are red rows, with their reasons ...
    for row in bad:
        for secret in ("Pa55", "W0rd", "Tail"):  # ... and no part of the password
            assert secret not in row, row
