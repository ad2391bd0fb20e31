"""Keys handled one at a time, in the order they were typed.

Textual hands a key to the focused widget's queue and acts on the bindings once the
key has bubbled back up to the App; the keys behind it in the App's queue are handed
out meanwhile, to a focus the first key may be about to change, and priority
bindings act on them at once. Typed fast (over SSH a burst of keys comes in one
read) they were acted on out of order: ``/qmail`` typed in the logs view quit the
console, ``a`` then a name gave an empty form.

:class:`OrderedKeysApp` takes every key through the whole chain before it looks at
the next one: the priority bindings, the key handlers of the focused widget and of
each of its ancestors (a text field takes its printable keys there), then the
bindings from the focused widget up. While a screen that a key opened is not yet
mounted (its first field does not have the focus yet), or while a key's effect is
still being set up (:meth:`OrderedKeysApp.hold_keys`), the keys after it wait, in order.

A key that moves the focus (``/`` opens the logs filter, ``3`` the Simulate view's
first field, Tab) makes the keys after it wait too, until the widget that got the
focus has handled its Focus event: that event is queued, and handled whenever the
widget's task next runs. A field that selects its text when focused
(``select_on_focus``) would otherwise select what was typed into it meanwhile, and
the next key would replace it: ``/`` then ``remote`` gave the filter ``mote``.

One key closes one thing: ``q`` or Escape pressed again right after it closed a
screen (a double press, a key held) is not taken as a second command on the screen
below (quitting the console, clearing the logs filter).

The bubbling done here uses Textual's own handler lookup (``_get_dispatch_methods``,
``invoke``): pyproject pins Textual to 8.2.x, whose internals these are.
"""

from __future__ import annotations

import time

from textual import events
from textual._callback import invoke
from textual.app import App
from textual.timer import Timer
from textual.widget import Widget

REPEAT_GUARD = 0.5  # seconds: the same closing key this soon is a double press
CLOSING_KEYS = frozenset({"q", "escape"})
WAIT = 0.01  # seconds between two looks at whether the held keys can go
FOCUS_WAIT = 1.0  # seconds: a focused widget that handles no event does not lock keys


class OrderedKeysApp(App[None]):
    """An App that dispatches each key completely, in order."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._held: list[events.Key] = []
        self._waiting: Timer | None = None
        self._closed_by: tuple[str, float] | None = None
        self._settling = 0
        self._focus_seen: Widget | None = None  # has handled its Focus event
        self._focus_asked: tuple[Widget, float] | None = None
        self.key_in_hand: events.Key | None = None  # the key being handled, if any

    def keys_ready(self) -> bool:
        """True when a key can be handled now: the screen on top is mounted (its
        first field has the focus), the focused widget has handled its Focus event,
        and no key's effect is still being set up."""
        if self._settling:
            return False
        try:
            if not self.screen.is_mounted:
                return False
        except Exception:  # no screen yet: the console is starting
            return False
        return self._focus_settled()

    def _focus_settled(self) -> bool:
        """True when the focused widget has handled the Focus event that set_focus
        queued for it; else asks it (behind that event) to say so."""
        focused = self.focused
        if focused is None or focused is self._focus_seen:
            return True
        now = time.monotonic()
        if self._focus_asked is None or self._focus_asked[0] is not focused:
            self._focus_asked = (focused, now)
            if focused.call_later(self._focus_handled, self._focus_asked):
                return False
        elif now - self._focus_asked[1] < FOCUS_WAIT:
            return False
        self._focus_seen = focused  # its queue is closed or stuck: go on without it
        return True

    def _focus_handled(self, asked: tuple[Widget, float]) -> None:
        """Run by the widget's own task, after the events queued before (its Focus)."""
        if asked is not self._focus_asked:
            return  # the focus moved again since: a newer question is on its way
        self._focus_seen = asked[0]
        if self._held:
            self.call_later(self._release)  # now, not after WAIT

    def hold_keys(self) -> None:
        """Keys wait until :meth:`release_keys` (e.g. a screen was dismissed and the
        view it leads to is not shown yet); pair them."""
        self._settling += 1

    def release_keys(self) -> None:
        """End a :meth:`hold_keys`."""
        self._settling = max(0, self._settling - 1)
        if self._held:
            self._wait()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            self.app_focus = True
            if self._held or not self.keys_ready():
                self._held.append(event)
                self._wait()
                return
            await self._handle(event)
            return
        await super().on_event(event)

    def _wait(self) -> None:
        if self._waiting is None:
            self._waiting = self.set_timer(WAIT, self._release)

    async def _release(self) -> None:
        self._waiting = None
        while self._held and self.keys_ready():
            await self._handle(self._held.pop(0))
        if self._held:
            self._wait()

    async def _handle(self, event: events.Key) -> None:
        """One key, completely: priority bindings, the key handlers from the focused
        widget up, then the other bindings."""
        closed_by, self._closed_by = self._closed_by, None
        if (closed_by is not None and event.key == closed_by[0]
                and event.time - closed_by[1] < REPEAT_GUARD):
            return  # the second of a double press: its first closed a screen already
        depth = len(self.screen_stack)
        focused = self.focused
        self.key_in_hand = event
        try:
            if not await self._check_bindings(event.key, priority=True):
                await self._bubble(event)
        finally:
            self.key_in_hand = None
        if self.focused is not focused:  # the keys after it wait for its Focus event
            self._focus_seen = self._focus_asked = None
        if event.key in CLOSING_KEYS and len(self.screen_stack) < depth:
            self._closed_by = (event.key, event.time)

    async def _bubble(self, event: events.Key) -> None:
        """What Textual does by posting the key from widget to parent, done here and
        now: each node's key handlers, until one stops the key; the App's own
        handler at the top runs the (non-priority) bindings."""
        event._set_forwarded()
        target = self.focused or self.screen
        for node in target.ancestors_with_self:
            event._no_default_action = False
            with node._context(), node.prevent(*event._prevent):
                for _cls, method in node._get_dispatch_methods("on_key", event):
                    await invoke(method, event)
            if event._stop_propagation:
                return
