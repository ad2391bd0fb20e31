"""The simulate view: sender and recipients in, the planner's answer out.

The answer is what ``qremote simulate --json`` prints (the same planner and the same
rendering functions); DNS runs in a worker thread so the screen stays responsive.
Probe connects for each attempt as ``--probe`` does, with a progress bar.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, Input, ProgressBar, Static

from qremote.config import Config
from qremote.simulate import bad_recipients, null_sender, simulate, to_dict, to_text


class SimulateView(Vertical):
    """Where would this mail go?"""

    DEFAULT_CSS = """
    SimulateView Horizontal { height: auto; }
    SimulateView Input { width: 1fr; }
    SimulateView #simulate-output { padding: 0 1; }
    SimulateView Button { margin-left: 1; }
    SimulateView #probe-progress { display: none; padding: 1 0 0 2; }
    SimulateView #probe-progress.shown { display: block; }
    """

    def __init__(self, config: Config, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.result: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Input(placeholder="sender (empty or <> for bounces)", id="sender")
            yield Input(placeholder="recipients, separated by spaces", id="recipients")
        with Horizontal():
            yield Checkbox("Use DNS", value=False, id="use-dns")
            yield Button("Simulate", variant="primary", id="run")
            yield Button("Probe", id="probe")
            yield ProgressBar(id="probe-progress", show_eta=False)
        with VerticalScroll():
            yield Static("Enter a sender and recipients, then Simulate.",
                         id="simulate-output")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id in ("run", "probe"):
            self.run_simulation(probe=event.button.id == "probe")

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
        sender = self.query_one("#sender", Input).value.strip()
        recipients = self.query_one("#recipients", Input).value.split()
        bad = bad_recipients(recipients)
        output = self.query_one("#simulate-output", Static)
        if not recipients or bad:
            output.update(Text(f"Recipient {bad[0]!r} has no domain (write user@domain)"
                               if bad else "Enter at least one recipient.", style="red"))
            return
        output.update("Planning…")
        self._plan(null_sender(sender), recipients,
                   self.query_one("#use-dns", Checkbox).value, probe)

    @work(thread=True, exclusive=True)
    def _plan(self, sender: str, recipients: list[str], use_dns: bool,
              probing: bool = False) -> None:
        lookup = None
        if use_dns:
            from qremote.dns import DnsLookup

            lookup = DnsLookup(self.config.dnsservers)
        plans = simulate(self.config, sender, recipients, lookup)
        probes = None
        if probing:
            from qremote.probe import probe

            total = sum(len(p.attempts) for p in plans)
            self.app.call_from_thread(self._progress, 0, total, None)
            probes = probe(self.config, plans, lookup,
                           lambda done, total, result: self.app.call_from_thread(
                               self._progress, done, total, result))
        result = to_dict(self.config, plans, lookup, probes)
        text = to_text(self.config, plans, lookup, probes)
        self.app.call_from_thread(self._show, result, text)

    def _progress(self, done: int, total: int, result: dict[str, Any] | None) -> None:
        bar = self.query_one("#probe-progress", ProgressBar)
        bar.add_class("shown")
        bar.update(total=max(total, 1), progress=done)
        said = "" if result is None else (" — last: " + ("ok" if result["ok"] else
                                                         result.get("text", "failed")))
        self.query_one("#simulate-output", Static).update(
            Text(f"Probing attempt {min(done + 1, total)} of {total}…{said}"))

    def _show(self, result: dict[str, Any], text: str) -> None:
        self.query_one("#probe-progress").remove_class("shown")
        self.result = result
        self.query_one("#simulate-output", Static).update(Text(text))
