"""Colours from the current Textual theme, so that every view reads well on a dark
or a light theme (``--theme``, or "Change theme" in the palette).

Results and findings use the theme's ``text-success``, ``text-warning`` and
``text-error``: colours made for text on that theme's background.
"""

from __future__ import annotations

from rich.style import Style
from textual.app import App
from textual.color import Color

# A meaning on screen -> the theme variable that colours it.
ROLES = {
    "success": "text-success", "ok": "text-success",
    "deferral": "text-warning", "warning": "text-warning",
    "failure": "text-error", "error": "text-error",
    "raw": "text-secondary", "bounce": "text-accent", "info": "text-primary",
}
_BOLD = {"failure", "error"}
_cache: dict[tuple[str, str], Style] = {}


def style(app: App, role: str) -> Style:
    """The Rich style of ``role`` (see ROLES; ``muted`` is dim) in ``app``'s theme."""
    if role == "muted":
        return Style(dim=True)
    key = (app.theme, role)
    found = _cache.get(key)
    if found is None:
        value = app.theme_variables.get(ROLES.get(role, ""), "")
        try:
            color = Color.parse(value).rich_color if value else None
        except Exception:  # a variable that is not a plain colour: text colour
            color = None
        found = _cache[key] = Style(color=color, bold=role in _BOLD)
    return found
