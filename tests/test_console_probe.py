"""Probe from the console against a server that accepts and never speaks: bounded by
a short read timeout, cancellable, and never overwriting a newer simulation."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from qconsole import simulate_view
from qconsole.app import QConsole
from qconsole.simulate_view import SimulateView
from tests.support.listener import close_listener

SIZE = (120, 40)


class Mute:
    """A TCP server on 127.0.0.1 that accepts connections and says nothing until
    released (then it closes them)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        self.released = threading.Event()
        self.conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.released.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)
            self.accepted.set()

    def release(self) -> None:
        self.released.set()
        for conn in self.conns:
            conn.close()
        close_listener(self.sock, self._thread)


@pytest.fixture
def mute() -> Iterator[Mute]:
    server = Mute()
    yield server
    server.release()


def _home(make_home, port: int) -> Path:
    return make_home(routes=f"stall;;127.0.0.1:{port};;\n", routemap="*;*;stall\n")


async def _until(pilot, predicate, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


async def _case_a_probe_is_bounded_by_a_short_read_timeout(home: Path) -> None:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(SimulateView)
        await pilot.press("3", *"a@b.org", "tab", *"c@d.org")
        started = time.monotonic()
        await pilot.click("#probe")
        await _until(pilot, lambda: view.result is not None, 15)
        assert time.monotonic() - started < 10  # not timeoutremote's 1200 s
        probe = view.result["deliveries"][0]["attempts"][0]["probe"]
        assert not probe["ok"] and probe["stage"] == "session", probe


def test_a_probe_is_bounded_by_a_short_read_timeout(make_home, mute: Mute,
                                                     monkeypatch) -> None:
    monkeypatch.setattr(simulate_view, "PROBE_READ_TIMEOUT", 0.5)
    asyncio.run(_case_a_probe_is_bounded_by_a_short_read_timeout(_home(make_home,
                                                                       mute.port)))


async def probing(app, pilot, mute: Mute, recipient: str = "c@d.org"):  # type: ignore[no-untyped-def]
    """A probe of a@b.org to ``recipient`` begun in the Simulate view, its attempt
    held by ``mute``: (the view, its output)."""
    view = app.query_one(SimulateView)
    output = app.query_one("#simulate-output", Static)
    await pilot.press("3", *"a@b.org", "tab", *recipient)
    await pilot.click("#probe")
    await _until(pilot, lambda: mute.accepted.is_set()
                 and "Probing attempt 1 of 1" in str(output.render()), 10)
    return view, output


async def _case_cancel_and_a_newer_simulation_win(home: Path, mute: Mute) -> None:
    app = QConsole(home)
    async with app.run_test(size=SIZE) as pilot:
        view, output = await probing(app, pilot, mute, "old@d.org")
        await pilot.press("escape")  # cancels the probe
        shown = str(output.render())
        assert "Probe cancelled" in shown
        # The plan made before the probe began stays shown above the note.
        assert "old@d.org" in shown and "stall" in shown, shown
        assert shown.index("stall") < shown.index("Probe cancelled")
        assert not view.probing
        recipients = app.query_one("#recipients", Input)
        recipients.value = "new@e.org"
        recipients.focus()
        await pilot.press("enter")  # a newer simulation, while the probe still waits
        await _until(pilot, lambda: view.result is not None, 10)
        assert view.result["deliveries"][0]["recipients"] == ["new@e.org"]
        mute.release()  # the old probe's attempt ends now
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert view.result["deliveries"][0]["recipients"] == ["new@e.org"]
        assert "new@e.org" in str(output.render()) and "old@d.org" not in str(
            output.render())


def test_a_cancelled_probe_never_overwrites_a_newer_simulation(make_home, mute: Mute,
                                                              monkeypatch) -> None:
    monkeypatch.setattr(simulate_view, "PROBE_READ_TIMEOUT", 30.0)
    asyncio.run(_case_cancel_and_a_newer_simulation_win(_home(make_home, mute.port),
                                                         mute))
