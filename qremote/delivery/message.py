"""The message as SMTP carries it: line breaks, dot-stuffing, streamed in bounded chunks.

:class:`BodyEncoder` is the pure conversion, fed any chunking of the input: every line
break of the input (LF, CRLF, or a bare CR) becomes CRLF on the wire, and every line
that starts with a dot gets a second one; a missing final line break is added. qmail's
own qmail-remote (notqmail) also turns a bare CR into CRLF, but then forgets to
dot-stuff the line that follows it, so ``a\\r.\\n`` would end the data early: here the
rule is applied after every line break, whatever its form.

:class:`Message` holds the source (a file descriptor or bytes) and reads it twice
in chunks: once to learn the size on the wire and whether it has 8-bit bytes (needed
for ``SIZE=`` and ``BODY=8BITMIME`` before ``MAIL FROM``), once to send. Memory stays
bounded whatever the message size. A pipe cannot be read twice, so it is first copied
to an unlinked temporary file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

CHUNK = 1 << 16
SMALL = 1 << 20  # messages up to this size are simply kept in memory


class BodyEncoder:
    """Incremental conversion of message bytes to the SMTP DATA stream (no final dot).

    ``stuff=False`` gives the same without dot-stuffing: the content of a ``BDAT``
    chunk (RFC 3030), which has no end-of-data line to protect."""

    def __init__(self, stuff: bool = True) -> None:
        self._stuff = stuff
        self._line_start = True
        self._cr = False  # the last chunk ended with a CR: LF or not decides
        self._empty = True

    def feed(self, chunk: bytes) -> bytes:
        """The wire bytes for ``chunk``."""
        if self._cr:
            chunk = b"\r" + chunk
            self._cr = False
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
            self._cr = True
        if not chunk:
            return b""
        self._empty = False
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        out = chunk
        if self._stuff:
            out = out.replace(b"\n.", b"\n..")
            if self._line_start and out[:1] == b".":
                out = b"." + out
        self._line_start = out.endswith(b"\n")
        return out.replace(b"\n", b"\r\n")

    def end(self) -> bytes:
        """What completes the stream: the final line break when it was missing."""
        if self._cr or (not self._empty and not self._line_start):
            self._cr, self._line_start = False, True
            return b"\r\n"
        return b""


def encode(data: bytes, stuff: bool = True) -> bytes:
    """The whole DATA stream of ``data`` (without the final ``.``)."""
    enc = BodyEncoder(stuff)
    return enc.feed(data) + enc.end()


def _stuffed(plain: bytes) -> bytes:
    """The DATA stream of ``plain`` (``encode(data, stuff=False)``), which is
    ``encode(data)``: every line break there is CRLF, so a line starts with a dot
    exactly after an LF, or at the very start."""
    out = plain.replace(b"\n.", b"\n..")
    return b"." + out if out[:1] == b"." else out


class MessageError(OSError):
    """The message could not be read (qmail-remote: ``Unable to read message``)."""


class Message:
    """The message of one delivery: read from a file descriptor or given as bytes."""

    def __init__(self, data: bytes | None = None, fd: int | None = None,
                 owned: bool = False) -> None:
        self._fd = fd
        self._owned = owned  # a spool file of ours, closed by close()
        self._data = data
        self._plain: bytes | None = None  # held in memory: the content, CRLF, unstuffed
        self._wire: bytes | None = None  # and its DATA stream, made when first needed
        self.size = 0  # bytes on the wire, final dot excluded
        self.eightbit = False
        if data is not None:
            self._plain = encode(data, stuff=False)
            plain = self._plain  # each line that starts with a dot gets a second one
            self.size = len(plain) + plain.count(b"\n.") + (plain[:1] == b".")
            self.eightbit = not data.isascii()
        else:
            self._scan()

    @classmethod
    def from_fd(cls, fd: int) -> Message:
        """The message readable on ``fd``: a regular file is read where it is (from
        offset 0, as qmail hands over the queue file); a pipe is spooled first."""
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode):
                if st.st_size <= SMALL:
                    return cls(data=_pread_all(fd))
                return cls(fd=fd)
            return _spool(fd)
        except OSError as exc:
            raise MessageError(exc.errno, f"cannot read the message: {exc.strerror}") from None

    def unstuffed(self) -> bytes | None:
        """The whole content for one ``BDAT ... LAST`` when the message is small
        enough to be held in memory; None otherwise (DATA is used)."""
        return self._plain

    def close(self) -> None:
        """Release the spool file, if any (the caller's descriptor stays open)."""
        if self._owned and self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _raw_chunks(self) -> Iterator[bytes]:
        assert self._fd is not None
        offset = 0
        while True:
            try:
                chunk = os.pread(self._fd, CHUNK, offset)
            except OSError as exc:
                raise MessageError(exc.errno, "cannot read the message: "
                                              f"{exc.strerror}") from None
            if not chunk:
                return
            offset += len(chunk)
            yield chunk

    def _scan(self) -> None:
        enc = BodyEncoder()
        size = 0
        eightbit = False
        for chunk in self._raw_chunks():
            size += len(enc.feed(chunk))
            eightbit = eightbit or not chunk.isascii()
        self.size = size + len(enc.end())
        self.eightbit = eightbit

    def chunks(self) -> Iterator[bytes]:
        """The DATA stream in chunks of bounded size (the final ``.`` not included)."""
        if self._plain is not None:
            if self._wire is None:
                self._wire = _stuffed(self._plain)
            for i in range(0, len(self._wire), CHUNK):
                yield self._wire[i:i + CHUNK]
            return
        enc = BodyEncoder()
        for chunk in self._raw_chunks():
            out = enc.feed(chunk)
            if out:
                yield out
        tail = enc.end()
        if tail:
            yield tail


def _pread_all(fd: int) -> bytes:
    parts = []
    offset = 0
    while chunk := os.pread(fd, SMALL + 1, offset):
        parts.append(chunk)
        offset += len(chunk)
    return b"".join(parts)


def _spool(fd: int) -> Message:
    """Read a pipe: in memory while small, else into an unlinked temporary file."""
    parts = []
    total = 0
    while total <= SMALL:
        chunk = os.read(fd, CHUNK)
        if not chunk:
            return Message(data=b"".join(parts))
        parts.append(chunk)
        total += len(chunk)
    tmp = _tempfile()
    try:
        _write_all(tmp, b"".join(parts))
        del parts
        while chunk := os.read(fd, CHUNK):
            _write_all(tmp, chunk)
        return Message(fd=tmp, owned=True)
    except BaseException:
        os.close(tmp)
        raise


def _tempfile() -> int:
    """An unlinked file of this process's, on disk where possible."""
    directory = os.environ.get("TMPDIR") or "/tmp"
    try:
        return os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o600)
    except (OSError, AttributeError):
        return os.memfd_create("qremote-message")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
