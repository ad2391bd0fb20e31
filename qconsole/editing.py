"""A pending edit of one control file: the changed lines, their findings, the save.

The console never rewrites a whole file: an edit is a line replaced, inserted,
deleted or swapped on a copy of the :class:`~qremote.control.controlfile.ControlFile` as it
was read, so every other byte stays as the operator left it. The edited files are
checked with ``qremote check``'s own functions before anything is written, and
:func:`qremote.control.controlwrite.save` refuses when the file changed on disk meanwhile.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from qremote.control.check import check
from qremote.control.config import Config, build_config
from qremote.control.controlfile import ControlFile
from qremote.control.controlwrite import diff, save
from qremote.control.findings import Finding

# Findings about a line's style, not its meaning: a new line takes the file's usual
# line ending, so a CRLF file's new line warns as each of its lines does already.
STYLE = frozenset({"line ends with CRLF; the CR is ignored"})


class Edit:
    """One change to control/``name``, ready to be shown as a diff and saved."""

    def __init__(self, config: Config, name: str, summary: str) -> None:
        self.config = config
        self.name = name
        self.summary = summary
        self.select: str | None = None  # the row key to put the cursor on once saved
        self.values: dict[str, str] | None = None  # the form's fields, if from a form
        source = config.files.get(name) or ControlFile(name, exists=False)
        self.before: bytes | None = source.render() if source.exists else None
        self.file = ControlFile.from_bytes(name, self.before or b"")
        self._findings: list[Finding] | None = None  # checked once, after the last change

    @property
    def after(self) -> bytes:
        """The file's bytes once edited."""
        return self.file.render()

    def replace(self, number: int, text: str | None) -> Edit:
        """Replace line ``number`` (None deletes it)."""
        self.file.replace(number, text)
        self._findings = None
        return self

    def insert(self, number: int, text: str) -> Edit:
        """Insert a line before line ``number`` (past the end appends)."""
        self.file.insert(min(number, len(self.file.lines) + 1), text)
        self._findings = None
        return self

    def swap(self, first: int, second: int) -> Edit:
        """Exchange two lines' texts; each keeps its own line ending."""
        lines = self.file.lines
        a, b = lines[first - 1].text, lines[second - 1].text
        if a is None or b is None:
            raise ValueError("only decodable lines can be moved")
        self.file.replace(first, b)
        self.file.replace(second, a)
        self._findings = None
        return self

    def diff(self) -> str:
        """The unified diff the operator confirms."""
        return diff(self.name, self.before or b"", self.after)

    def findings(self) -> list[Finding]:
        """``qremote check``'s findings on the configuration as it would be saved."""
        if self._findings is None:
            files = dict(self.config.files)
            files[self.name] = self.file
            self._findings = check(build_config(self.config.home, files))
        return self._findings

    def new_errors(self) -> list[Finding]:
        """Errors the edit would bring that the configuration does not already have
        (``check`` adds only warnings, so the loaded configuration's errors are all)."""
        return self.brought(self.config.findings, "error")

    def written(self) -> set[int]:
        """The numbers of the edited file's lines that the edit wrote (their bytes are
        not among the lines the file had)."""
        old = Counter(line.raw for line in ControlFile.from_bytes(
            self.name, self.before or b"").lines)
        out = set()
        for line in self.file.lines:
            if old[line.raw] > 0:
                old[line.raw] -= 1
            else:
                out.add(line.number)
        return out

    def brought(self, known: Iterable[Finding], severity: str) -> list[Finding]:
        """The findings of ``severity`` the edit brings: of each finding's words (file
        and text), as many more as the edited configuration has than ``known`` has,
        those on the lines the edit wrote first. A finding's words alone are not
        enough: "never matches: line 1 (acme.example;*) matches first" said of a rule
        the file had hid the same said of the new one."""
        left = Counter((f.file, f.text) for f in known if f.severity == severity)
        found = [f for f in self.findings() if f.severity == severity]
        written = self.written()
        out = []
        # the known ones are matched with the findings on lines the edit did not write
        for f in sorted(found, key=lambda f: f.file == self.name and f.line in written):
            key = (f.file, f.text)
            if left[key] > 0:
                if f.text not in STYLE:
                    left[key] -= 1
            else:
                out.append(f)
        return [f for f in found if f in out]

    def save(self) -> Path | None:
        """Write the file (ConflictError if it changed on disk); returns the backup."""
        return save(self.config.home / "control" / self.name, self.before, self.after)


def content_neighbour(file: ControlFile, number: int, step: int) -> int | None:
    """The nearest content line above (step -1) or below (+1) line ``number``."""
    lines = file.lines
    i = number - 1 + step
    while 0 <= i < len(lines):
        if lines[i].is_content:
            return i + 1
        i += step
    return None
