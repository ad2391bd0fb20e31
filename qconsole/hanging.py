"""Text wrapped with a hanging indent: the continuation lines of a long line start
under its text, not at the left edge under the labels (a long reply in a delivery's
story, a long route in a simulation), wrapped at the width it is shown at.

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
        self.lines: list[tuple[Text, int, int]] = []  # text, label width, indent

    def add(self, *parts: str | tuple[str, str], label: int = 0,
            indent: int | None = None) -> None:
        """A line from ``parts`` (text, or text and style) whose first ``label``
        characters are its label; its continuation lines are indented by ``indent``
        (the label's width if None)."""
        text = Text.assemble(*parts)
        self.lines.append((text, label, label if indent is None else indent))

    def __str__(self) -> str:
        return "\n".join(text.plain for text, _, _ in self.lines)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        out = Text()
        for k, (text, label, indent) in enumerate(self.lines):
            if k:
                out.append("\n")
            hang = max(label, indent)
            if width - hang < MIN_BODY:
                label = hang = indent = 0
            body = text[label:]
            pieces = body.wrap(console, width - hang, overflow="fold") if body.plain \
                else [Text()]
            for n, piece in enumerate(pieces):
                if n:
                    out.append("\n" + " " * indent)
                elif label:
                    out.append_text(text[:label])
                out.append_text(piece)
        yield out


class HangingStatic(Static):
    """A Static whose ``render()`` is its content (a :class:`Hanging`, a Text, a
    string), not the visual made of it."""

    def render(self) -> VisualType:
        return self.content
