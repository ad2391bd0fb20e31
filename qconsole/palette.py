"""The ``ctrl+p`` command palette, safe for keys typed ahead.

Textual's palette searches in a worker each time the query changes and runs the
highlighted entry of the list on screen when Enter comes. Typed fast (ctrl+p, a
query and Enter in one read over SSH, or a paste) the Enter came before the search
for the query had replaced the list of every command, and the palette ran that
list's first entry ("Add route") instead of the one asked for.

:class:`Palette` takes Enter itself: it waits until the search for the query as
typed has finished, then runs the best match (the highlighted one), or nothing when
nothing matches. The keys typed after Enter are held meanwhile (the console's
:meth:`~qconsole.keys.OrderedKeysApp.hold_keys`) and until the command has run: they
go where it leads (the field it focused, the form it opened), in order, and never
into the palette's query.

The keys that move in the list (Down, Up, the page keys, ``ctrl+home``/``ctrl+end``)
typed with the query (``route``, Down, Enter in one read) would move in the list
the search is about to replace, whose top match then has the highlight: they are
kept until the search for the query as typed has finished, then applied to its
answer, in order (and before an Enter that follows them). A key typed after them
changes the query, and so the list: they are dropped, as when typed slowly.
"""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic
from typing import Any

from textual import events, on
from textual._callback import invoke
from textual.command import Command, CommandInput, CommandList, CommandPalette
from textual.widgets import Input

WAIT = 0.01  # seconds between two looks at whether the search has finished
PATIENCE = 3.0  # seconds: a search not done by then runs nothing (keys go on)
# The list's keys (CommandPalette.BINDINGS), as palette actions.
MOVES = {"down": ("cursor_down", ()), "up": ("command_list", ("cursor_up",)),
         "pagedown": ("command_list", ("page_down",)),
         "pageup": ("command_list", ("page_up",)),
         "ctrl+home": ("command_list", ("first",)), "shift+home": ("command_list", ("first",)),
         "ctrl+end": ("command_list", ("last",)), "shift+end": ("command_list", ("last",))}


class Palette(CommandPalette):
    """A command palette whose Enter runs what the typed query matches."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._holding = False  # keys are held from an Enter until its outcome
        self._ran = False  # a command was chosen: it releases the keys once run
        self._asked = ""  # the query of the latest search started
        self._moves: list[tuple[str, str]] = []  # (query, key) kept for its answer

    def on_key(self, event: events.Key) -> None:
        if event.key in MOVES and not self._holding and (self._moves
                                                         or not self._searched()):
            event.stop()
            event.prevent_default()
            if not self._moves:
                self._when_searched(monotonic() + PATIENCE, run=False)
            self._moves.append((self.query_one(CommandInput).value.strip(), event.key))
            return
        if event.key != "enter":
            return
        event.stop()
        event.prevent_default()  # not the query's own Enter (Input.Submitted)
        if self._holding:
            return  # a second Enter before the first's outcome: one is enough
        self._holding = True
        self.app.hold_keys()  # type: ignore[attr-defined]
        self._when_searched(monotonic() + PATIENCE)

    @on(Input.Changed)
    def _query_changed(self, event: Input.Changed) -> None:
        self._asked = event.value.strip()  # then CommandPalette starts its search

    def _searched(self) -> bool:
        """True when the list shows the whole answer to the query as typed: its
        search was started (the query field's change reached the palette, through
        its containers) and has finished."""
        return self._asked == self.query_one(CommandInput).value.strip() and not any(
            worker.node is self and worker.group == self._GATHER_COMMANDS_GROUP
            and not worker.is_finished for worker in self.app.workers)

    def _when_searched(self, deadline: float, run: bool = True) -> None:
        """Once the search for the query as typed has finished: the kept moves, then
        (``run``) the highlighted command."""
        if not self.is_attached:
            return  # closed meanwhile (by the Enter that ran the moves' answer)
        if not self._searched():
            if monotonic() < deadline:
                self.set_timer(WAIT, lambda: self._when_searched(deadline, run))
            elif run:
                self._release()  # never answered: better nothing than a guess
            else:
                self._moves.clear()
            return
        self._move()
        if not run:
            return
        commands = self.query_one(CommandList)
        index = commands.highlighted
        option = None if index is None else commands.get_option_at_index(index)
        if not (self._list_visible and isinstance(option, Command)
                and not option.disabled):
            self._release()  # nothing matches: nothing runs
            return
        self._ran = True
        self._cancel_gather_commands()
        self.app.post_message(CommandPalette.Closed(option_selected=True))
        self.dismiss()
        self.app.call_later(self._run, option.hit.command)

    def _move(self) -> None:
        """The kept moves typed with the query the list now answers."""
        query = self.query_one(CommandInput).value.strip()
        moves, self._moves = self._moves, []
        for asked, key in moves:
            if asked == query:
                action, arguments = MOVES[key]
                getattr(self, f"_action_{action}")(*arguments)

    async def _run(self, command: Callable[[], Any]) -> None:
        """The command, then the keys held since Enter; a command that schedules its
        action (the console's run_command) has it run before them."""
        try:
            await invoke(command)
        finally:
            self.app.call_later(self.app.release_keys)  # type: ignore[attr-defined]

    def _release(self) -> None:
        if self._holding:
            self._holding = False
            self.app.release_keys()  # type: ignore[attr-defined]

    def on_unmount(self) -> None:
        if not self._ran:
            self._release()  # closed another way (a click): the keys go on
