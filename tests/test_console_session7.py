"""The logs view over a long history (session 7): a filter's rows reach the screen a
few times a second, not once a block, and a replaced filter lets go of its rows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from qconsole import logs_view, logsearch
from qconsole.app import QConsole
from qconsole.logs_view import LogsView
from tests.test_console_story import _ready
from tests.test_logs import T0, delivery_lines, write


@pytest.fixture
def many_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A log of 3,000 deliveries searched in 16 KiB blocks (about 60), in the
    console's process."""
    log = tmp_path / "current"
    lines = []
    for i in range(3000):
        lines += delivery_lines(T0 + i, i, 10_000 + i, f"u{i}@x.org",
                                ("success", "deferral")[i % 2], "route=r local=- "
                                "remote=- tls=none auth=none")
    write(log, lines)
    monkeypatch.setattr(logsearch, "BLOCK", 16 << 10)
    monkeypatch.setattr(logsearch, "PARALLEL_BLOCKS", 1 << 30)
    return log


async def _filter(home: Path, log: Path, texts: tuple[str, ...]) -> tuple[int, int, list]:
    app = QConsole(home, log=log, initial="logs")
    async with app.run_test(size=(120, 30)) as pilot:
        await _ready(pilot, app)
        view = app.query_one(LogsView)
        posts = 0
        grew = view._filter_grew

        def counted(search, steps):
            nonlocal posts
            posts += 1
            grew(search, steps)

        view._filter_grew = counted  # type: ignore[method-assign]
        searches = []
        for text in texts:
            view.apply_filter(text)
            searches.append(view.filtered)
            await pilot.pause()
        while not view.filtered.complete:
            await pilot.pause(0.05)
        await pilot.pause()
        return posts, len(view.filtered), searches


def test_a_filters_rows_reach_the_screen_a_few_times_a_second(
        many_blocks: Path, demo_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each block searched posted its rows to the screen, and each post drew it again:
    over a 1 GB history, 3.7 s of the console's CPU for `shop` (the helpers' blocks
    waited for it), against 0.5 s for the search itself.

    Should: the first rows at once, then a post every GROW_SECONDS at most; the same
    rows in the end."""
    monkeypatch.setattr(logs_view, "GROW_SECONDS", 3600.0)
    posts, found, _ = asyncio.run(_filter(demo_home, many_blocks, ("x.org",)))
    assert found == 3000
    assert posts <= 2  # the first rows, then the rest (one block: 60 posts)


def test_a_replaced_filter_lets_go_of_its_rows(many_blocks: Path, demo_home: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A filter typed after another: the first search's rows stayed in memory until its
    worker noticed (a block later), while the next one's filled; with a history of
    millions of rows, both at once went over 300 MB.

    Should: the replaced search holds no rows; the new one finds its own."""
    monkeypatch.setattr(logs_view, "GROW_SECONDS", 0.0)
    _, found, (first, second) = asyncio.run(
        _filter(demo_home, many_blocks, ("x.org", "result:deferral")))
    assert found == 1500
    assert len(first) == 0 and len(second) == 1500


_ROUNDS = """
import sys
from array import array
from qconsole import memory
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
if sys.argv[1] == "1":
    memory.settle()
base, keep, grown = rss(), [], []
for rnd in range(5):  # five filters, each growing its arrays as a search's rows come
    arrs = [array("q") for _ in range(4)]
    junk = []
    for k in range(300):
        for a in arrs:
            a.extend(range(k * 1000, k * 1000 + 8000))
        junk.append([str(i) for i in range(500)])  # a step's small objects
        if k % 50 == 0:
            keep.append(b"x" * 200)  # a few that outlive the search
    del arrs, junk
    if sys.argv[1] == "1":
        memory.trim()
    grown.append(rss() - base)
print(max(grown))
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads /proc")
def test_the_memory_of_a_finished_search_goes_back_to_the_system() -> None:
    """Five filters typed one after another (each 77 MB of arrays grown row by row,
    then freed): with glibc's defaults the console kept 120-140 MB more after them
    (380 MB with a 1 GB history), the freed arrays in a heap it never trims.

    Should: with the console's settings (memory.settle, memory.trim after each
    search) it keeps what one search needs, not the sum."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", _ROUNDS, "1"], capture_output=True,
                         text=True, check=True, cwd=root, timeout=120).stdout
    assert float(out) < 45
