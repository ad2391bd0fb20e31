"""``qconsole [--qmail-home DIR] [--demo] [--read-only] [--log PATH]``: the app.

This module wires the views together; routing logic lives in qremote only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, TabbedContent, TabPane

from qconsole.help_screen import HelpScreen
from qconsole.routemap_view import RoutemapView
from qconsole.routes_view import RoutesView
from qconsole.simulate_view import SimulateView
from qremote.check import check
from qremote.config import Config, load_config


class QConsole(App[None]):
    """The operator console."""

    TITLE = "qconsole"
    BINDINGS = [
        Binding("q,ctrl+q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("1", "show('routes')", "Routes"),
        Binding("2", "show('routemap')", "Routemap"),
        Binding("3", "show('simulate')", "Simulate"),
        Binding("r", "reveal", "Reveal passwords"),
    ]

    def __init__(self, home: Path, read_only: bool = False, demo: bool = False) -> None:
        super().__init__()
        self.home = home
        self.read_only = read_only
        self.config: Config = load_config(home)
        self.findings = check(self.config)  # once: every view shows its share
        self.sub_title = ("demo" if demo else str(home)) + (" · read-only" if read_only
                                                             else "")

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="routes"):
            with TabPane("Routes", id="routes"):
                yield RoutesView(self.config, self.findings)
            with TabPane("Routemap", id="routemap"):
                yield RoutemapView(self.config, self.findings)
            with TabPane("Simulate", id="simulate"):
                yield SimulateView(self.config)
        yield Footer()

    def action_show(self, tab: str) -> None:
        """Switch to a view."""
        self.query_one(TabbedContent).active = tab

    def action_reveal(self) -> None:
        """Show or mask the passwords of the routes view."""
        self.query_one(RoutesView).toggle_reveal()

    def action_help(self) -> None:
        """Open the key reference."""
        self.push_screen(HelpScreen())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``qconsole``."""
    parser = argparse.ArgumentParser(prog="qconsole", description="qremote's console")
    parser.add_argument("--qmail-home", metavar="DIR")
    parser.add_argument("--demo", action="store_true",
                        help="sample configuration in a temporary qmail home")
    parser.add_argument("--read-only", action="store_true", help="disable every edit")
    parser.add_argument("--log", metavar="PATH", help="open on the log view (to come)")
    args = parser.parse_args(argv)
    if args.log:
        print("qconsole: the log view is not available yet", file=sys.stderr)
        return 2
    if args.demo:
        from qconsole.demo import make_demo_home

        home = make_demo_home()
    else:
        from qremote.config import qmail_home

        home = qmail_home(args.qmail_home)
        if not (home / "control").is_dir():
            print(f"qconsole: {home / 'control'} is not a directory; pass --qmail-home "
                  "or --demo", file=sys.stderr)
            return 1
    QConsole(home, read_only=args.read_only, demo=args.demo).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
