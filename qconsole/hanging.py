"""Text wrapped with a hanging indent: the continuation lines of a long line start
under its text, not at the left edge under the labels (a long reply in a delivery's
story, a long route in a simulation), wrapped at the width it is shown at. A line
made of items (``a add · e edit · x delete``) is broken between its items where
they fit, so that a key stays with what it does.

:class:`HangingStatic` shows one (or any other content); its ``render()`` is the
content itself, so that ``str()`` of it is the text, unwrapped.
"""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text
from textual.visual import VisualType
from textual.widgets import Static

MIN_BODY = 24  # columns: narrower than this under its label, a line is not indented


class Hanging:
    """Lines of text, each wrapped with its continuation lines indented."""

    def __init__(self) -> None:
        # text, label width, indent, the separator of its items ("": none)
        self.lines: list[tuple[Text, int, int, str]] = []

    def add(self, *parts: str | tuple[str, str], label: int = 0,
            indent: int | None = None, sep: str = "") -> None:
        """A line from ``parts`` (text, or text and style) whose first ``label``
        characters are its label; its continuation lines are indented by ``indent``
        (the label's width if None). With ``sep``, the text after the label is items
        so separated, broken between them where they fit."""
        text = Text.assemble(*parts)
        self.lines.append((text, label, label if indent is None else indent, sep))

    def __str__(self) -> str:
        return "\n".join(text.plain for text, _, _, _ in self.lines)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        out = Text()
        for k, (text, label, indent, sep) in enumerate(self.lines):
            if k:
                out.append("\n")
            hang = max(label, indent)
            if width - hang < MIN_BODY:
                label = hang = indent = 0
            body = text[label:]
            pieces = _wrap(console, body, width - hang, sep) if body.plain else [Text()]
            for n, piece in enumerate(pieces):
                if n:
                    out.append("\n" + " " * indent)
                elif label:
                    out.append_text(text[:label])
                out.append_text(piece)
        yield out


def _wrap(console: Console, body: Text, width: int, sep: str) -> list[Text]:
    """``body`` in lines of ``width`` cells, broken after a ``sep`` where it can."""
    if not sep or sep not in body.plain:
        return list(body.wrap(console, width, overflow="fold"))
    out: list[Text] = []
    line = Text()
    for item in body.split(sep):
        if line.plain and line.cell_len + len(sep) + item.cell_len <= width:
            line.append(sep)
            line.append_text(item)
            continue
        if line.plain:
            out.append(line)
        *whole, line = item.wrap(console, width, overflow="fold") or [Text()]  # (long)
        out.extend(whole)
    out.append(line)
    return out


class HangingStatic(Static):
    """A Static whose ``render()`` is its content (a :class:`Hanging`, a Text, a
    string), not the visual made of it."""

    def render(self) -> VisualType:
        return self.content
