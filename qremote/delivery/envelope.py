"""Envelope addresses on the wire, as qmail's ``quote()`` writes them.

qmail-remote gets the sender and recipients as argv bytes. The local part (before the
last ``@``) is sent as it is when it is a dot-atom of RFC 5321's safe characters,
else as a quoted string (``"john smith"@example.com``), with ``"`` and ``\\`` escaped
by a backslash. Bytes above 127 also make qmail quote. An address with no ``@`` (the
null sender ``""`` among them) is left alone, except that here a non-empty one that
needs quoting is quoted too.

A CR, LF or NUL can never be sent: qmail's ``quote()`` puts a backslash before CR and
LF but still sends them, which lets an envelope inject SMTP commands. Such an address
is refused (:func:`unsendable`) before any connection.
"""

from __future__ import annotations

import os

# The bytes qmail's quote() leaves unquoted (RFC 821 atom characters and the dot).
_ATOM = frozenset(b"!#$%&'*+-./0123456789=?ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`"
                  b"abcdefghijklmnopqrstuvwxyz{|}~")
_FORBIDDEN = (b"\r", b"\n", b"\0")


def to_bytes(address: str | bytes) -> bytes:
    """argv text back to its bytes (non-UTF-8 bytes survive as surrogates)."""
    return address if isinstance(address, bytes) else os.fsencode(address)


def needs_quoting(box: bytes) -> bool:
    """qmail's quote_need(): empty, a byte outside the atom set, or a misplaced dot."""
    if not box:
        return True
    if any(b not in _ATOM for b in box):
        return True
    return box.startswith(b".") or box.endswith(b".") or b".." in box


def quote_box(box: bytes) -> bytes:
    """The local part as it goes on the wire."""
    if not needs_quoting(box):
        return box
    return b'"' + box.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def wire(address: str | bytes) -> bytes:
    """The address between ``<`` and ``>`` of ``MAIL FROM`` / ``RCPT TO``."""
    raw = to_bytes(address)
    box, at, domain = raw.rpartition(b"@")
    if not at:
        return quote_box(raw) if raw else b""
    return quote_box(box) + b"@" + domain


def unsendable(address: str | bytes) -> str | None:
    """Why ``address`` can never be sent over SMTP, or None."""
    raw = to_bytes(address)
    for byte, name in zip(_FORBIDDEN, ("a CR", "an LF", "a NUL byte"), strict=True):
        if byte in raw:
            return f"it contains {name}, which SMTP cannot carry in an address"
    return None
