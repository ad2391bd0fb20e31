"""The simulate view: sender and recipients in, the planner's answer out.

The answer is what ``qremote simulate --json`` prints (the same planner and the same
rendering functions); DNS runs in a worker thread so the screen stays responsive.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Static

from qremote.config import Config
from qremote.simulate import bad_recipients, null_sender, simulate, to_dict, to_text


class SimulateView(Vertical):
    """Where would this mail go?"""

    DEFAULT_CSS = """
    SimulateView Horizontal { height: auto; }
    SimulateView Input { width: 1fr; }
    SimulateView #simulate-output { padding: 0 1; }
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
        with VerticalScroll():
            yield Static("Enter a sender and recipients, then Simulate.",
                         id="simulate-output")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "run":
            self.run_simulation()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.run_simulation()

    def run_simulation(self) -> None:
        """Plan the deliveries of the entered mail."""
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
                   self.query_one("#use-dns", Checkbox).value)

    @work(thread=True, exclusive=True)
    def _plan(self, sender: str, recipients: list[str], use_dns: bool) -> None:
        lookup = None
        if use_dns:
            from qremote.dns import DnsLookup

            lookup = DnsLookup(self.config.dnsservers)
        plans = simulate(self.config, sender, recipients, lookup)
        result = to_dict(self.config, plans, lookup)
        text = to_text(self.config, plans, lookup)
        self.app.call_from_thread(self._show, result, text)

    def _show(self, result: dict[str, Any], text: str) -> None:
        self.result = result
        self.query_one("#simulate-output", Static).update(Text(text))
