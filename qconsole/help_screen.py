"""The ``?`` help screen: what each key does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """[b]qconsole[/b] — qremote's operator console

  1 2 3 4 5    Routes, Routemap, Simulate, Logs, Failover memory
  ctrl+p       command palette: every action by name
  ?            this help          q, ctrl+q   quit       ctrl+r  reload control/

[b]Routes[/b]     a add · e/enter edit · d duplicate · x delete · r reveal passwords
[b]Routemap[/b]   a add above · e edit · x delete · K/shift+up, J/shift+down move
           A form checks each field with qremote's parser; OK (ctrl+s) shows the
           diff; s saves: backup (.bak), atomic write, mode and owner kept, and
           a refusal if the file changed on disk meanwhile. routes.cache is
           recompiled. --read-only disables every edit.
[b]Simulate[/b]   the planner's answer, as `qremote simulate --json`; Probe connects.
[b]Logs[/b]       / filter (escape clears) · n / N next / previous failure or
           deferral · f follow the newest · c counters · home/end, page keys
[b]Failover[/b]   x clear the selected pair · X clear all

Press escape or ? to close."""


class HelpScreen(ModalScreen[None]):
    """A modal with the key reference."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 84; height: auto; border: thick $primary; padding: 1 2;
                            background: $surface; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(HELP)
