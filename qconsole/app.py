"""``qconsole [--qmail-home DIR] [--demo] [--read-only] [--log PATH]``: the app.

This module wires the views together; routing logic lives in qremote only.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, TabbedContent, TabPane

from qconsole.commands import COMMANDS, Command
from qconsole.control_view import ControlView
from qconsole.help_screen import HelpScreen
from qconsole.log_table import LogTable
from qconsole.logs_view import LogsView
from qconsole.routemap_view import RoutemapView
from qconsole.routes_view import RoutesView
from qconsole.simulate_view import SimulateView
from qconsole.tcpto_view import TcptoView
from qconsole.worker_view import WorkerView
from qremote.check import check
from qremote.config import Config, load_config
from qremote.tcpto import FILE as TCPTO_FILE
from qremote.tcpto import Memory


class QConsole(App[None]):
    """The operator console."""

    TITLE = "qconsole"
    BINDINGS = [
        Binding("q,ctrl+q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("1", "show('routes')", "Routes"),
        Binding("2", "show('routemap')", "Routemap"),
        Binding("3", "show('simulate')", "Simulate"),
        Binding("4", "show('logs')", "Logs"),
        Binding("5", "show('tcpto')", "Failover memory"),
        Binding("6", "show('worker')", "Worker"),
        Binding("r", "reveal", "Reveal passwords"),
        Binding("ctrl+r", "reload", "Reload", show=False),
    ]

    def __init__(self, home: Path, read_only: bool = False, demo: bool = False,
                 log: Path | None = None, initial: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.clock = clock
        self.home = home
        self.log_path = log
        self.initial = initial or ("logs" if log else "routes")
        self.read_only = read_only
        self.config: Config = load_config(home)
        self.findings = check(self.config)  # once: every view shows its share
        self.sub_title = ("demo" if demo else str(home)) + (" · read-only" if read_only
                                                             else "")

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial=self.initial):
            with TabPane("Routes", id="routes"):
                yield RoutesView(self.config, self.findings)
            with TabPane("Routemap", id="routemap"):
                yield RoutemapView(self.config, self.findings)
            with TabPane("Simulate", id="simulate"):
                yield SimulateView(self.config)
            with TabPane("Logs", id="logs"):
                yield LogsView(self.log_path)
            with TabPane("Failover memory", id="tcpto"):
                yield TcptoView(Memory(self.home / TCPTO_FILE, self.clock), self.clock)
            with TabPane("Worker", id="worker"):
                yield WorkerView(self.home)
        yield Footer()

    def on_mount(self) -> None:
        self._focus_pane(self.query_one(TabbedContent).active)

    def action_show(self, tab: str) -> None:
        """Switch to a view."""
        self.query_one(TabbedContent).active = tab
        self._focus_pane(tab)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id:
            self._focus_pane(event.pane.id)

    def _focus_pane(self, tab: str) -> None:
        """Put the focus in the view, so its keys show in the footer."""
        pane = self.query_one(f"#{tab}", TabPane)
        for kind in (LogTable, DataTable):
            found = pane.query(kind)
            if found:
                found.first().focus()
                return

    def action_reveal(self) -> None:
        """Show or mask the passwords of the routes view."""
        self.query_one(RoutesView).toggle_reveal()

    def reload_config(self, saved: bool = False) -> None:
        """Read the control files again and show them; after a save, recompile
        routes.cache as ``qremote check`` does."""
        from qremote.cache import fingerprint

        before = fingerprint(self.home / "control")
        self.config = load_config(self.home)
        self.findings = check(self.config)
        for view in self.query(ControlView):
            view.reload(self.config, self.findings)
        self.query_one(SimulateView).config = self.config
        if saved:
            self._compile_cache(self.config, before)

    @work(thread=True, exclusive=True, group="cache")
    def _compile_cache(self, config: Config, before: list | None) -> None:
        from qremote.cache import compile_cache

        try:
            written = compile_cache(config, before)
        except OSError as exc:
            self.call_from_thread(self.notify, f"control/routes.cache not written: "
                                  f"{exc.strerror}; qmail-remote reads the text files",
                                  severity="warning")
            return
        if written is None:
            self.call_from_thread(self.notify, "control/routes.cache not rewritten (errors "
                                  "in routes or routemap); qmail-remote reads the text "
                                  "files", severity="warning")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette: Textual's own commands, then every action of the console."""
        yield from super().get_system_commands(screen)
        for command in COMMANDS:
            if command.edits and self.read_only:
                continue
            yield SystemCommand(command.title, command.help,
                                lambda c=command: self.run_command(c))

    def run_command(self, command: Command) -> None:
        """Go to the command's view and run its action there."""
        self.action_show(command.tab)
        if command.action is None:
            return
        if command.action.startswith("app."):
            self.reload_config()
            self.notify("Control files read again.")
            return
        widget = self.query_one(command.widget or "")
        self.call_later(widget.run_action, command.action)

    def action_reload(self) -> None:
        """Read the control files again."""
        self.reload_config()

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
    parser.add_argument("--log", metavar="PATH",
                        help="open on the log view, following that file (a multilog "
                        "directory or its current, a qmail-send log, or syslog)")
    args = parser.parse_args(argv)
    log = Path(args.log) if args.log else None
    if args.demo:
        from qconsole.demo import make_demo_home
        from qconsole.demo_live import LiveDemo

        home = make_demo_home()
        live = LiveDemo(home).start()
        try:
            QConsole(home, read_only=args.read_only, demo=True, log=log or live.log,
                     initial="logs" if log else "routes").run()
        finally:
            live.close()
        return 0
    else:
        from qremote.config import qmail_home

        home = qmail_home(args.qmail_home)
        if not (home / "control").is_dir():
            print(f"qconsole: {home / 'control'} is not a directory; pass --qmail-home "
                  "or --demo", file=sys.stderr)
            return 1
    QConsole(home, read_only=args.read_only, log=log).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
