"""Escape typed fast before a key is Escape, then that key.

A terminal sends Escape as the byte ESC, and Alt+key (meta) as ESC then the key's
bytes: the two differ only by the time between the bytes. Textual's parser takes ESC
followed within ``ESCDELAY`` (100 ms) by a character as one key, and what it makes
of it lost the Escape: ESC ``q`` is ``alt+q`` (bound to nothing), ESC ``2`` is
``™`` (macOS Option+2), ESC ``/`` is ``/``, ESC ``f`` is ``ctrl+right``, ESC Enter
is Enter. Typed fast
(or in one read over SSH), Escape then ``q`` did nothing, Escape then ``2`` typed a
``™`` into the field Escape was to leave. A shorter delay would not help: bytes
that come in one read have no time between them.

The console binds no Alt key, so :class:`EscapeFirstParser` reads ESC followed by a
printable character, Enter or Tab as Escape, then that key, at once. ESC followed by
the byte that opens a longer sequence (``[`` and ``O``: arrows, function keys,
mouse, the terminal's replies; ``]``, ``P``, ``_``, ``^``, ``\\``: strings a
terminal may send) is left to Textual, and so are ESC Backspace (Alt+Backspace
deletes a word) and ESC ESC.

:func:`install` makes the terminal driver Textual picks use it (the driver builds
its parser by that module's name ``XTermParser``); Textual is pinned to 8.2.x, whose
parser this is.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from textual import events
from textual._xterm_parser import XTermParser

ESC = "\x1b"
INTRODUCERS = frozenset("[O]P_^\\")  # ESC then one of these: a longer sequence
AFTER_ESCAPE = frozenset("\r\t")  # Enter, Tab: keys too (Textual: Enter, shift+Tab)


class EscapeFirstParser(XTermParser):
    """Textual's parser, except that ESC then a printable character is two keys."""

    def _sequence_to_key_events(self, sequence: str, alt: bool = False,
                                ) -> Iterable[events.Key]:
        if (len(sequence) == 2 and sequence[0] == ESC and sequence[1] not in INTRODUCERS
                and (sequence[1].isprintable() or sequence[1] in AFTER_ESCAPE)):
            yield events.Key("escape", ESC)
            yield from super()._sequence_to_key_events(sequence[1])
            return
        yield from super()._sequence_to_key_events(sequence, alt)


def install(driver: type) -> type:
    """Have ``driver`` (a Textual driver class) parse keys with
    :class:`EscapeFirstParser`; returns ``driver``."""
    module = sys.modules.get(driver.__module__)
    if module is not None and getattr(module, "XTermParser", None) is XTermParser:
        module.XTermParser = EscapeFirstParser  # type: ignore[attr-defined]
    return driver
