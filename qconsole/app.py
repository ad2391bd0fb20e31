"""``qconsole [--qmail-home DIR] [--demo] [--read-only] [--log PATH] [--theme NAME]``.

This module wires the views together; routing logic lives in qremote only.

Keys never destroy by accident: a text field takes every printable key (no
single-key action fires while one has the focus), Escape leaves it, and saving,
deleting and clearing ask for a confirmation whose default is Cancel. A banner on
every view says when the configuration has errors (qmail-remote defers every
delivery meanwhile) and when control files changed on disk (``ctrl+r`` reads them
again; an edit in progress is never thrown away, and saving it refuses to overwrite
the other change).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from qconsole.commands import COMMANDS, Command
from qconsole.control_view import ControlView
from qconsole.help_screen import HelpScreen
from qconsole.keys import OrderedKeysApp
from qconsole.log_table import LogTable
from qconsole.logs_view import LogsView
from qconsole.routemap_view import RoutemapView
from qconsole.routes_view import RoutesView
from qconsole.safe_text import printable
from qconsole.simulate_view import SimulateView
from qconsole.tcpto_view import TcptoView
from qconsole.worker_view import WorkerView
from qremote.control.check import check
from qremote.control.config import FILES, Config, load_config
from qremote.control.findings import Finding
from qremote.delivery.tcpto import FILE as TCPTO_FILE
from qremote.delivery.tcpto import Memory

WATCH_SECONDS = 2.0
NARROW, NARROWER = 100, 80  # columns: the key line compact, without the palette key

Signature = dict[str, tuple[int, int, int] | None]


def control_signature(home: Path) -> Signature:
    """(inode, size, mtime) of each control file (None: missing): cheap to take every
    few seconds, and any change by another program shows in it."""
    out: Signature = {}
    for name in FILES:
        try:
            st = os.stat(home / "control" / name)
        except OSError:
            out[name] = None
            continue
        out[name] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


class Views(TabbedContent):
    """The six views. A pane whose widget got the focus becomes the active one, as in
    TabbedContent, but only while that widget still has it: a late notice (keys typed
    ahead while the console starts) must not switch back to an older view."""

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        focused = self.app.focused
        if focused is None or event.tab_pane not in focused.ancestors:
            event.stop()
            event.prevent_default()


class QConsole(OrderedKeysApp):
    """The operator console."""

    TITLE = "qconsole"
    # Each key is handled completely, in the order typed (qconsole.keys), so the focus
    # a key moves is where the keys typed after it go (over SSH, fast typing comes in
    # one read). The single keys are priority bindings (no table takes them first);
    # check_action gives them up, to be typed, while a text field has the focus or a
    # form, diff or dialog is open.
    BINDINGS = [
        Binding("q", "quit", "Quit", priority=True),
        # A control key is never typed text: ctrl+q quits from a field or a screen too.
        Binding("ctrl+q", "quit_now", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Help", priority=True),
        Binding("1", "show('routes')", "Routes", priority=True),
        Binding("2", "show('routemap')", "Routemap", priority=True),
        Binding("3", "show('simulate')", "Simulate", priority=True),
        Binding("4", "show('logs')", "Logs", priority=True),
        Binding("5", "show('tcpto')", "Failover memory", priority=True),
        Binding("6", "show('worker')", "Worker", priority=True),
        Binding("ctrl+r", "reload", "Reload", show=False),
        Binding("tab", "move_focus(1)", "Next field", show=False, priority=True),
        Binding("shift+tab", "move_focus(-1)", "Previous field", show=False, priority=True),
    ]
    SINGLE_KEYS = {"quit", "help", "show"}
    CSS = """
    Views { height: 1fr; }
    #banner { display: none; height: auto; padding: 0 1; }
    #banner.shown { display: block; }
    #banner.error { background: $error-muted; color: $text; }
    #banner.warning { background: $warning-muted; color: $text; }
    #keys.-compact FooterLabel { margin: 0 1 0 0; }
    #keys.-compact FooterKey.-grouped { margin: 0 1 0 0; }
    #keys.-compact FooterKey.-command-palette { margin-right: 0; padding-right: 1; }
    """

    def __init__(self, home: Path, read_only: bool = False, demo: bool = False,
                 log: Path | None = None, initial: str | None = None,
                 clock: Callable[[], float] = time.time, theme_name: str | None = None,
                 ) -> None:
        super().__init__()
        if theme_name:
            self.theme = theme_name
        self.clock = clock
        self.home = home
        self.log_path = log
        self.initial = initial or ("logs" if log else "routes")
        self.has_home = (home / "control").is_dir()
        self.read_only = read_only or not self.has_home
        self.read_only_reason = ("qconsole was started with --read-only" if read_only
                                 else f"there is no qmail home at {home}")
        self.config: Config = load_config(home)
        self.user_findings = self._user_findings()
        self.findings = self._findings()  # once: every view shows its share
        self.signature = control_signature(home)
        self.changed_on_disk: list[str] = []
        self.sub_title = ("demo" if demo else printable(str(home))) + (
            " · read-only" if self.read_only else "")

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="banner")
        with Views(initial=self.initial):
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
        yield Footer(id="keys")

    def on_resize(self, event: events.Resize) -> None:
        """Under 100 columns the key line drops its spacing, under 80 the palette's key
        (the help has it): a view's own keys fit whole at 60 and 80 columns."""
        footer = self.query_one("#keys", Footer)
        footer.compact = event.size.width < NARROW
        footer.show_command_palette = event.size.width >= NARROWER

    def get_driver_class(self) -> type:
        """Textual's terminal driver, reading Escape typed fast before a key as Escape
        then the key (:mod:`qconsole.escape_key`), not as Alt+key."""
        from qconsole.escape_key import install

        return install(super().get_driver_class())

    def on_mount(self) -> None:
        self._focus_pane(self.query_one(TabbedContent).active)
        self.show_banner()
        if self.has_home:
            self.set_interval(WATCH_SECONDS, self.watch_control)
        self.theme_changed_signal.subscribe(self, lambda _theme: self.refresh_colours())

    def action_move_focus(self, step: int) -> None:
        """Tab and shift+Tab: the next or previous field or button."""
        if step > 0:
            self.screen.focus_next()
        else:
            self.screen.focus_previous()

    async def action_quit_now(self) -> None:
        """Quit (ctrl+q): from anywhere, also while a search or a field is busy."""
        await self.action_quit()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Single keys only act on the main screen, outside a text field (there they
        are typed); Tab is the palette's own (it completes there)."""
        if action == "move_focus":
            from textual.command import CommandPalette

            from qconsole.confirm_screen import Deliberate

            screen = self.screen
            if isinstance(screen, Deliberate) and self.key_in_hand is not None:
                # a Tab typed before the question was on screen is no answer to it:
                # left to the screen, which ignores it (else it put the focus on Save)
                return self.key_in_hand.time >= screen.shown_at
            return not isinstance(screen, CommandPalette)
        if action in self.SINGLE_KEYS:
            from textual.widgets import Input

            return self.screen is self.screen_stack[0] and not isinstance(self.focused,
                                                                          Input)
        return True

    def refresh_colours(self) -> None:
        """Redraw what holds theme colours after a change of theme."""
        for view in self.query(ControlView):
            view.refresh_view()
        self.show_banner()
        self.query_one(LogTable).refresh()
        self.query_one(LogsView).refresh_colours()

    # Views -------------------------------------------------------------------

    def action_show(self, tab: str) -> None:
        """Switch to a view."""
        try:
            self.query_one(TabbedContent).active = tab
            self._focus_pane(tab)
        except NoMatches:  # a key pressed while the views are still being built
            self.call_after_refresh(self.action_show, tab)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        focused = self.focused
        if self.screen is not event.tabbed_content.screen:
            return  # a form opened by a key typed after the tab's: the focus is its
        if (event.pane.id and event.pane.id == event.tabbed_content.active
                and (focused is None or event.pane not in focused.ancestors)):
            self._focus_pane(event.pane.id)  # a click on the tab: not yet in the view

    def _focus_pane(self, tab: str) -> None:
        """Put the focus in the view, so its keys show in the footer; a view with
        fields (Simulate) gives its first field the focus."""
        if tab == "simulate":
            self.query_one(SimulateView).focus_first()
            return
        pane = self.query_one(f"#{tab}", TabPane)
        for kind in (LogTable, DataTable):
            found = pane.query(kind)
            if found:
                self.set_focus(found.first())  # now, not after the keys queued
                return

    def go_on(self, where: tuple[str, ...] | None) -> None:
        """Where the delivery screen leads: a route, a rule, a simulation, a message."""
        if where is not None:  # once the screen below has its focus back
            self.hold_keys()  # the keys typed next are for the view it leads to
            self.call_after_refresh(self._go_on, *where)

    def _go_on(self, kind: str, *args: str) -> None:
        try:
            self._go_to(kind, *args)
        finally:
            self.release_keys()

    def _go_to(self, kind: str, *args: str) -> None:
        if kind == "route":
            self.goto_route(args[0])
        elif kind == "rule":
            self.goto_rule(int(args[0]))
        elif kind == "simulate":
            self.simulate_now(args[0], args[1])
        elif kind == "message":
            self.show_message(args[0])

    def goto_route(self, name: str) -> None:
        """The routes view, on route ``name``."""
        self.action_show("routes")
        self._goto(RoutesView, name, f"route {name!r} is not in control/routes now")

    def goto_rule(self, line: int) -> None:
        """The routemap view, on the rule of line ``line``."""
        self.action_show("routemap")
        self._goto(RoutemapView, str(line), f"control/routemap has no rule at line {line}")

    def _goto(self, kind: type[ControlView], key: str, missing: str) -> None:
        table = self.query_one(kind).query_one(DataTable)
        try:
            table.move_cursor(row=table.get_row_index(key))
        except Exception:  # the row is gone (the configuration changed since)
            self.notify(missing, severity="warning", markup=False)

    def simulate_now(self, sender: str, recipient: str) -> None:
        """The simulate view, planning the given mail now."""
        self.action_show("simulate")
        self.query_one(SimulateView).set_mail("<>" if sender in ("", "<>") else sender,
                                              recipient)

    def show_message(self, msg: str) -> None:
        """The logs view, filtered to every delivery of message ``msg``."""
        self.action_show("logs")
        self.query_one(LogsView).set_filter(f"msg:{msg}")

    # The configuration ---------------------------------------------------------

    def reload_config(self, saved: bool = False) -> None:
        """Read the control files again and show them; after a save, recompile
        routes.cache as ``qremote check`` does."""
        from qremote.control.cache import fingerprint

        before = fingerprint(self.home / "control")
        self.config = load_config(self.home)
        self.user_findings = self._user_findings()
        self.findings = self._findings()
        self.signature = control_signature(self.home)
        self.changed_on_disk = []
        for view in self.query(ControlView):
            view.reload(self.config, self.findings)
        self.query_one(SimulateView).config = self.config
        self.query_one(TcptoView).action_reload()
        self.show_banner()
        if saved and self.has_home:
            self._compile_cache(self.config, before)

    def _findings(self) -> list[Finding]:
        """``qremote check``'s findings on control/, as it says them: a file the
        console's own user cannot read (an operator's account, with routes 640
        root:qmail) is a warning, not an error that qmail-remote defers on (the user
        it runs as may read it; the error would invite a chmod 644 of the passwords)."""
        findings = check(self.config)
        if not self.has_home:
            return findings
        from qremote.control.check import unchecked_reads
        from qremote.control.config import finding_order

        own = set(self.config.findings)
        seen = unchecked_reads(self.config, self.remote_user)
        return sorted({*(f for f in findings if f not in own), *seen}, key=finding_order)

    def _user_findings(self) -> list[Finding]:
        """What the user qmail-remote runs as cannot reach (``qremote check``'s user
        findings): asked by a forked child, so only at load and reload, never on the
        2-second watch."""
        if not self.has_home:
            return []
        from qremote.control.check import user_findings
        from qremote.qmailuser import remote_user

        self.remote_user = remote_user(self.home)[0]
        try:
            return user_findings(self.config, self.remote_user)
        except Exception:  # a banner is not worth a crash
            return []

    def watch_control(self) -> None:
        """Notice control files changed on disk by someone else; offer to read them
        again (never under an open form or diff: the edit stays as it is)."""
        now = control_signature(self.home)
        changed = [name for name in FILES if now.get(name) != self.signature.get(name)]
        if changed != self.changed_on_disk:
            fresh = [n for n in changed if n not in self.changed_on_disk]
            self.changed_on_disk = changed
            self.show_banner()
            if fresh:
                self.notify(f"control/{', control/'.join(fresh)} changed on disk; ctrl+r "
                            "reads it again", severity="warning", markup=False)

    def show_banner(self) -> None:
        """The line above every view: errors of the configuration, files changed on
        disk, a missing qmail home."""
        from textual.css.query import NoMatches

        try:
            banner = self.query_one("#banner", Static)
        except NoMatches:  # quitting: the widgets went before the App's timers stop
            return
        errors = [f for f in self.findings if f.severity == "error"]
        text = Text()
        kind = ""
        if not self.has_home:
            text.append(printable(f"No qmail home at {self.home}: the routes, routemap and "
                                  "simulate views are empty (--qmail-home DIR)."))
            kind = "warning"
        elif errors:
            files = sorted({f"control/{f.file}" for f in errors})
            text.append(f"qmail-remote is deferring every delivery: {len(errors)} "
                        f"error{'s' if len(errors) > 1 else ''} in {', '.join(files)} "
                        "(the views show where; qremote check lists them).",
                        style="bold")
            kind = "error"
        theirs = [f for f in self.user_findings if f.severity == "error"]
        if theirs:
            if text:
                text.append("\n")
            unread = sorted({f"control/{f.file}" for f in theirs
                             if f.line == 0 and f.file in FILES})
            others = len([f for f in theirs if not (f.line == 0 and f.file in FILES)])
            msg = f"qmail-remote runs as {self.remote_user}"
            if unread:
                msg += f", which cannot read {', '.join(unread)}: every delivery defers"
            if others:
                msg += (f"{';' if unread else ':'} {others} {'other ' if unread else ''}"
                        f"problem{'s' if others > 1 else ''} as that user")
            text.append(printable(f"{msg} (qremote check says why and how to "
                                  "fix it)."), style="bold")
            kind = "error"
        if self.changed_on_disk:
            if text:
                text.append("\n")
            names = ", ".join(f"control/{n}" for n in self.changed_on_disk)
            text.append(f"{names} changed on disk since it was read: ctrl+r reads it "
                        "again (an edit in progress is kept; its save will refuse).")
            kind = kind or "warning"
        banner.update(text)
        banner.set_class(bool(text), "shown")
        banner.set_class(kind == "error", "error")
        banner.set_class(kind == "warning", "warning")

    @work(thread=True, exclusive=True, group="cache")
    def _compile_cache(self, config: Config, before: list | None) -> None:
        from qremote.control.cache import compile_cache

        try:
            written = compile_cache(config, before)
        except OSError as exc:
            self.call_from_thread(self.notify, f"control/routes.cache not written: "
                                  f"{exc.strerror}; qmail-remote reads the text files",
                                  severity="warning", markup=False)
            return
        if written is None:
            self.call_from_thread(self.notify, "control/routes.cache not rewritten (errors "
                                  "in routes or routemap); qmail-remote reads the text "
                                  "files", severity="warning")

    # Palette and help ----------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette: Textual's own commands, then every action of the console;
        over a form, a diff or a story only those that do not go to a view."""
        yield from super().get_system_commands(screen)
        over = screen is not self.screen_stack[0]  # a form, a diff, a story is open
        for command in COMMANDS:
            if command.edits and self.read_only:
                continue
            if over and command.tab:
                continue  # its view is under that screen: the keys would go there
            yield SystemCommand(command.title, command.help,
                                lambda c=command: self.run_command(c))

    def action_command_palette(self) -> None:
        """ctrl+p: the palette, whose Enter runs what the query typed matches."""
        from textual.command import CommandPalette

        from qconsole.palette import Palette

        if self.use_command_palette and not CommandPalette.is_open(self):
            self.push_screen(Palette(id="--command-palette"))

    def search_themes(self) -> None:
        """The palette's "Theme": the same palette, so its Enter too runs the
        theme the query typed matches."""
        from textual.theme import ThemeProvider

        from qconsole.palette import Palette

        self.push_screen(Palette(providers=[ThemeProvider],
                                 placeholder="Search for themes…"))

    def run_command(self, command: Command) -> None:
        """Go to the command's view and run its action there (not under a form, a
        diff or a story: the focus would go to a view under it)."""
        if command.tab and self.screen is not self.screen_stack[0]:
            self.notify(f"{command.title}: close this screen first (Escape).",
                        severity="warning")
            return
        if command.tab:
            self.action_show(command.tab)
        if command.action is None:
            return
        if command.action.startswith("app."):
            self.call_later(self.run_action, command.action[4:])
            return
        widget = self.query_one(command.widget or "")
        self.call_later(widget.run_action, command.action)

    def action_reload(self) -> None:
        """Read the control files again."""
        self.reload_config()
        self.notify("Control files read again.")

    def action_help(self) -> None:
        """Open the key reference."""
        self.push_screen(HelpScreen())


@contextmanager
def _exit_on_signals() -> Iterator[None]:
    """While open, SIGHUP (the terminal or the SSH connection went away) and SIGTERM
    end the console by SystemExit, so that what main() cleans up on the way out (the
    demo's temporary home, its SMTP sinks) is cleaned up and the terminal restored;
    their default action would kill the process on the spot."""
    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    numbers = (signal.SIGHUP, signal.SIGTERM)
    before = [signal.signal(number, leave) for number in numbers]
    try:
        yield
    finally:
        for number, handler in zip(numbers, before, strict=True):
            signal.signal(number, handler)


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
    parser.add_argument("--theme", metavar="NAME",
                        help="colour theme, e.g. textual-light for a light terminal, "
                        "ansi-dark or ansi-light for the terminal's own colours")
    args = parser.parse_args(argv)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("qconsole: needs a terminal (standard input and output are not one); for "
              "scripts use `qremote check` or `qremote simulate`", file=sys.stderr)
        return 2
    if args.theme:
        from textual.theme import BUILTIN_THEMES

        if args.theme not in BUILTIN_THEMES:
            print(f"qconsole: unknown theme {args.theme!r}; known: "
                  f"{', '.join(BUILTIN_THEMES)}", file=sys.stderr)
            return 2
    log = Path(args.log) if args.log else None
    from qconsole import memory

    memory.settle()  # (a filter's arrays given back when it is over)
    with _exit_on_signals():
        return _run(args, log)


def _run(args: argparse.Namespace, log: Path | None) -> int:
    if args.demo:
        from qconsole.demo import make_demo_home
        from qconsole.demo_live import LiveDemo

        home = make_demo_home()
        try:
            live = LiveDemo(home).start()
            try:
                QConsole(home, read_only=args.read_only, demo=True, log=log or live.log,
                         initial="logs" if log else "routes", theme_name=args.theme).run()
            finally:
                live.close()
        finally:
            shutil.rmtree(home.parent, ignore_errors=True)  # the temporary home
        return 0
    from qremote.control.config import qmail_home

    home = qmail_home(args.qmail_home)
    if not (home / "control").is_dir() and log is None:
        print(f"qconsole: {home / 'control'} is not a directory; pass --qmail-home, "
              "--log PATH (the logs alone) or --demo", file=sys.stderr)
        return 1
    QConsole(home, read_only=args.read_only, log=log, theme_name=args.theme).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
