"""The whole story of one delivery: Enter on a row of the logs view.

qmail-remote's report line by line (every failed attempt and its reason, the whole
reply), the route, local IP, remote, TLS and AUTH of the connection that decided it
(qremote's detail line), what the current configuration would do with the same
sender and recipient domain (qremote's own planner, ``select``), what qmail-send did
next (a bounce), and the raw log lines the row was joined from. From here: the
route, the routemap rule, the same delivery simulated now, every delivery of the
message.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer

from qconsole import theme
from qconsole.hanging import Hanging, HangingStatic
from qconsole.logformat import (
    E_BOUNCE,
    E_CONCURRENCY,
    E_TRIPLE,
    Delivery,
    decode,
    event,
    local_time,
    split_stamp,
)
from qconsole.logindex import LogIndex, Rows
from qconsole.safe_text import printable
from qremote.control.config import Config

AFTER_LIMIT = 4 << 20  # how far after a failure its bounce line is looked for


def attempts(line: str) -> list[str] | None:
    """The items of a ``Failed attempts:`` (or older ``Attempts:``) line, else None."""
    for head in ("Failed attempts: ", "Attempts: "):
        if line.startswith(head):
            return [a.strip() for a in line[len(head):].split("; ") if a.strip()]
    return None


def current_answer(config: Config, row: Delivery) -> tuple[str, str | None, int | None]:
    """What the current configuration does with the row's sender and recipient domain:
    (a sentence, the route name or None, the routemap line or None)."""
    from qremote.planning.planner import select

    if not row.recipient or "@" not in row.recipient:
        return "recipient unknown (its starting line is not in the log)", None, None
    if not row.sender:
        return "sender unknown (its info line is not in the log)", None, None
    host = row.recipient.rpartition("@")[2].lower()
    sender = "" if row.sender == "<>" else row.sender
    sel = select(config, host, sender)
    kind, _, number = sel.matched.partition(":")
    line = None
    if number and kind in config.files and int(number) <= len(config.files[kind].lines):
        text = config.files[kind].lines[int(number) - 1].text or ""
        where = f"{sel.matched}  {text.strip()}"
    else:
        where = "no routemap or smtproutes entry: the recipient domain's MX"
    if kind == "routemap":
        line = int(number)
    route = sel.route.name if sel.route else None
    said = f"{where} → route {route}" if route else where
    if sel.error:
        said += f" ({sel.error})"
    if config.errors:  # qmail-remote defers every delivery (planner.plan): say that first
        n = len(config.errors)
        said = (f"deferred, as every delivery is while the control files have "
                f"{n} error{'s' if n > 1 else ''} (#4.3.0), the first "
                f"{config.errors[0].format()}; the lines that parse give {said}")
    return said, route, line


class DeliveryScreen(ModalScreen[tuple[str, ...] | None]):
    """One delivery, told whole; dismissed with where to go next (``("route", NAME)``,
    ``("rule", LINE)``, ``("simulate", SENDER, RECIPIENT)``, ``("message", MSG)``) or
    None."""

    # Short words: the key line holds them all at 60 columns (the help has them whole).
    BINDINGS = [
        Binding("escape,q", "close", "Close"),
        Binding("r", "route", "Route"),
        Binding("m", "rule", "Rule"),
        Binding("s", "simulate", "Simulate"),
        Binding("a", "message", "All of msg"),
        Binding("j,down", "scroll(1)", "Down", show=False),
        Binding("k,up", "scroll(-1)", "Up", show=False),
        Binding("g,home", "scroll_home", "Top", show=False),
        Binding("G,end", "scroll_end", "Bottom", show=False),
        Binding("question_mark", "help", "Help", show=False),
    ]
    DEFAULT_CSS = """
    DeliveryScreen { align: center middle; }
    DeliveryScreen > Vertical { width: 100%; max-width: 140; height: 100%;
        border: thick $primary; background: $surface; }
    DeliveryScreen VerticalScroll { height: 1fr; padding: 0 1; }
    """

    def __init__(self, index: LogIndex, rows: Rows, j: int, row: Delivery) -> None:
        super().__init__()
        self.index = index
        self.row = row
        self.offsets = (rows.info[j], rows.start[j], rows.result[j])
        self.route_now: str | None = None
        self.rule_now: int | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            with VerticalScroll(id="delivery-scroll"):
                yield HangingStatic(self.story(), id="delivery-text")
            yield Footer()

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#delivery-scroll"))  # now: before the next key

    # The story ---------------------------------------------------------------

    def story(self) -> Hanging:
        """Everything known about the delivery, as safe text."""
        row, app = self.row, self.app
        bold = "bold"
        text = Hanging()
        status = theme.style(app, row.status)
        if row.status == "raw":
            text.add(("A line that is not qmail-send's, shown as read", bold))
            text.add()
            text.add(row.reply, indent=4)
            self._raw_lines(text)
            return text
        title = (f"Bounce of msg {row.msg}" if row.status == "bounce"
                 else f"Delivery {row.number or '?'} of msg {row.msg or '?'}: ")
        text.add((title, bold), *(() if row.status == "bounce" else ((row.status, status),)))
        text.add()
        self._field(text, "When", local_time(row.time) + (
            f"  ({row.duration:.1f} s after it started)" if row.duration is not None
            else ""))
        self._field(text, "From", row.sender or "? (no info line for this message)")
        if row.status == "bounce":
            self._field(text, "What", row.reply)
            self._raw_lines(text)
            return text
        channel = f"  ({row.channel})" if row.channel else ""
        self._field(text, "To", (row.recipient or "? (no starting line)") + channel)
        if row.detail:
            self._field(text, "Route", f"{row.route}" + ("  (no route applied: "
                        "smtproutes or MX)" if row.route == "-" else ""))
            self._field(text, "Local IP", row.local)
            self._field(text, "Remote", row.remote)
            self._field(text, "TLS, AUTH", f"{row.tls}, {row.auth}")
        elif row.channel == "local":
            self._field(text, "Route", "a local delivery (qmail-local): no route")
        else:
            self._field(text, "Route", "? the report has no detail line: the stock "
                        "qmail-remote wrote it (or it is not a qremote report)")
        config = getattr(app, "config", None)
        if config is not None and getattr(app, "has_home", True) and row.channel != "local":
            said, self.route_now, self.rule_now = current_answer(config, row)
            if row.detail and self.route_now != (None if row.route == "-" else row.route):
                said += f"  (not {row.route}, which carried this delivery)"
            self._field(text, "Now", printable(said))
            text.add((" " * 12 + "(the current configuration's answer for this sender "
                      "and recipient domain; it may differ from what applied then)",
                      "dim"), label=12)
        text.add()
        text.add(("qmail-remote said", bold))
        for line in row.lines or ("(nothing)",):
            items = attempts(line)
            if items is not None:
                text.add((f"  {line.split(':', 1)[0]}: {len(items)}",
                          theme.style(app, "deferral")))
                for n, item in enumerate(items, 1):
                    head = f"    {n}. "
                    text.add(head + item, label=len(head))
            elif line.startswith("Remote host said:"):
                head = "  Remote host said: "
                text.add((head, bold), line[len("Remote host said:"):].strip(),
                         label=len(head))
            else:
                text.add(f"  {line}", label=2, indent=4)
        if row.expired:
            text.add(("  qmail-send gave up: the message was queued too long.",
                      theme.style(app, "failure")), label=2)
        for label, said in self._after():
            text.add()
            text.add((label, bold))
            text.add(f"  {said}", label=2, indent=4)
        self._raw_lines(text)
        return text

    def _field(self, text: Hanging, name: str, value: str) -> None:
        text.add((f"{name:<11} ", "bold"), value, label=12)

    def _raw_lines(self, text: Hanging) -> None:
        text.add()
        text.add(("Log lines", "bold"))
        read = self.index.source.read_line
        for offset in self.offsets:
            if offset >= 0:
                text.add((f"  {decode(read(offset))}", "dim"), label=2, indent=4)

    def _after(self) -> list[tuple[str, str]]:
        """What qmail-send logged about the message after this delivery: its bounce,
        and its concurrency when the delivery started."""
        out: list[tuple[str, str]] = []
        _, start, result = self.offsets
        source = self.index.source
        if start >= 0:
            after_start = start + len(source.read_line(start)) + 1
            m = event(source.read_line(after_start)) if after_start < source.end else None
            if m is not None and m[E_CONCURRENCY] is not None:
                out.append(("qmail-send's deliveries when it started (in use/limit)",
                            decode(m[E_CONCURRENCY]).removeprefix("status: ")))
        if self.row.status == "failure" and self.row.msg:
            msg = self.row.msg.encode()
            found = self._bounce_after(result, msg)
            if found:
                out.append(("Then", found))
        return out

    def _bounce_after(self, result: int, msg: bytes) -> str | None:
        source = self.index.source
        end = min(source.end, result + AFTER_LIMIT)
        needles = (b"bounce msg " + msg + b" ", b"discarding bounce/" + msg)
        stop = b"end msg " + msg + b"\n"
        for base, data in source.forward(result, end):
            limit = data.find(stop)
            for needle in needles:
                pos = data.find(needle, 0, limit if limit >= 0 else len(data))
                if pos >= 0:
                    line = source.read_line(base + data.rfind(b"\n", 0, pos) + 1)
                    m = event(line)
                    when = local_time(split_stamp(line)[0])
                    if m is not None and m[E_BOUNCE] is not None:
                        return (f"{when} qmail-send sent the failure notice to the sender "
                                f"({decode(line.split(b' ', 1)[-1])})")
                    if m is not None and m[E_TRIPLE] is not None:
                        return f"{when} triple bounce: the bounce was discarded"
            if limit >= 0:
                return None
        return None

    # Going on from here --------------------------------------------------------

    def action_close(self) -> None:
        """Back to the logs."""
        self.dismiss(None)

    def action_help(self) -> None:
        """The key reference, over the story (closing it comes back here)."""
        from qconsole.help_screen import HelpScreen

        self.app.push_screen(HelpScreen())

    def action_scroll(self, step: int) -> None:
        """Scroll the story."""
        self.query_one("#delivery-scroll", VerticalScroll).scroll_relative(
            y=step, animate=False)

    def action_scroll_home(self) -> None:
        """To the top."""
        self.query_one("#delivery-scroll", VerticalScroll).scroll_home(animate=False)

    def action_scroll_end(self) -> None:
        """To the bottom."""
        self.query_one("#delivery-scroll", VerticalScroll).scroll_end(animate=False)

    def action_route(self) -> None:
        """The route that carried the delivery (else the one that would now)."""
        name = self.row.route if self.row.detail and self.row.route not in ("-", "?") \
            else self.route_now
        if not name:
            self.app.notify("No route to show: none applied.")
            return
        self.dismiss(("route", name))

    def action_rule(self) -> None:
        """The routemap rule the current configuration matches."""
        if self.rule_now is None:
            self.app.notify("No routemap rule matches this delivery now.")
            return
        self.dismiss(("rule", str(self.rule_now)))

    def action_simulate(self) -> None:
        """The same sender and recipient, planned now."""
        if not self.row.recipient:
            self.app.notify("The recipient is not known (no starting line).")
            return
        self.dismiss(("simulate", self.row.sender, self.row.recipient))

    def action_message(self) -> None:
        """Every delivery of the same message (the filter ``msg:N``)."""
        if not self.row.msg:
            self.app.notify("The message number is not known.")
            return
        self.dismiss(("message", self.row.msg))
