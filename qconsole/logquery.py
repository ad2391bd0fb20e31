"""The logs view's filter language, as pure functions.

A filter is terms separated by spaces, all of which must hold (``"..."`` quotes a
term with spaces):

- ``text``: the row's log lines contain it, in any case, ``_`` and space alike
  (qmail-send writes the spaces of a report as ``_``); a letter beyond ASCII matches
  its upper- and lower-case forms as UTF-8 (a word holding one is searched as a
  pattern, :func:`word_regex`);
- ``/regex/``: a Python regular expression searched in the raw log lines; in any
  case unless it holds an upper-case letter (smart case); one that holds a
  character beyond ASCII reads the lines as characters (:func:`regex_text`);
- ``field:value``: ``route:``, ``ip:`` (the local IP), ``remote:``, ``tls:``,
  ``auth:`` (from the detail line), ``result:`` (success, deferral, failure,
  bounce, raw; a prefix will do), ``to:`` and ``from:`` (an address, or a domain
  alone), ``msg:`` (qmail's message number). A value is compared exactly (any case);
  ``*`` is a wildcard; ``route:?`` and ``route:(local)`` (what the Route column shows
  for a report without a detail line and for a local delivery) stand for the terms
  that find those rows (:data:`NO_ROUTE`);
- ``-term``: the term must not hold.

Each term knows bytes that any line it holds for must contain (``patterns``, in the
*normalised* form: lower case, ``_`` as space), so the search can look for them in large
blocks of the raw file and only look closer at the lines that hold them (``msg:N`` holds
for the message's triple bounce lines too, which
:func:`~qconsole.logformat.triple_bounces` finds).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import NamedTuple

from qconsole.logformat import (
    E_BOUNCE,
    E_INFO,
    E_MSG,
    E_RCPT,
    E_SENDER,
    E_STATUS,
    E_TEXT,
    E_TRIPLE,
    detail_of,
    event,
)
from qremote.delivery.report import Detail

_UPPER = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = b"abcdefghijklmnopqrstuvwxyz"
NORMAL = bytes.maketrans(_UPPER + b"_", _LOWER + b" ")  # plain text and fields
LOWER = bytes.maketrans(_UPPER, _LOWER)  # smart-case regexes
RESULTS = ("success", "deferral", "failure", "bounce", "raw")
DETAIL_FIELDS = ("route", "ip", "remote", "tls", "auth")
FIELDS = (*DETAIL_FIELDS, "result", "to", "from", "msg")
ALIASES = {"local": "ip", "status": "result", "rcpt": "to", "sender": "from"}


class QueryError(ValueError):
    """The filter cannot be read; the text says why."""


class Lines(NamedTuple):
    """A row's raw log lines (start and info None when not known) and its status."""

    result: bytes
    start: bytes | None
    info: bytes | None
    status: str


def normal(data: bytes) -> bytes:
    """Bytes in the normalised form the plain-text terms compare."""
    return data.translate(NORMAL)


def _value_matches(pattern: str, value: str) -> bool:
    value = value.lower()
    if "*" in pattern:
        return fnmatch.fnmatchcase(value, pattern)
    return value == pattern


def _literal(pattern: str) -> bytes | None:
    """The longest run without a wildcard (at least 3 bytes), or None."""
    best = max(re.split(r"[*?\[\]]", pattern), key=len)
    return best.encode() if len(best) >= 3 else None


def _case_forms(c: str) -> set[str]:
    """A character and its upper-, lower- and title-case forms (those that are one
    character), and theirs."""
    forms = {c, c.lower(), c.upper(), c.title()}
    forms.update(*({f.lower(), f.upper(), f.title()} for f in list(forms)))
    return {f for f in forms if len(f) == 1}


def _caseless(pattern: bytes) -> bytes:
    """The longest part of a field's pattern (lower-cased) without a letter beyond ASCII
    that has other case forms: the log may hold that letter in any of them."""
    parts, part = [b""], []
    for c in pattern.decode():
        if not c.isascii() and len(_case_forms(c)) > 1:
            parts.append("".join(part).encode())
            part = []
        else:
            part.append(c)
    parts.append("".join(part).encode())
    return max(parts, key=len)


_LETTERS = ((65, 90), (97, 122))  # A-Z, a-z


def case_blind(pattern: bytes, flags: int = 0) -> bool:
    """Whether lower-casing the ASCII letters of what ``pattern`` searches never
    changes where it finds a match: it names no letter (a literal, a class, a range
    across letters) and refers back to no group. Unsure: False."""
    try:
        from re import _constants as sre
        from re import _parser

        tree = _parser.parse(pattern, flags)
    except Exception:  # (another Python's internals: the lower-cased copy is searched)
        return False

    def letter(c: int) -> bool:
        return any(lo <= c <= hi for lo, hi in _LETTERS)

    def blind(items) -> bool:  # type: ignore[no-untyped-def]
        for op, av in items:
            if op in (sre.LITERAL, sre.NOT_LITERAL):
                if letter(av):
                    return False
            elif op is sre.IN:
                for o, a in av:
                    if o in (sre.LITERAL, sre.NOT_LITERAL) and letter(a):
                        return False
                    if o is sre.RANGE and any(a[0] <= hi and a[1] >= lo for lo, hi in _LETTERS):
                        return False
                    if o not in (sre.LITERAL, sre.NOT_LITERAL, sre.RANGE, sre.NEGATE,
                                 sre.CATEGORY):
                        return False
            elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
                if not blind(av[2]):
                    return False
            elif op is sre.SUBPATTERN:
                if not blind(av[3]):
                    return False
            elif op is sre.BRANCH:
                if not all(map(blind, av[1])):
                    return False
            elif op in (sre.ASSERT, sre.ASSERT_NOT):
                if not blind(av[1]):
                    return False
            elif op is sre.ATOMIC_GROUP:
                if not blind(av):
                    return False
            elif op not in (sre.ANY, sre.AT):
                return False  # (a back reference, or what this does not know)
        return True

    return blind(tree)


def word_regex(word: str) -> re.Pattern[bytes]:
    """A word as a pattern of lower-cased bytes (:data:`LOWER`): ``_`` and space alike,
    each letter beyond ASCII in any of its case forms (the UTF-8 of each), so that
    ``MÜLLER`` finds ``müller`` as ``MULLER`` finds ``muller``."""
    parts = []
    for c in word:
        if c in " _":
            parts.append(rb"[ _]")
        elif c.isascii():
            parts.append(re.escape(c.lower().encode()))
        else:
            forms = sorted({f.encode().translate(LOWER) for f in _case_forms(c)})
            parts.append(b"(?:" + b"|".join(map(re.escape, forms)) + b")")
    return re.compile(b"".join(parts))


def regex_text(pattern: str, caseless: bool) -> str:
    """A ``/regex/`` holding characters beyond ASCII, as a pattern of characters
    searched in the decoded lines (:func:`searched`): ``[éè]`` is a set of two
    letters, ``.`` one character. ``caseless`` (smart case: no upper-case letter), for
    lines lower-cased by :data:`LOWER` (ASCII only): each character beyond ASCII, and
    each ``[...]`` set holding one, matches in any case (``(?i:...)``), so that ``é``
    finds ``É`` as in :func:`word_regex`, and ``[éè]`` finds ``È``."""
    def cased(piece: str) -> str:
        return f"(?i:{piece})" if caseless and not piece.isascii() else piece

    out: list[str] = []
    i, set_from, set_out = 0, -1, 0  # where the [...] being read starts (-1: none)
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            escaped = pattern[i + 1]  # one beyond ASCII: the character itself
            out.append(pattern[i:i + 2] if escaped.isascii() else
                       escaped if set_from >= 0 else cased(escaped))
            i += 2
            continue
        if set_from >= 0:
            first = set_from + 1 + (pattern[set_from + 1:set_from + 2] == "^")
            out.append(c)
            if c == "]" and i > first:  # (a "]" first in the set is one of its own)
                out[set_out:] = [cased("".join(out[set_out:]))]
                set_from = -1
        elif c == "[":
            set_from, set_out = i, len(out)
            out.append(c)
        else:
            out.append(cased(c))
        i += 1
    return "".join(out)


def searched(rx: re.Pattern, data: bytes) -> bytes | str:
    """Raw log bytes (lower-cased already for a smart-case regex) as ``rx`` reads
    them: a pattern of characters (:func:`regex_text`) reads them decoded, bytes that
    are not UTF-8 as lone surrogates (matched by ``.`` and negated sets only)."""
    return data.decode("utf-8", "surrogateescape") if isinstance(rx.pattern, str) else data


class Term:
    """One term of a filter."""

    def __init__(self, field: str, value: str, negate: bool = False) -> None:
        self.field = field  # "text", "regex" or one of FIELDS
        self.value = value
        self.negate = negate
        self.regex: re.Pattern | None = None  # of bytes, or str (:func:`regex_text`)
        self.lowered = False  # the regex runs on lower-cased bytes (smart case)
        # An ASCII /regex/ as a pattern of characters, for lines beyond ASCII ("." is
        # one character there, as on an ASCII line); re.ASCII keeps \w, \s and \b as
        # the bytes pattern has them.
        self.chars: re.Pattern[str] | None = None
        self.patterns: tuple[bytes, ...] = ()
        if field == "text":
            self.patterns = (normal(value.encode()),)
            if any(len(_case_forms(c)) > 1 for c in value if not c.isascii()):
                self.regex, self.lowered, self.patterns = word_regex(value), True, ()
        elif field == "regex":
            self.lowered = not any(c.isupper() for c in value)
            try:
                self.regex = re.compile(value.encode() if value.isascii() else
                                        regex_text(value, self.lowered), re.MULTILINE)
            except re.error as exc:
                raise QueryError(f"/{value}/ is not a regular expression: {exc}") from None
            if value.isascii():
                # (no letter in it: the raw bytes are searched, not a lower-cased copy)
                self.lowered = self.lowered and not case_blind(self.regex.pattern,
                                                               re.MULTILINE)
                try:
                    self.chars = re.compile(value, re.MULTILINE | re.ASCII)
                except re.error:  # ((?L) is for bytes only: those lines read as bytes)
                    pass
        else:
            self.value = value.lower()
            self.patterns = tuple(filter(None, map(normal, map(_caseless, self._field_patterns()))))

    def _field_patterns(self) -> tuple[bytes, ...]:
        v, glob = self.value, "*" in self.value
        if self.field == "result":
            names = [r for r in RESULTS if r.startswith(v)]
            if not v or not names:
                raise QueryError(f"result:{v}: write one of {', '.join(RESULTS)}")
            self.value = names[0] if len(names) == 1 else v
            if len(names) > 1:
                raise QueryError(f"result:{v} is ambiguous: {', '.join(names)}")
            return {"bounce": (b"bounce",), "raw": ()}.get(
                names[0], (f": {names[0]}:".encode(),))
        if not v:
            raise QueryError(f"{self.field}: needs a value, e.g. {self.field}:x")
        if glob:
            literal = _literal(v)
            return (literal,) if literal else ()
        b = v.encode()
        if self.field == "route" and v == "?":  # (a report without a detail line)
            return ()
        if self.field == "route":
            return (b"route=" + b + b" local=",)
        if self.field == "ip":
            return (b" local=" + b + b" remote=",)
        if self.field == "remote":  # the address alone may be what matches ([::1])
            return (b.strip(b"[]"),)
        if self.field == "tls":
            return (b" tls=" + b + b" auth=",)
        if self.field == "auth":
            return (b" auth=" + b,)
        if self.field in ("to", "from"):  # (a domain: the whole of an address
            return (b,)                    # without "@", or "<>")
        if self.field == "msg":
            if not v.isdigit():
                raise QueryError(f"msg:{v}: a message number is digits")
            return (b"msg " + b,)  # (and its triple bounces: logformat.triple_bounces)
        raise AssertionError(self.field)

    def search_line(self, line: bytes) -> bool:
        """Whether the term's regex finds a match in one raw line (lower-cased here for
        smart case): a line beyond ASCII is read as characters."""
        rx = self.regex
        assert rx is not None
        text = line.translate(LOWER) if self.lowered else line
        if self.chars is not None and not text.isascii():
            rx = self.chars
        return rx.search(searched(rx, text)) is not None

    @property
    def needs(self) -> tuple[str, ...]:
        """The joined lines (``start``, ``info``) the term reads besides the result."""
        return {"text": ("start", "info"), "regex": ("start", "info"), "to": ("start",),
                "from": ("info",), "msg": ("start", "info")}.get(self.field, ())

    def holds(self, lines: Lines) -> bool:
        """Whether the term (before negation) holds for a row."""
        f = self.field
        if f == "text" and self.regex is None:
            needle = self.patterns[0]
            return any(line is not None and needle in normal(line) for line in lines[:3])
        if f in ("regex", "text"):  # (a regex, or a word with letters beyond ASCII)
            return any(line is not None and self.search_line(line) for line in lines[:3])
        if f == "result":
            return lines.status == self.value
        if f in DETAIL_FIELDS:
            return self._detail_holds(lines.result)
        if f == "to":
            return self._address_holds(_group(lines.start, E_MSG, E_RCPT))
        if f == "from":
            sender = _group(lines.info, E_INFO, E_SENDER)
            return sender is not None and self._address_holds(sender or "<>")
        if f == "msg":
            return self.value in (_group(lines.start, E_MSG, E_MSG),
                                  _group(lines.info, E_INFO, E_INFO),
                                  _group(lines.result, E_BOUNCE, E_BOUNCE),
                                  _group(lines.result, E_TRIPLE, E_TRIPLE))
        raise AssertionError(f)

    def _detail_holds(self, result: bytes) -> bool:
        m = event(result)
        if m is None or m[E_STATUS] is None:
            return False
        detail = detail_of(m[E_TEXT].decode("utf-8", "replace").rstrip("\r"))[0]
        return self.bare if detail is None else self.detail_value_holds(detail)

    @property
    def bare(self) -> bool:
        """The term holds for a report without a detail line (``route:?``)."""
        return self.field == "route" and self.value == "?"

    def detail_value_holds(self, detail: Detail) -> bool:
        """Whether a ``route:``, ``ip:``, ``remote:``, ``tls:`` or ``auth:`` term holds
        for a row with this detail line."""
        if self.field == "remote":
            address = detail.remote.rsplit(":", 1)[0].strip("[]")
            return (_value_matches(self.value, detail.remote)
                    or _value_matches(self.value.strip("[]"), address))
        value = {"route": detail.route, "ip": detail.local, "tls": detail.tls,
                 "auth": detail.auth}[self.field]
        return _value_matches(self.value, value)

    def address_test(self) -> Callable[[bytes], bool]:
        """For ``to:`` and ``from:``: a test of an address given as lower-case ASCII
        bytes that says what :meth:`holds` says of it."""
        value = self.value
        # (a CRLF line's recipient ends in "\r", which the row shown leaves out)
        if "@" not in value and "*" not in value:
            domain = value.encode()
            return lambda address: address.rstrip(b"\r").rpartition(b"@")[2] == domain
        if "*" in value:
            match = re.compile(fnmatch.translate(value).encode(), re.S).match
            return lambda address: match(address.rstrip(b"\r")) is not None
        exact = value.encode()
        return lambda address: address.rstrip(b"\r") == exact

    def _address_holds(self, address: str | None) -> bool:
        if address is None:
            return False
        address = address.rstrip("\r")  # as the row shows it (logformat.decode)
        if "@" not in self.value and "*" not in self.value:
            return address.rpartition("@")[2].lower() == self.value
        return _value_matches(self.value, address)

    def __str__(self) -> str:
        body = (f"/{self.value}/" if self.field == "regex" else self.value
                if self.field == "text" else f"{self.field}:{self.value}")
        return ("-" if self.negate else "") + body


def _group(line: bytes | None, present: int, wanted: int) -> str | None:
    """Group ``wanted`` of the line's event when group ``present`` matched."""
    if line is None:
        return None
    m = event(line)
    if m is None or m[present] is None:
        return None
    return m[wanted].decode("utf-8", "replace")


class Query:
    """A parsed filter: every term must hold."""

    def __init__(self, text: str, terms: list[Term]) -> None:
        self.text = text
        self.terms = terms

    @property
    def driver(self) -> Term | None:
        """The term whose patterns the search looks for in the file: the positive term
        with the longest literal pattern, else a regex (None: every row is looked at)."""
        def rank(t: Term) -> int:
            return min(len(p) for p in t.patterns) if t.patterns else 0

        candidates = [t for t in self.terms if not t.negate and (t.patterns or t.regex)]
        return max(candidates, key=rank, default=None)

    def matches(self, lines: Lines) -> bool:
        """Whether every term holds for the row."""
        return all(t.holds(lines) != t.negate for t in self.terms)

    def __str__(self) -> str:
        return " ".join(str(t) for t in self.terms)


# What the Route column shows for a row without a route (logformat.delivery), as the
# terms that find those rows: ``?``, a report without a detail line (qmail's own
# qmail-remote wrote it: Term.bare) that is not a local delivery's; ``(local)``, a
# local delivery's. (qmail-send writes a report's spaces as "_": ": msg N to local "
# is in a start line only.)
_LOCAL_START = r": msg [0-9]+ to local "
NO_ROUTE = {"?": (("route", "?"), ("regex", _LOCAL_START, True)),
            "(local)": (("route", "?"), ("regex", _LOCAL_START))}


def parse_query(text: str) -> Query:
    """Read a filter (see the module's documentation); QueryError when it cannot."""
    terms: list[Term] = []
    for m in _TOKEN.finditer(text):
        negate, body = bool(m["neg"]) and len(m[0]) > 1, m["body"]
        if m["regex"] is not None:
            terms.append(Term("regex", m["regex"], negate))
            continue
        name, sep, value = body.partition(":")
        name = ALIASES.get(name.lower(), name.lower())
        if sep and name == "route" and (shown := _unquote(value).lower()) in NO_ROUTE:
            if negate:
                raise QueryError(f"-route:{shown}: route:? and route:(local) cannot be "
                                 "excluded (each stands for two terms)")
            terms.extend(Term(*term) for term in NO_ROUTE[shown])
        elif sep and name in FIELDS:
            terms.append(Term(name, _unquote(value), negate))
        elif body:
            terms.append(Term("text", _unquote(body), negate))
    query = Query(text, terms)
    if query.driver is None and any(t.field == "result" and t.value == "raw" and not t.negate
                                    for t in terms):
        # (raw lines are found by what they hold: without it, none is ever shown)
        raise QueryError("result:raw needs a word or a /regex/ that the lines hold "
                         "(for example: warning result:raw)")
    return query


# A term: an optional "-", then /regex/ (with \/ inside), or a word that may hold a
# "quoted part with spaces" (e.g. "mailbox full" or to:"x@y").
_TOKEN = re.compile(r'''(?P<neg>-?)(?:/(?P<regex>(?:\\.|[^/\\])*)/(?=\s|$)'''
                    r'''|(?P<body>(?:"[^"]*"?|[^\s"])+))''')


def _unquote(text: str) -> str:
    return text.replace('"', "")
