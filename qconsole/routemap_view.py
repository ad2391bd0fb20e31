"""The routemap view: rules in order (the first match wins), shadowed rules and
unknown routes highlighted; a line that does not parse is a red row; add, edit,
delete, move up and down."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from qconsole import theme
from qconsole.control_view import BAD, ControlView, cut
from qconsole.editing import Edit, content_neighbour
from qconsole.form_screen import Field
from qconsole.safe_text import plain
from qremote.control.findings import Finding
from qremote.control.routemap import Rule, format_rule, rule_from_fields

NOTE = len("never matches: line 9999 first")  # the longest note of a rule, whole


class RoutemapView(ControlView):
    """Rules of control/routemap; the first matching line wins."""

    NAME = "routemap"
    BINDINGS = [
        Binding("a", "add", "Add above"),
        Binding("e", "edit", "Edit"),
        Binding("x,delete", "delete", "Delete"),
        Binding("K,shift+up", "move_up", "Move up"),
        Binding("J,shift+down", "move_down", "Move down"),
    ]

    def relevant(self, findings: list[Finding]) -> list[Finding]:
        return [f for f in findings if f.file == "routemap"
                or (f.file == "routes" and "not used by any routemap" in f.text)]

    def fill(self, table: DataTable) -> None:
        """One row a rule; a note says why a rule is highlighted."""
        routes = self.config.routes.routes
        # this user may not read control/routes (an operator's account; qmailr can):
        # its routes are unknown here, not undefined
        unread = any(f.file == "routes" and f.line == 0 and f.text.startswith("cannot read")
                     for f in self.config.findings)
        rows: list[tuple[int, str, list]] = []
        for rule in self.config.routemap.rules:
            shadow = self.config.routemap.shadowing(rule)
            if unread and rule.route not in routes:
                note = Text("routes unreadable here: not checked",
                            style=theme.style(self.app, "warning"))
            elif rule.route not in routes:
                note = Text("route not defined", style=theme.style(self.app, "error"))
            elif shadow is not None:
                note = Text(f"never matches: line {shadow.line} first",
                            style=theme.style(self.app, "warning"))
            elif any(f != "*" and "*" in f for f in (rule.sender, rule.recipient)):
                note = Text("'*' inside a domain is literal",
                            style=theme.style(self.app, "warning"))
            else:
                note = Text("")
            rows.append((rule.line, str(rule.line),
                         [Text(str(rule.line)), plain(rule.sender), plain(rule.recipient),
                          plain(rule.route), note]))
        for line in self.bad_lines({r.line for r in self.config.routemap.rules}):
            number, text, why = self.bad_row(line, 40)
            rows.append((line.number, f"{BAD}{line.number}",
                         [Text(str(line.number), style=number.style), text, Text(""),
                          Text(""), why]))
        table.add_columns("Line", *self._fit(rows), "Note")
        for _, key, cells in sorted(rows, key=lambda r: r[0]):
            table.add_row(*cells, key=key)

    def _fit(self, rows: list[tuple[int, str, list]]) -> tuple[str, str, str]:
        """Cut the domains and routes (the widest first, never below their titles) so
        that the notes show: a long route name or domain pushed them off the screen.
        A note longer than NOTE (the reason a line does not parse) is cut too; the
        findings below give it whole. Where the titles "Sender domain" and
        "Recipient domain" would cut a route name (80 columns), they are "Sender" and
        "Recipient": the route a rule sends to is what the view is for. Returns the
        titles of the sender, recipient and route columns."""
        width = self.size.width or self.app.size.width
        first = max((r[2][0].cell_len for r in rows), default=0)
        free = width - 2 - 2 * 5 - max(len("Line"), first)
        natural = [max([0, *(r[2][i].cell_len for r in rows)]) for i in range(1, 5)]
        for titles in (("Sender domain", "Recipient domain", "Route"),
                       ("Sender", "Recipient", "Route")):
            floors = [*(len(t) for t in titles), max(len("Note"), min(natural[3], NOTE))]
            widths = [max(w, f) for w, f in zip(natural, floors, strict=True)]
            while sum(widths) > free:
                wider = [i for i in range(4) if widths[i] > floors[i]]
                if not wider:
                    break
                widths[max(wider, key=lambda k: widths[k])] -= 1
            if widths[2] >= natural[2]:  # every route whole
                break
        for _, _, cells in rows:
            for i, w in enumerate(widths):
                cell = cells[i + 1]
                if cell.cell_len > w:
                    cells[i + 1] = Text(cut(cell.plain, w), style=cell.style)
        return titles

    def on_resize(self) -> None:
        width = self.size.width
        if width != getattr(self, "_filled_width", None):  # the cuts depend on it
            self._filled_width = width
            self.refresh_view()

    def fields(self) -> tuple[Field, ...]:
        """The form's fields; the route field lists the defined routes."""
        names = ", ".join(sorted(self.config.routes.routes)) or "none defined yet"
        return (Field("sender", "Sender domain: a domain, * (any) or <> (bounces)", "*"),
                Field("recipient", "Recipient domain: a domain or * (any)", "example.com"),
                Field("route", f"Route ({names})"))

    def selected(self) -> Rule | None:
        """The rule under the cursor."""
        key = self.selected_key()
        return next((r for r in self.config.routemap.rules if str(r.line) == key), None)

    def action_add(self) -> None:
        """A new rule, above the selected one (appended when there is none)."""
        at = self.selected()

        def build(values: dict[str, str]) -> Edit:
            rule = rule_from_fields(**values)
            edit = self.new_edit(f"Add rule {format_rule(rule)} to control/routemap")
            line = at.line if at else len(edit.file.lines) + 1
            edit.insert(line, format_rule(rule)).select = str(line)
            return edit

        self.open_form("New routemap rule" + (f" (above line {at.line})" if at else ""),
                       self.fields(), {"sender": "*"}, build, frozenset({"sender"}))

    def action_edit(self) -> None:
        """Change the selected rule (or fix a line that does not parse)."""
        old = self.selected()
        bad = self.bad_selected()
        if bad is not None:
            parts = [*(bad.text or "").split(";"), "", ""][:3]

            def fix(values: dict[str, str]) -> Edit:
                rule = rule_from_fields(**values)
                edit = self.new_edit(f"Fix control/routemap line {bad.number}")
                edit.replace(bad.number, format_rule(rule)).select = str(bad.number)
                return edit

            self.open_form(f"Fix routemap line {bad.number}", self.fields(),
                           dict(zip(("sender", "recipient", "route"),
                                    (p.strip() for p in parts), strict=True)), fix)
            return
        if old is None:
            return

        def build(values: dict[str, str]) -> Edit:
            rule = rule_from_fields(**values)
            edit = self.new_edit(f"Edit control/routemap line {old.line}")
            if rule != old._replace(line=0):  # unchanged: keep the line as written
                edit.replace(old.line, format_rule(rule))
            return edit

        self.open_form(f"Edit routemap line {old.line}", self.fields(),
                       {"sender": old.sender, "recipient": old.recipient,
                        "route": old.route}, build)

    def action_delete(self) -> None:
        """Remove the selected rule."""
        old = self.selected()
        bad = self.bad_selected()
        if bad is not None:
            self.confirm(self.new_edit(f"Delete control/routemap line {bad.number} (it "
                                       "does not parse)").replace(bad.number, None))
        if old is not None:
            self.confirm(self.new_edit(f"Delete control/routemap line {old.line} "
                                       f"({format_rule(old)})").replace(old.line, None))

    def _move(self, step: int) -> None:
        old = self.selected()
        if old is None:
            return
        edit = self.new_edit("")
        other = content_neighbour(edit.file, old.line, step)
        if other is None:
            self.app.notify("Already the " + ("first" if step < 0 else "last") + " rule.")
            return
        edit.summary = (f"Move control/routemap line {old.line} "
                        f"{'above' if step < 0 else 'below'} line {other}")
        edit.swap(old.line, other).select = str(other)
        self.confirm(edit)

    def action_move_up(self) -> None:
        """Exchange the selected rule with the one above it."""
        self._move(-1)

    def action_move_down(self) -> None:
        """Exchange the selected rule with the one below it."""
        self._move(+1)
