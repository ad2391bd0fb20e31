"""Text from outside (logs, control files, remote replies) made safe for the terminal.

A log line is attacker-controlled: a remote server's reply ends up in it. Control
characters and escape sequences are shown escaped (``\\x1b`` as the four characters),
never sent to the terminal; invisible and direction-changing characters are shown
escaped too. Markup is never interpreted: such text is only ever put into
:class:`rich.text.Text` objects (``Text(...)`` reads no markup), never into a markup
string.
"""

from __future__ import annotations

import re

from rich.style import Style
from rich.text import Text

# C0, DEL, C1, zero-width and bidirectional controls, line/paragraph separators, BOM.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, lines: bool = False) -> str:
    """``text`` with every control or invisible character written as an escape
    (``lines``: line breaks kept, for a text of several lines)."""
    if lines:
        return "\n".join(_UNSAFE.sub(_escape, line) for line in text.split("\n"))
    return _UNSAFE.sub(_escape, text)


def unsafe_char(text: str) -> str | None:
    """The first control or invisible character of ``text`` (what :func:`printable`
    would escape), else None."""
    m = _UNSAFE.search(text)
    return m[0] if m else None


def plain(text: str, style: str | Style = "", lines: bool = False) -> Text:
    """Outside text as a renderable: escaped, never read as markup."""
    return Text(printable(text, lines), style=style)
