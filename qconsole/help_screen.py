"""The ``?`` help screen: what each key does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """[b]qconsole[/b] — qremote's operator console

  1 / 2 / 3    Routes, Routemap, Simulate
  r            reveal or mask passwords (Routes)
  ctrl+p       command palette
  ?            this help
  q, ctrl+q    quit

Routes and Routemap show control/routes and control/routemap with the findings of
`qremote check`. Simulate asks the planner that qmail-remote uses: its answer is
what `qremote simulate --json` prints. Editing, logs and the failover memory view
come in later versions.

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
