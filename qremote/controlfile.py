"""Control files as lines that round-trip byte for byte.

A :class:`ControlFile` keeps every line's raw bytes, terminator included, so that
``render()`` gives back exactly what was read (comments, blank lines, CRLF, even
invalid UTF-8). The console edits one line and writes the file back; nothing else
in the operator's file moves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from qremote.findings import Finding

MAX_LINE = 4096


@dataclass(frozen=True)
class Line:
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


@dataclass
class ControlFile:
    """A control file as read: its name, lines, and whether it exists."""

    name: str
    lines: list[Line] = field(default_factory=list)
    exists: bool = True

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> ControlFile:
        """Build from raw bytes; never raises."""
        return cls(name, [decode_line(i, raw) for i, raw in enumerate(split_raw(data), 1)])

    def render(self) -> bytes:
        """The file's bytes, identical to what was read when nothing was edited."""
        return b"".join(line.raw for line in self.lines)

    def content(self) -> Iterator[Line]:
        """Lines that are neither blank nor comments (undecodable lines included)."""
        return (line for line in self.lines if line.is_content)

    def line_findings(self) -> list[Finding]:
        """Findings every control file shares: undecodable lines and CRLF endings."""
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
        idx = number - 1
        old = self.lines[idx]
        if text is None:
            del self.lines[idx]
        else:
            ending = b"\r\n" if old.crlf else (b"\n" if old.raw.endswith(b"\n") else b"")
            self.lines[idx] = decode_line(number, text.encode("utf-8") + ending)
        self._renumber()

    def insert(self, number: int, text: str) -> None:
        """Insert ``text`` as line ``number`` (``len(lines)+1`` appends)."""
        crlf = any(line.crlf for line in self.lines)
        ending = b"\r\n" if crlf else b"\n"
        if self.lines and not self.lines[-1].raw.endswith(b"\n") and number > len(self.lines):
            last = self.lines[-1]
            self.lines[-1] = decode_line(last.number, last.raw + ending)
        self.lines.insert(number - 1, decode_line(number, text.encode("utf-8") + ending))
        self._renumber()

    def _renumber(self) -> None:
        self.lines = [decode_line(i, line.raw) for i, line in enumerate(self.lines, 1)]
