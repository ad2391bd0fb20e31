"""Every action of the console, for the ``ctrl+p`` command palette.

Each entry names the view it belongs to and the view's own action, so the palette
runs exactly what the key does (including the ``--read-only`` refusal).
"""

from __future__ import annotations

from typing import NamedTuple


class Command(NamedTuple):
    """A palette entry: title, help, the tab, the widget and its action (None: the
    tab alone), and whether it edits something."""

    title: str
    help: str
    tab: str
    widget: str | None = None
    action: str | None = None
    edits: bool = False


COMMANDS = (
    Command("Help", "Every key, view by view", "", None, "app.help"),
    Command("Routes", "Show control/routes", "routes"),
    Command("Routemap", "Show control/routemap", "routemap"),
    Command("Simulate", "Where would a mail go?", "simulate"),
    Command("Logs", "Deliveries from qmail-send's log", "logs"),
    Command("Failover memory", "Pairs skipped after a connect timed out", "tcpto"),
    Command("Reveal passwords", "Show or mask the routes' passwords", "routes",
            "RoutesView", "reveal"),
    Command("Add route", "A new line in control/routes", "routes", "RoutesView", "add",
            True),
    Command("Edit route", "Change the selected route", "routes", "RoutesView", "edit", True),
    Command("Duplicate route", "Copy the selected route under a new name", "routes",
            "RoutesView", "duplicate", True),
    Command("Delete route", "Remove the selected route", "routes", "RoutesView", "delete",
            True),
    Command("Add routemap rule", "A new rule above the selected one", "routemap",
            "RoutemapView", "add", True),
    Command("Edit routemap rule", "Change the selected rule", "routemap", "RoutemapView",
            "edit", True),
    Command("Delete routemap rule", "Remove the selected rule", "routemap", "RoutemapView",
            "delete", True),
    Command("Move rule up", "The selected rule matches earlier", "routemap", "RoutemapView",
            "move_up", True),
    Command("Move rule down", "The selected rule matches later", "routemap",
            "RoutemapView", "move_down", True),
    Command("Run simulation", "Plan the entered mail", "simulate", "SimulateView",
            "simulate"),
    Command("Probe", "Connect for each planned attempt (EHLO, STARTTLS, AUTH, QUIT)",
            "simulate", "SimulateView", "probe"),
    Command("Cancel probe", "Stop the probe under way", "simulate", "SimulateView",
            "cancel"),
    Command("Filter log", "text, route:, ip:, result:, to:, from:, msg:, /regex/, -term",
            "logs", "LogsView", "filter"),
    Command("Clear log filter", "Show every row again", "logs", "LogsView", "clear_filter"),
    Command("Delivery details", "The whole story of the selected log row", "logs",
            "LogTable", "open"),
    Command("Next failure", "The next failure or deferral in the log", "logs", "LogsView",
            "jump(1)"),
    Command("Previous failure", "The previous failure or deferral in the log", "logs",
            "LogsView", "jump(-1)"),
    Command("Follow log", "Jump to the newest delivery and follow", "logs", "LogsView",
            "follow"),
    Command("Counters", "Show or hide the counters per route and local IP", "logs",
            "LogsView", "counters"),
    Command("Clear failover pair", "qmail-remote tries the selected pair in turn again",
            "tcpto", "TcptoView", "clear_one", True),
    Command("Clear all failover pairs", "Forget every pair", "tcpto", "TcptoView",
            "clear_all", True),
    Command("Reload control files", "Read control/ again (another operator's edits)",
            "", None, "app.reload"),
)
