"""Control files as lines that round-trip byte for byte.

A :class:`ControlFile` keeps every line's raw bytes, terminator included, so that
``render()`` gives back exactly what was read (comments, blank lines, CRLF, even
invalid UTF-8). The console edits one line and writes the file back; nothing else
in the operator's file moves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple, TypeVar

from qremote.control.findings import Finding
from qremote.errors import LineError

T = TypeVar("T")

MAX_LINE = 4096


class Line(NamedTuple):
    """One physical line: its 1-based number, raw bytes, and decoded text.

    ``text`` is None when the bytes are not UTF-8 (``problem`` then says why);
    it never holds the line terminator.
    """

    number: int
    raw: bytes
    text: str | None
    crlf: bool
    problem: str | None = None

    @property
    def is_content(self) -> bool:
        """True unless the line is blank or a ``#`` comment."""
        if self.text is None:
            return True
        stripped = self.text.strip()
        return bool(stripped) and not stripped.startswith("#")


def split_raw(data: bytes) -> list[bytes]:
    """Split ``data`` into lines that keep their ``\\n`` (the last may lack it)."""
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def decode_line(number: int, raw: bytes) -> Line:
    """Decode one raw line, noting CRLF, bad UTF-8, NUL bytes and excess length."""
    body = raw[:-1] if raw.endswith(b"\n") else raw
    crlf = body.endswith(b"\r")
    if crlf:
        body = body[:-1]
    if len(body) > MAX_LINE:
        return Line(number, raw, None, crlf,
                    f"line is {len(body)} bytes long; the limit is {MAX_LINE}")
    nul = body.find(b"\0")
    if nul >= 0:
        return Line(number, raw, None, crlf, f"NUL byte at column {nul + 1}; remove it")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = body[exc.start]
        return Line(number, raw, None, crlf,
                    f"byte 0x{bad:02x} at column {exc.start + 1} is not UTF-8; "
                    "save the file as UTF-8")
    return Line(number, raw, text, crlf)


class ControlFile:
    """A control file as read: its name, its lines, and whether it exists.

    The bytes are kept as read; :attr:`lines` (one :class:`Line` each) is built on
    first use, so the hot path of qmail-remote (:meth:`texts`) stays cheap.
    """

    def __init__(self, name: str, lines: list[Line] | None = None,
                 exists: bool = True) -> None:
        self.name = name
        self.exists = exists
        self._data: bytes | None = None
        self._lines: list[Line] | None = lines if lines is not None else []

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> ControlFile:
        """Build from raw bytes; never raises."""
        cf = cls(name)
        cf._data, cf._lines = data, None
        return cf

    @property
    def lines(self) -> list[Line]:
        """Every physical line, built on first use."""
        if self._lines is None:
            data = self._data or b""
            self._lines = [decode_line(i, raw) for i, raw in enumerate(split_raw(data), 1)]
        return self._lines

    @lines.setter
    def lines(self, value: list[Line]) -> None:
        self._lines, self._data = value, None

    def _fast_text(self) -> str | None:
        """The whole file as text when no line needs a finding (UTF-8, no NUL, no CR,
        no long line); None otherwise."""
        if self._lines is not None or self._data is None:
            return None
        data = self._data
        if b"\r" in data or b"\0" in data:
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if len(data) > MAX_LINE and max(map(len, data.split(b"\n"))) > MAX_LINE:
            return None
        return text

    def render(self) -> bytes:
        """The file's bytes, identical to what was read when nothing was edited."""
        if self._lines is None:
            return self._data or b""
        return b"".join(line.raw for line in self._lines)

    def content(self) -> Iterator[Line]:
        """Lines that are neither blank nor comments (undecodable lines included)."""
        return (line for line in self.lines if line.is_content)

    def texts(self) -> Iterator[tuple[int, str]]:
        """(number, text) of each decodable content line, CR removed."""
        text = self._fast_text()
        if text is None:
            return ((line.number, line.text) for line in self.content()
                    if line.text is not None)
        return ((i, t) for i, t in enumerate(text.split("\n"), 1)
                if (s := t.strip()) and s[0] != "#")

    def parsed(self, parse: Callable[[str, int], T], findings: list[Finding],
               ) -> Iterator[T]:
        """Each content line through ``parse(text, number)``; a LineError becomes an
        error finding for that line, and the line is skipped."""
        fast = self._fast_text()
        # The common case is inlined: this loop runs once per routemap line.
        numbered = self.texts() if fast is None else enumerate(fast.split("\n"), 1)
        for number, text in numbered:
            if not text or text[0] == "#" or (text[0] in " \t" and (
                    not text.strip() or text.lstrip()[0] == "#")):
                continue
            try:
                yield parse(text, number)
            except LineError as exc:
                findings.append(Finding(self.name, number, "error", str(exc)))

    def line_findings(self) -> list[Finding]:
        """Findings every control file shares: undecodable lines and CRLF endings."""
        if self._fast_text() is not None:
            return []
        out: list[Finding] = []
        for line in self.lines:
            if line.problem:
                out.append(Finding(self.name, line.number, "error", line.problem))
            elif line.crlf and line.is_content:
                out.append(Finding(self.name, line.number, "warning",
                                   "line ends with CRLF; the CR is ignored"))
        return out

    def replace(self, number: int, text: str | None) -> None:
        """Replace line ``number`` by ``text`` (None deletes it), keeping its line ending."""
        lines = self.lines
        old = lines[number - 1]
        if text is None:
            del lines[number - 1]
        else:
            ending = b"\r\n" if old.crlf else (b"\n" if old.raw.endswith(b"\n") else b"")
            lines[number - 1] = decode_line(number, text.encode("utf-8") + ending)
        self._renumber()

    def insert(self, number: int, text: str) -> None:
        """Insert ``text`` as line ``number`` (``len(lines)+1`` appends)."""
        lines = self.lines
        # The file's usual ending: CRLF when at least half the ended lines use it.
        crlf = sum(line.crlf for line in lines)
        ended = sum(line.raw.endswith(b"\n") for line in lines)
        ending = b"\r\n" if crlf and crlf * 2 >= ended else b"\n"
        if lines and not lines[-1].raw.endswith(b"\n") and number > len(lines):
            lines[-1] = decode_line(lines[-1].number, lines[-1].raw + ending)
        lines.insert(number - 1, decode_line(number, text.encode("utf-8") + ending))
        self._renumber()

    def _renumber(self) -> None:
        self.lines = [decode_line(i, line.raw) for i, line in enumerate(self.lines, 1)]
