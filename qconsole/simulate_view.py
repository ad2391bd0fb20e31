"""The simulate view: sender and recipients in, the planner's answer out.

The answer is what ``qremote simulate --json`` prints (the same planner and the same
rendering functions); DNS runs in a worker thread so the screen stays responsive.
Probe connects for each attempt as ``--probe`` does, with a progress bar; each
connect is bounded by ``timeoutconnect`` and each read by PROBE_READ_TIMEOUT, and
Cancel (or Escape) stops it. Every run has a generation number: a worker started
for an older input never writes into the view once a newer run has started.

The planning and probing run in a daemon thread that the worker waits for: quitting
wakes the worker at once, so the console exits without waiting for a probe's attempt
(Textual runs a thread worker on the event loop's default executor, which
``asyncio.run`` joins; a daemon thread ends with the process). Cancel and a newer run
wake the older runs' workers too: the executor has few threads (6 on 2 CPUs), and
probes cancelled while their attempts wait would hold them all.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, Input, ProgressBar, Static

from qconsole import theme
from qconsole.fields import ViewField
from qconsole.hanging import Hanging, HangingStatic
from qconsole.safe_text import plain, printable
from qremote.control.config import Config
from qremote.planning.simulate import (
    bad_recipients,
    null_sender,
    simulate,
    text_lines,
    to_dict,
)

PROBE_READ_TIMEOUT = 10.0  # seconds a probe waits for each reply (not timeoutremote)


class Superseded(Exception):
    """A newer run (or Cancel) replaced this probe: it stops after its attempt."""


class SimulateView(Vertical):
    """Where would this mail go?"""

    DEFAULT_CSS = """
    SimulateView Horizontal { height: auto; }
    SimulateView Input { width: 1fr; }
    SimulateView #simulate-output { padding: 0 1; }
    SimulateView Button { margin-left: 1; }
    SimulateView #probe-progress, SimulateView #cancel { display: none; }
    SimulateView #probe-progress { padding: 0 0 0 2; }
    SimulateView #probe-progress.shown, SimulateView #cancel.shown { display: block; }
    """

    def __init__(self, config: Config, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.result: dict[str, Any] | None = None
        self.generation = 0  # bumped by every run and by Cancel
        self._planned: tuple[int, Hanging] = (-1, Hanging())  # the plan a probe began with
        self.probing = False
        self._view_gone = threading.Event()  # the view is gone: no run writes into it
        self._wakes: set[threading.Event] = set()  # the workers waiting for their run
        self._wakes_lock = threading.Lock()

    def on_unmount(self) -> None:
        self._view_gone.set()
        self._wake_workers()

    def _wake_workers(self) -> None:
        """The workers waiting for a run return (their runs' results are not shown:
        the view is gone, or ``generation`` moved on)."""
        with self._wakes_lock:
            for wake in self._wakes:
                wake.set()

    def compose(self) -> ComposeResult:
        with Horizontal():
            # (whole in a half of 60 columns)
            yield MailField(placeholder="sender, <> for a bounce", id="sender")
            yield MailField(placeholder="recipients, space apart", id="recipients")
        with Horizontal():
            yield Checkbox("Use DNS", value=False, id="use-dns")
            yield Button("Simulate", variant="primary", id="run")
            yield Button("Probe", id="probe")
            yield Button("Cancel", variant="warning", id="cancel")
        # A row of its own: beside the buttons it was off a 100-column screen.
        yield ProgressBar(id="probe-progress", show_eta=False)
        with VerticalScroll(id="simulate-scroll"):
            yield HangingStatic("Enter a sender and recipients, then Simulate.",
                                id="simulate-output")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id in ("run", "probe"):
            self.run_simulation(probe=event.button.id == "probe")
        elif event.button.id == "cancel":
            self.action_cancel()

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape" and self.field_key("escape"):
            event.stop()

    def field_key(self, key: str) -> bool:
        """Escape cancels a probe and leaves the field (True: it did something)."""
        if key != "escape":
            return False
        done = self.probing
        if self.probing:
            self.action_cancel()
        if isinstance(self.app.focused, Input):  # Escape leaves the field, now
            self.screen.set_focus(self.query_one("#simulate-scroll"))
            done = True
        return done

    def focus_first(self) -> None:
        """The sender field takes the focus when the view opens (now: keys typed
        right after the view's key must land in it)."""
        self.screen.set_focus(self.query_one("#sender", Input))

    def set_mail(self, sender: str, recipients: str) -> None:
        """Fill the fields (the logs view's "simulate now") and plan."""
        self.query_one("#sender", Input).value = sender
        self.query_one("#recipients", Input).value = recipients
        self.run_simulation()

    def action_cancel(self) -> None:
        """Stop the probe: its result, whenever it comes, is not shown; the plan
        stays, when it was made before the probe began."""
        if not self.probing:
            return
        planned = self._planned if self._planned[0] == self.generation else None
        self.generation += 1
        self._wake_workers()
        self._probing(False)
        note = ("Probe cancelled (an attempt under way ends within timeoutconnect, "
                "or 10 s for a reply).", theme.style(self.app, "warning"))
        if planned is None:
            self.query_one("#simulate-output", Static).update(Text(*note))
            return
        text = Hanging()
        text.lines = [*planned[1].lines]
        text.add("")
        text.add(note)
        self.query_one("#simulate-output", Static).update(text)

    def action_simulate(self) -> None:
        """Plan the entered mail."""
        self.run_simulation()

    def action_probe(self) -> None:
        """Plan the entered mail and probe each attempt."""
        self.run_simulation(probe=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.run_simulation()

    def run_simulation(self, probe: bool = False) -> None:
        """Plan the deliveries of the entered mail (and probe each attempt)."""
        self.generation += 1
        self._wake_workers()
        self._probing(False)
        sender = self.query_one("#sender", Input).value.strip()
        recipients = self.query_one("#recipients", Input).value.split()
        bad = bad_recipients(recipients)
        output = self.query_one("#simulate-output", Static)
        if not recipients or bad:
            output.update(plain(f"Recipient {bad[0]!r} has no domain (write user@domain)"
                                if bad else "Enter at least one recipient.",
                                theme.style(self.app, "error")))
            return
        if not getattr(self.app, "has_home", True):  # no control files: no plan
            output.update(plain(
                f"control/: error: {self.config.home / 'control'} is not a directory; "
                "qmail-remote would defer every delivery (#4.3.0). Start qconsole with "
                "--qmail-home DIR.", theme.style(self.app, "error")))
            return
        output.update("Planning…")
        if probe:
            self._probing(True)
        self._plan(self.generation, null_sender(sender), recipients,
                   self.query_one("#use-dns", Checkbox).value, probe)

    def _probing(self, on: bool) -> None:
        self.probing = on
        self.query_one("#cancel").set_class(on, "shown")
        if not on:
            self.query_one("#probe-progress").remove_class("shown")

    @work(thread=True, exclusive=True, group="simulate")
    def _plan(self, generation: int, sender: str, recipients: list[str], use_dns: bool,
              probing: bool = False) -> None:
        """Run :meth:`_run` in a daemon thread and wait for it, or for the view to go."""
        wake = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            try:
                self._run(generation, sender, recipients, use_dns, probing)
            except Superseded:
                pass
            except BaseException as exc:  # (to the worker: Textual reports it)
                if not self._view_gone.is_set():
                    failed.append(exc)
            finally:
                wake.set()

        with self._wakes_lock:  # (a newer run or Cancel wakes the workers under it)
            if self._view_gone.is_set() or generation != self.generation:
                return
            self._wakes.add(wake)
        try:
            threading.Thread(target=run, name="qconsole-simulate", daemon=True).start()
            wake.wait()
        finally:
            with self._wakes_lock:
                self._wakes.discard(wake)
        if failed:
            raise failed[0]

    def _post(self, *call: Any) -> None:
        """``call_from_thread``, unless the view is gone (then the run stops)."""
        if self._view_gone.is_set():
            raise Superseded
        self.app.call_from_thread(*call)

    def _run(self, generation: int, sender: str, recipients: list[str], use_dns: bool,
             probing: bool) -> None:
        lookup = None
        if use_dns:
            from qremote.planning.dns import DnsLookup

            lookup = DnsLookup(self.config.dnsservers)
        config = self.config
        plans = simulate(config, sender, recipients, lookup)
        probes = None
        if probing:  # the plan alone first: a cancelled probe leaves it shown
            self._post(self._plan_made, generation, self._text(config, plans, lookup, None))
            from qremote.planning.probe import probe

            def progress(done: int, total: int, result: dict[str, Any] | None) -> None:
                if generation != self.generation:
                    raise Superseded
                self._post(self._progress, generation, done, total, result)

            total = sum(len(p.attempts) for p in plans)
            progress(0, total, None)
            probes = probe(config, plans, lookup, progress,
                           read_timeout=min(PROBE_READ_TIMEOUT, config.timeoutremote))
        result = to_dict(config, plans, lookup, probes)
        self._post(self._show, generation, result, self._text(config, plans, lookup, probes))

    @staticmethod
    def _text(config: Any, plans: Any, lookup: Any, probes: Any) -> Hanging:
        """As qremote simulate prints it on a terminal: a long line wraps under its
        text."""
        text = Hanging()
        for line, indent in text_lines(config, plans, lookup, probes):
            text.add(printable(line), label=indent)
        return text

    def _plan_made(self, generation: int, text: Hanging) -> None:
        if generation == self.generation:
            self._planned = (generation, text)

    def _progress(self, generation: int, done: int, total: int,
                  result: dict[str, Any] | None) -> None:
        if generation != self.generation:
            return
        bar = self.query_one("#probe-progress", ProgressBar)
        bar.add_class("shown")
        bar.update(total=max(total, 1), progress=done)
        said = "" if result is None else (" — last: " + ("ok" if result["ok"] else
                                                         result.get("text", "failed")))
        self.query_one("#simulate-output", Static).update(
            plain(f"Probing attempt {min(done + 1, total)} of {total}…{said}   "
                  "(Cancel or Escape stops it)"))

    def _show(self, generation: int, result: dict[str, Any], text: Hanging) -> None:
        if generation != self.generation:
            return  # a newer run started: this answer is for another input
        self._probing(False)
        self.result = result
        self.query_one("#simulate-output", Static).update(text)


class MailField(ViewField):
    """The sender and recipients fields."""

    BINDINGS = [Binding("enter", "field_key('enter')", "Simulate", priority=True)]
