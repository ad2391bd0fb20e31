"""The ``?`` help screen (also "Help" in the ctrl+p palette): what each key does.

Written to be read at 80x24: lines under 76 columns, one short block per view; it
scrolls when the terminal is smaller still."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = (
    ("qconsole", "qremote's operator console"),
    ("", ""),
    ("Everywhere", "1-6 views · ? help · ctrl+p every action by name · q quit\n"
                   "ctrl+r read control/ again · tab next field or button\n"
                   "A text field takes every key: escape leaves it."),
    ("Tables", "up/down j/k · home/end g/G · page keys · enter"),
    ("Routes", "a add · e/enter edit · d duplicate · x delete · r passwords"),
    ("Routemap", "a add above · e/enter edit · x delete · K/J move up/down"),
    ("Forms", "ctrl+s OK: the diff. escape leaves a field, then cancels.\n"
              "Diff: ctrl+s (or tab to Save, enter) saves; escape or a letter\n"
              "goes back to the form. Nothing is written before."),
    ("Simulate", "the planner's answer (= qremote simulate --json);\n"
                 "Probe connects to each attempt; Cancel or escape stops it."),
    ("Logs", "enter the whole story · / filter · n/N next/prev failure\n"
             "f follow · c counters. Filter: words (all must match),\n"
             "route: ip: remote: tls: auth: result: to: from: msg:\n"
             "(* wildcard), /regex/, -term excludes, \"two words\"."),
    ("Delivery", "r route · m routemap rule · s simulate now · a all of msg"),
    ("Failover", "x clear the pair · X clear all (each asks first)"),
    ("Worker", "qremote worker's deliveries in flight, live · r refresh now"),
    ("", ""),
    ("", "escape, ? or q closes this help."),
)


def help_text() -> Text:
    """The key reference, as text."""
    text = Text()
    for name, body in HELP:
        first = True
        for line in body.split("\n"):
            text.append(f"{name if first else '':<11}", style="bold")
            text.append(line + "\n")
            first = False
    text.rstrip()
    return text


class HelpScreen(ModalScreen[None]):
    """A modal with the key reference."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 78; max-width: 100%; height: auto;
        max-height: 100%; border: thick $primary; padding: 0 1; background: $surface; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(help_text())
