"""The ``?`` help screen (also "Help" in the ctrl+p palette): what each key does.

One short block per view, its name in a column of its own; each paragraph is
wrapped at the width shown (a key stays with what it does, the lines that go on
start under the text, not under the names), so that it reads at 80x24 and 60x20;
it scrolls when the terminal is smaller still."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen

from qconsole.hanging import Hanging, HangingStatic

NAMES = 11  # the width of the names' column
ITEMS = " · "  # what separates the keys of a paragraph
HELP: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("qconsole", ("qremote's operator console",)),
    ("", ("",)),
    ("Everywhere", ("1-6 views · ? help · ctrl+p every action by name · q quit · "
                    "ctrl+r read control/ again · tab next field or button",
                    "A text field takes every key: escape leaves it.")),
    ("Tables", ("up/down j/k · home/end g/G · page keys · enter",)),
    ("Routes", ("a add · e/enter edit · d duplicate · x delete · r passwords",)),
    ("Routemap", ("a add above · e/enter edit · x delete · K/J move up/down",)),
    ("Forms", ("ctrl+s OK: the diff. escape leaves a field, then cancels.",
               "Diff: ctrl+s (or tab to Save, enter) saves; escape or a letter goes "
               "back to the form. Nothing is written before.")),
    ("Simulate", ("the planner's answer (= qremote simulate --json).",
                  "Probe connects to each attempt; Cancel or escape stops it.")),
    ("Logs", ("enter the whole story · / filter · n/N next/prev failure · f follow · "
              "c counters",
              "Filter: words (all must match), route: ip: remote: tls: auth: result: "
              "to: from: msg: (* wildcard), /regex/, -term excludes, \"two words\".")),
    ("Delivery", ("r route · m routemap rule · s simulate now · a all of msg",)),
    ("Failover", ("x clear the pair · X clear all (each asks first)",)),
    ("Worker", ("qremote worker's deliveries in flight, live · r refresh now",)),
    ("", ("escape, ? or q closes this help.",)),
)


def help_lines() -> Hanging:
    """The key reference, each paragraph wrapped under its text where it is shown."""
    out = Hanging()
    for name, paragraphs in HELP:
        for n, paragraph in enumerate(paragraphs):
            out.add((f"{'' if n else name:<{NAMES}}", "bold"), paragraph, label=NAMES,
                    sep=ITEMS)
    return out


def help_text() -> Text:
    """The key reference, as text (a paragraph a line)."""
    return Text(str(help_lines()))


class HelpScroll(VerticalScroll):
    """The help's scroll, with the tables' keys (the help says j/k, g/G)."""

    BINDINGS = [
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
        Binding("g", "scroll_home", "Top", show=False),
        Binding("G", "scroll_end", "Bottom", show=False),
    ]


class HelpScreen(ModalScreen[None]):
    """A modal with the key reference."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > HelpScroll { width: 78; max-width: 100%; height: auto;
        max-height: 100%; border: thick $primary; padding: 0 1; background: $surface; }
    """

    def compose(self) -> ComposeResult:
        with HelpScroll(id="help-scroll"):
            yield HangingStatic(help_lines(), id="help-text")
