"""One block of a log read at C speed: its rows, the lines a filter term hits, and
the rows that start and info lines lead to.

qmail-send's lines in a log look alike: a prefix of the same shape (multilog's ``@``,
a 24-digit stamp and a space; splogger's or syslog's stamp, host and program; an ISO
stamp...), then the event (see :mod:`qconsole.logformat`). A block's *shape* is the
prefix its qmail-send lines have (:func:`shape_of`). For a *canonical* line (one of
that shape), a few byte comparisons (or one compiled pattern read at the line's start)
say what :func:`~qconsole.logformat.event` would say. Any other line is handed back as
*slow*, for the caller to read the exact way (:mod:`qconsole.logjoin`); so are joins
that lead out of the block. The work is done by ``bytes`` methods and compiled patterns
mapped over lists of offsets (``map`` calls C for each item), not by Python code per
line. Offsets are local to the block.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from itertools import accumulate, chain, compress, islice, repeat
from operator import add, and_, eq, ge, is_not, itemgetter, not_, truth
from typing import TYPE_CHECKING

from qconsole.logformat import E_BOUNCE, E_MSG, E_TRIPLE, EVENT_HEADS, event, foreign
from qconsole.logjoin import BOUNCE, DEFERRAL, FAILURE, SUCCESS
from qconsole.logquery import LOWER, NORMAL, searched

if TYPE_CHECKING:
    from ctypes import CDLL

G_STARTING, G_NUMBER, G_MSG, G_STATUS, G_INFO, G_SENDER, G_BOUNCE, G_TRIPLE = range(1, 9)
K_RESULT, K_START, K_INFO, K_BOUNCE, K_OTHER, K_SLOW = range(6)
STATUS_CODES = {b"success": SUCCESS, b"deferral": DEFERRAL, b"failure": FAILURE}
MULTILOG = rb"@[^\n]{24} "  # "@", 24 hex digits, a space: event() reads at byte 26
# Where qmail-send's events stand, to learn a block's shape from: the prefix is what
# their line holds before them. (Each pattern begins with a literal, which sre scans
# for at C speed: a block of other programs' lines is read through in a few ms.)
_SAMPLE_DELIVERY = re.compile(rb"delivery \d+: (?:msg \d+ to |success:|deferral:|failure:)")
_SAMPLE_MSG = re.compile(rb"msg (?:(?<=info msg )\d+: bytes |(?<=new msg )\d|(?<=end msg )\d)")
_SAMPLES = 32
# A syslog stamp (splogger's too): the month's name and a day padded with a space vary.
_SYSLOG_STAMP = re.compile(rb"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d[. ]")
_MAX_SHAPE = 200
_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_MANY_ENDS = 256  # more lines than this: their ends found in compiled code
_MANY_RESULTS = 2048  # more lines than this: result lines told by the compiled pairing
_MANY_MATCHES = 16384  # a regex matching more often in a block: read line by line
_PROBE = 1024  # of those, found in the block's first 16th: more expected, line by line
_HEAD_OF: dict[bytes, bytes | None] = {}  # a prefix with its digits as 0 -> its head
# The events of a canonical line that lead to no row (Shape.line's last alternatives:
# kind() says K_OTHER of them).
QUIET = (b"status: ", b"new msg ", b"end msg ")
_MANY_QUIET = 256  # more lines than this: the quiet ones told in compiled code


class Shape:
    """The prefix of a block's canonical lines, ``width`` bytes matched by the
    fixed-width pattern ``head``, and the block's patterns for it: each finds
    qmail-send's events, and tells at no cost (a look back right after a literal
    word, which sre scans for at C speed) whether one stands right after a prefix of
    the shape at its line's start (a group takes part then)."""

    def __init__(self, head: bytes, width: int, witness: bytes) -> None:
        self.head = head
        self.width = width
        self.witness = witness  # a prefix that ``head`` matches
        self._tables: dict[bytes, bytes | None] = {}
        self.multilog = head == MULTILOG
        self.at = re.compile(head)
        behind = b"(?<=\n" + head
        # The canonical lines, read at their start: qmail-send's events as EVENT has
        # them (a triple bounce line is left to the slow way: its pattern reads to the
        # line's end; Block.triples reads them, they are few).
        self.line_head = rb"@[0-9a-f]{24} " if self.multilog else head
        self.line = re.compile(
            rb"(?<![^\n])" + self.line_head
            + rb"(?:(starting )?delivery (\d+): (?:msg (\d+) to (?:local|remote) "
            rb"|(success|deferral|failure): ?)|info msg (\d+): bytes \d+ from <([^\n]*?)> "
            rb"|bounce msg (\d+)|(triple bounce: )|"
            + b"|".join(map(re.escape, QUIET)) + b")")
        # Result lines (group 1: a canonical one).
        self.result = re.compile(rb"delivery(?:" + behind + rb"delivery)()|) \d+: "
                                 rb"(?:success|deferral|failure):")
        # The same, reading on to the end of the line: the report's last part after a
        # "/" (or its whole text) when it begins "route=" (the detail line, see detail_of).
        self.result_tail = re.compile(
            rb"delivery(?:" + behind + rb"delivery)()|) \d+: "
            rb"(?:success|deferral|failure)(:) ?(?:[^\n]*/)?(route=[^\n/]*)?[^\n]*")
        # Every "delivery N: " (start lines, result lines and any other), telling a
        # canonical start line (group 1) or a canonical line with the event there (2).
        self.events = re.compile(
            rb"delivery(?:" + behind + rb"starting delivery)()|" + behind
            + rb"delivery)()|) (\d+): (?:msg (?:(\d+) to (?:local|remote) )?|"
            rb"(success|deferral|failure)(:))?")
        # Every "info msg M: " (group 1: a canonical info line, with its sender in
        # group 3), every canonical "bounce msg M".
        self.infos = re.compile(rb"info(?:" + behind + rb"info)()|) msg (\d+): "
                                rb"(?:bytes \d+ from <([^\n]*?)> )?")
        self.bounced = re.compile(rb"bounce(?:" + behind + rb"bounce)()|) msg (\d+)(?!\d)")

    @property
    def table(self) -> bytes | None:
        """The bytes ``head`` takes at each of its positions, as 256 flags a position
        (for the compiled scans of :mod:`qconsole.logfast`): asked of the pattern itself,
        one byte changed in a prefix it matches (a head is a row of one-byte classes).
        None if the witness does not match (then the patterns scan)."""
        return self._table_of(self.head)

    @property
    def line_table(self) -> bytes | None:
        """:attr:`table` of the prefix the ``line`` pattern reads (multilog's: 24 hex
        digits)."""
        return self._table_of(self.line_head)

    def _table_of(self, head: bytes) -> bytes | None:
        if head not in self._tables:
            full, wit, out = re.compile(head).fullmatch, self.witness, bytearray()
            if len(wit) != self.width or full(wit) is None:
                self._tables[head] = None
                return None
            for k in range(self.width):
                before, after = wit[:k], wit[k + 1:]
                out += bytes(full(before + bytes((c,)) + after) is not None
                             for c in range(256))
            self._tables[head] = bytes(out)
        return self._tables[head]


_SHAPES: dict[bytes, Shape] = {}  # the first one made of each head (its witness)
_MULTILOG_WITNESS = b"@" + b"0" * 24 + b" "


def _shape(head: bytes, witness: bytes) -> Shape:
    shape = _SHAPES.get(head)
    if shape is None:
        if len(_SHAPES) > 64:
            _SHAPES.clear()
        shape = _SHAPES[head] = Shape(head, len(witness), witness)
    return shape


def head_of(prefix: bytes) -> bytes | None:
    """The shape of a line prefix (what stands before an event): a pattern that
    matches every prefix of the same width where digits stand in this one (and a
    syslog stamp's month and day), or None when lines so prefixed cannot be read in
    bulk: a line beginning with "@" is read at byte 26 (multilog's), and a prefix
    that holds, or ends in, the beginning of an event would make event() read there.

    Digits and a month's name cannot be part of an event's first words (``EVENT_HEADS``),
    so checking the literal parts of this one prefix holds for them all."""
    if prefix[:1] == b"@":
        return MULTILOG if len(prefix) == 26 else None
    if len(prefix) > _MAX_SHAPE or b"\n" in prefix:
        return None
    stamp = 5 if _SYSLOG_STAMP.match(prefix) else 0  # (its month, a space, the pad)
    key = b"Mmm 0" * bool(stamp) + prefix[stamp:].translate(_ZEROS)
    head = _HEAD_OF.get(key, b"?")
    if head == b"?":
        if len(_HEAD_OF) > 256:
            _HEAD_OF.clear()
        head = _HEAD_OF[key] = _head_of(prefix, stamp)
    return head


def _head_of(prefix: bytes, stamp: int) -> bytes | None:
    for k in range(len(prefix)):
        rest = prefix[k:]
        if any(rest.startswith(h) or h.startswith(rest) for h in EVENT_HEADS):
            return None
    out = [rb"[A-Z][a-z]{2} [ \d]"] if stamp else []
    for c in prefix[stamp:]:
        out.append(rb"\d" if 48 <= c <= 57 else re.escape(bytes((c,))))
    return b"".join(out)


# (how the lines of another program may begin: syslog's, ISO's, the epoch's, a blank,
# socklog's facility after multilog's stamp)
_MAYBE_STAMPED = re.compile(rb"\n(?=[A-Z][a-z]{2} |\d{4}-|\d{9}|[ \t]|@[^\n]{24} [a-z0-9]+\.)")


def foreign_lines(data: bytes, fast: CDLL | None = None) -> tuple[list[int], list[int]]:
    """The starts and ends (line break or end of ``data``) of the lines of ``data``
    (whole lines) that are another program's syslog lines (:func:`foreign`), in order;
    in compiled code when ``fast`` is the library."""
    if fast is not None:
        from qconsole import logfast  # (it imports this module)

        starts, stops = logfast.foreign_lines(fast, data)
        return starts.tolist(), stops.tolist()
    starts, ends = [], []
    for ls in chain((0,), map(re.Match.end, _MAYBE_STAMPED.finditer(data))):
        le = data.find(b"\n", ls)
        le = len(data) if le < 0 else le
        if foreign(data[ls:le]):
            starts.append(ls)
            ends.append(le)
    return starts, ends


def without_foreign(data: bytes, fast: CDLL | None = None) -> bytes:
    """``data`` with another program's syslog lines made blank (spaces, each byte's
    offset kept): such a line is no row and holds no event nor needle of any join
    (:func:`~qconsole.logformat.event`, :class:`~qconsole.logjoin.Joiner`), and a
    blank line is neither, so the bulk search needs no other rule for them."""
    if fast is not None:
        from qconsole import logfast  # (it imports this module)

        return logfast.without_foreign(fast, data)
    starts, ends = foreign_lines(data)
    if not starts:
        return data
    out = bytearray(data)
    for ls, le in zip(starts, ends, strict=True):
        out[ls:le] = b" " * (le - ls)
    return bytes(out)


def shape_of(data: bytes) -> Shape:
    """The shape most of a block's first qmail-send lines have (multilog's when none
    can be read in bulk)."""
    heads: Counter[bytes] = Counter()
    samples: dict[bytes, bytes] = {}
    at = [m.start() for m in islice(_SAMPLE_DELIVERY.finditer(data), _SAMPLES)]
    at += [m.start() - 4 - (data[m.start() - 5:m.start()] == b"info ")
           for m in islice(_SAMPLE_MSG.finditer(data), _SAMPLES)]
    for p in at:
        prefix = data[data.rfind(b"\n", 0, p) + 1:p]
        if prefix.endswith(b"starting "):
            prefix = prefix[:-9]
        head = head_of(prefix)
        if head is not None:
            heads[head] += 1
            samples[head] = prefix
    if not heads:
        return _shape(MULTILOG, _MULTILOG_WITNESS)
    head = heads.most_common(1)[0][0]
    # (multilog's head is any line beginning with "@" 26 bytes before the event: its
    # sample need not be a prefix the head's pattern matches, a space at its end)
    return _shape(head, _MULTILOG_WITNESS if head == MULTILOG else samples[head])


ENDS = re.compile(rb"end msg (\d+)\n")
BOUNCES = (re.compile(rb"bounce msg \d+"), re.compile(rb"triple bounce"))  # literal heads
_CODE_OF = bytes.maketrans(b"sef", bytes((SUCCESS, DEFERRAL, FAILURE)))  # 8 before the end
_CODE_AT = bytes.maketrans(b"sdf", bytes((SUCCESS, DEFERRAL, FAILURE)))  # its first letter
_STATUS_WORDS = (b"success:", b"deferral:", b"failure:")
_NO_LETTERS = bytes(c for c in range(256) if not (65 <= c <= 90 or 97 <= c <= 122))
# Patterns that find a match in a block that is no match in the line alone (or miss
# one): lookarounds, \A, \Z, atomic groups and possessive repeats, flags turned off.
_BEYOND_ASCII = re.compile(rb"[\x80-\xff]")
_UNSAFE = re.compile(rb"\(\?[=!<>(-]|\\[AZ]|[*+?}]\+")


_POS = itemgetter(0)


def _starts_in_order(data: bytes, positions: list[int]) -> list[int]:
    """The start of the line holding each of ``positions`` (ascending), in one pass:
    each line break is looked for back to the previous position only, the start
    carried forward when there is none (a line of many needles is read once)."""
    return list(accumulate(map(add, map(data.rfind, repeat(b"\n"), chain((0,), positions),
                                        positions), repeat(1)), max))


def _minus(k: int):
    """x -> x - k, as a C callable for map."""
    return (-k).__add__


class Rows:
    """Fast rows (canonical result and bounce lines): line starts, status codes, and
    where each report's text starts (computed when first asked); slow lines that may
    be rows."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.ls: list[int] = []
        self.code: list[int] = []
        self.slow: list[int] = []
        self._after: list[int] = []  # just past "status:" (-1: a bounce line)
        self._ts: list[int] | None = None
        self.tails: list[bytes | None] | None = None  # when read with the rows

    @property
    def ts(self) -> list[int]:
        """Where each row's report text starts (after ``status:`` and a space)."""
        if self._ts is None:
            after = self._after
            self._ts = list(map(add, after, map(self.data.startswith, repeat(b" "), after)))
        return self._ts


class Pairs:
    """Every canonical start line of a block with the row it leads to (the first result
    of its delivery number after it, unless another start of that number comes first):
    ``starts`` maps a start's line start to (delivery number, message, where the
    recipient begins); ``rows`` maps it to (row line start, status code, end of
    "status:"). A start whose next line of its number is not canonical (``slow``), or
    lies past the block (``open``), is left to the slow way."""

    def __init__(self) -> None:
        self.starts: dict[int, tuple[bytes, bytes, int]] = {}
        self.rows: dict[int, tuple[int, int, int]] = {}
        self.slow: set[int] = set()
        self.open: set[int] = set()
        self.odd: list[int] = []  # where "delivery N: " stands elsewhere than in those

    @property
    def start_lines(self) -> list[int]:
        """The canonical start lines, in order."""
        return list(self.starts)

    def start_of(self, ls: int) -> tuple[bytes, bytes, int] | None:
        """``starts[ls]``, or None."""
        return self.starts.get(ls)

    def row_of(self, ls: int) -> tuple[int, int, int] | None:
        """``rows[ls]``, or None."""
        return self.rows.get(ls)


class Ended:
    """Messages whose chain ends in a block (:attr:`Messages.ended`), kept as one bytes
    object, a message a line: a block's thousands cost one object to send from a
    helper process. A search asks a block about one message or a few (an older
    block's messages still open at its end): those are looked for in the bytes; a set
    is made only when many are asked."""

    __slots__ = ("_asked", "_set", "blob")
    _LOOKS = 8  # lookups in the bytes before a set is made

    def __init__(self, blob: bytes) -> None:
        self.blob = blob  # each message followed by a line break
        self._set: set[bytes] | None = None
        self._asked = 0

    def keys(self) -> set[bytes]:
        """The messages, as a set."""
        if self._set is None:
            self._set = set(self.blob.split(b"\n"))
            self._set.discard(b"")
        return self._set

    def __contains__(self, msg: object) -> bool:
        if self._set is None and self._asked < self._LOOKS:
            self._asked += 1
            if not isinstance(msg, bytes) or not msg or b"\n" in msg:
                return False
            key = msg + b"\n"
            return self.blob.startswith(key) or b"\n" + key in self.blob
        return msg in self.keys()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Ended):
            return self.keys() == other.keys()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Ended({sorted(self.keys())!r})"

    def __reduce__(self) -> tuple[type, tuple[bytes]]:
        return Ended, (self.blob,)


class Messages:
    """The info line of every canonical start line and bounce line of a block, within
    it (``info``: line start -> info line start, or -1: the info line is not canonical),
    the canonical info lines (line start -> (message, sender)), and those whose
    message goes on past the block (``open``)."""

    def __init__(self) -> None:
        self.info: dict[int, int] = {}
        self.infos: dict[int, tuple[bytes, bytes]] = {}
        self.bounces: list[int] = []
        self.open: set[int] = set()
        self.odd: list[int] = []  # info needles on lines that are not canonical info lines
        self.triples: list[int] = []  # triple bounce lines (read the exact way)
        self.tainted: set[int] = set()  # info lines with a start or bounce not canonical
        # For an older block's info line whose message goes on into this block: the
        # start, bounce and triple bounce lines of each message (and lines that are not
        # canonical which may be those) before the first line that ends its chain here
        # (``ended``: a line holding its info needle or ending "end msg M");
        # ``head_odd``: messages with a line among those to follow the exact way.
        self.heads: dict[bytes, list[int]] = {}
        self.ended: set[bytes] = set()
        self.head_odd: set[bytes] = set()

    @property
    def info_lines(self) -> list[int]:
        """The canonical info lines, in order."""
        return list(self.infos)

    def info_of(self, ls: int) -> int:
        """``info`` of a start or bounce line (-1: none)."""
        return self.info.get(ls, -1)

    def message_of(self, ls: int) -> bytes:
        """The message of the canonical info line at ``ls``."""
        return self.infos[ls][0]

    def start_infos(self, pairs: Pairs) -> list[int]:
        """The info line of each of the block's start lines (``pairs.start_lines``)."""
        return list(map(self.info.get, pairs.start_lines, repeat(-1)))

    def ended_keys(self) -> Ended:
        """:attr:`ended`, to send."""
        return Ended(b"".join(m + b"\n" for m in self.ended))


class Block:
    """A block of whole lines at global offset ``base``."""

    def __init__(self, base: int, data: bytes) -> None:
        self._fast: CDLL | bool | None = False  # not decided yet
        self.base = base
        self.data = data = without_foreign(data, self.fast())
        self.size = len(data)
        self._norm: bytes | None = None
        self._lower: bytes | None = None
        self._rows: Rows | None = None
        self._pairs: Pairs | None = None
        self._messages: Messages | None = None
        self._triples: list[tuple[int, bytes]] | None = None
        self._bounced = False
        self._counts: dict[bytes, int] = {}
        self._has_bounce: bool | None = None
        self._events: tuple | None = None  # the events matches (logfast.events)
        self.shape = shape_of(data)
        self.width = self.shape.width  # where a canonical line's event starts

    @property
    def norm(self) -> bytes:
        """The block lower-cased with ``_`` as a space (what plain text is found in)."""
        if self._norm is None:
            self._norm = self.data.translate(NORMAL)
        return self._norm

    @property
    def lower(self) -> bytes:
        """The block lower-cased (what a smart-case regex searches)."""
        if self._lower is None:
            self._lower = self.data.translate(LOWER)
        return self._lower

    def ends(self, starts: list[int]) -> list[int]:
        """Where the lines holding ``starts`` end (their line break or the block end)."""
        if len(starts) > _MANY_ENDS and (fast := self.fast()) is not None:
            from qconsole import logfast

            got = logfast.line_ends(fast, self.data, starts)
            if got is not None:
                return got
        ends = list(map(self.data.find, repeat(b"\n"), starts))
        if ends and min(ends) < 0:  # (the last line may have no line break)
            size = self.size
            return [size if e < 0 else e for e in ends]
        return ends

    def line_starts(self, positions) -> list[int]:
        """The starts of the lines holding ``positions``, each once, in order."""
        ps = sorted(positions)
        if not ps:
            return []
        # Each look back stops at the position before (no line break there: the same
        # line): a line of megabytes holding a position every few bytes is read once,
        # not back to its start for each.
        back = list(map(self.data.rfind, repeat(b"\n"), [0, *ps[:-1]], ps))
        out = list(map(add, compress(back, map(ge, back, repeat(0))), repeat(1)))
        return out if back[0] >= 0 else [0, *out]

    def canonical(self, positions: list[int]) -> list[bool]:
        """For each event position: it stands right after a prefix of the block's
        shape at its line's start (then :func:`~qconsole.logformat.event` reads the
        event there; for multilog's: byte 26 of a line that begins with ``@``)."""
        data, w = self.data, self.width
        before = list(map(_minus(w + 1), positions))  # the line break before it
        heads = map(add, before, repeat(1))
        if self.shape.multilog:
            head = map(data.startswith, repeat(b"@"), heads)
        else:
            head = map(is_not, map(self.shape.at.match, repeat(data), heads, positions),
                       repeat(None))
        ok = list(map(and_, map(eq, map(data.rfind, repeat(b"\n"), before, positions), before),
                      head))
        if positions and min(positions) <= w:  # a line at the block's start
            for k, p in enumerate(positions):
                if p <= w:
                    ok[k] = (p == w and self.shape.at.match(data, 0, p) is not None
                             and b"\n" not in data[:p])
        return ok

    def starts_of(self, positions: list[int]) -> list[int]:
        """The start of the line holding each position (in the same order)."""
        return list(map(add, map(self.data.rfind, repeat(b"\n"), repeat(0), positions),
                        repeat(1)))

    def triples(self) -> list[tuple[int, bytes]]:
        """The block's triple bounce lines, read the exact way (notqmail logs one per
        double bounce it drops: few): (line start, the message), computed once."""
        from qconsole import logfast

        if self._triples is None:
            data, out = self.data, []
            fast = self.fast()
            if self.has_bounce and (b"triple bounce" in data if fast is None
                                    else logfast.count(fast, data, b"triple bounce", 1)):
                found = self.line_starts(map(re.Match.start, BOUNCES[1].finditer(data)))
                for ls, le in zip(found, self.ends(found), strict=True):
                    line = data[ls:le]
                    e = event(line)
                    if e is not None and e[E_TRIPLE] is not None:
                        out.append((ls, e[E_TRIPLE]))
            self._triples = out
        return self._triples

    @property
    def has_bounce(self) -> bool:
        """The block holds ``bounce`` (the first word of its bounce patterns' literals;
        a triple bounce holds it too): asked once."""
        if self._has_bounce is None:
            fast = self.fast()
            if fast is None:
                self._has_bounce = b"bounce" in self.data
            else:
                from qconsole import logfast

                self._has_bounce = logfast.count(fast, self.data, b"bounce", 1) > 0
        return self._has_bounce

    def fast(self) -> CDLL | None:
        """The compiled pairing (:mod:`qconsole.logfast`) if this block uses it: decided
        once, so that its pairs and messages come from the same loops."""
        from qconsole import logfast  # (it imports this module)


        if self._fast is False:
            self._fast = logfast.lib()
        return self._fast

    def pairs(self) -> Pairs:
        """The block's start lines paired with their rows (computed once)."""
        from qconsole import logfast  # (it imports this module)


        if self._pairs is None:
            fast = self.fast()
            self._pairs = self._find_pairs() if fast is None else logfast.pairs(fast, self)
        return self._pairs

    def _find_pairs(self) -> Pairs:
        out = Pairs()
        ms = list(self.shape.events.finditer(self.data))
        w = self.width
        last: dict[bytes, int] = {}
        rows, slow, starts = out.rows, out.slow, out.starts
        codes = STATUS_CODES
        for p, (s, r, n, msg, st, _), e in zip(map(re.Match.start, ms), map(re.Match.groups, ms),
                                               map(re.Match.end, ms), strict=True):
            if st is not None and (s is not None or r is not None):  # a result line
                ls = p - w if s is None else p - w - 9
                at = last.pop(n, None)
                if at is not None:
                    rows[at] = (ls, codes[st], e)
            elif s is not None and msg is not None:  # a start line
                last[n] = p - w - 9
                starts[p - w - 9] = (n, msg, e)
            else:  # anything else holding "delivery N: ": the slow way
                at = last.pop(n, None)
                if at is not None:
                    slow.add(at)
                out.odd.append(p)
        out.open.update(last.values())
        return out

    def messages(self) -> Messages:
        """The info lines of the block's start and bounce lines (computed once)."""
        if self._messages is None:
            self._messages = self._find_messages()
        return self._messages

    def _find_messages(self) -> Messages:
        from qconsole import logfast

        data = self.data
        odd = self.pairs().odd.copy()  # lines that may be starts, not canonical ones
        canonical = []  # bounce lines
        for m in self.shape.bounced.finditer(data) if self.has_bounce else ():
            if m.start(1) >= 0:
                canonical.append(m)
            else:
                odd.append(m.start())
        fast = self.fast()
        if fast is not None:
            lines = self.line_starts(odd)
            shared = set(self.pairs().start_lines).union(
                [m.start() - self.width for m in canonical],
                [ls for ls, _ in self.triples()]) if lines else set()
            return logfast.messages(fast, self, canonical, [
                (ls, self._message_of(ls), ls in shared) for ls in lines])
        out = Messages()
        events: list[tuple[int, int, bytes, object]] = []  # (position, kind, message, more)
        w = self.width
        # A line's start is looked for back to the previous needle only (else the
        # needles of one long line would each read it back to its start: quadratic).
        prev = line = 0
        for m in self.shape.infos.finditer(data):
            p = m.start()
            canon = m.start(1) >= 0 and m.start(3) >= 0
            if canon:
                at = p - w
            else:
                at = data.rfind(b"\n", prev, p) + 1 or line
                out.odd.append(at)
            prev, line = p, at
            events.append((p, 0 if canon else 1, m[2], (at, m[3])))
        # Where each message's chain first ends (its first info or end line)
        first = dict(zip(map(itemgetter(2), reversed(events)),
                         map(itemgetter(0), reversed(events)), strict=True))
        ms = list(ENDS.finditer(data))
        end_msgs = list(map(re.Match.group, ms, repeat(1)))
        pos = list(map(re.Match.start, ms))
        for msg, p in zip(reversed(end_msgs), reversed(pos), strict=True):
            if p < first.get(msg, p + 1):
                first[msg] = p
        out.ended = set(first)
        events.extend(zip(pos, repeat(2), end_msgs, _starts_in_order(data, pos)))
        starts = self.pairs().starts
        events.extend(zip(starts, repeat(3), map(itemgetter(1), starts.values()), repeat(None)))
        bounced = [(m.start() - w, m[2]) for m in canonical]
        events.extend((ls, 4, msg, None) for ls, msg in bounced)
        out.bounces = [ls for ls, _ in bounced]
        events.extend((ls, 5, b"", None) for ls in self.line_starts(odd))
        for ls, msg in self.triples():
            events.append((ls, 4, msg, None))
            out.triples.append(ls)
        # By position; at one position, in the order added (the kinds' order; sorting
        # (position, kind) pairs would cost a tuple an event)
        events.sort(key=_POS)
        cur: dict[bytes, int] = {}  # message -> its info line
        val: dict[bytes, int] = {}  # message -> its info line if canonical, else -1
        info, infos = out.info, out.infos
        heads, never = out.heads, len(data)
        shared = set(self.pairs().starts).union(out.bounces, out.triples)
        for pos, k, msg, extra in events:
            if k < 2:  # an info line (not canonical: its rows go the slow way)
                at, sender = extra  # type: ignore[misc]
                cur[msg] = at
                if k == 0:
                    val[msg] = at
                    infos[at] = (msg, sender)
                else:
                    val[msg] = -1
            elif k == 2:  # the message ends, unless on its info line itself
                held = cur.get(msg)
                if held is not None and held != extra:
                    del cur[msg], val[msg]
            elif k == 5:  # a line that is no canonical start or bounce: if it is one of
                msg = self._message_of(pos)  # an open message, that message's info line
                held = None if msg is None else val.get(msg, -1)
                if held is not None and held >= 0:  # goes the slow way
                    out.tainted.add(held)
                if msg is not None and pos < first.get(msg, never):
                    if pos in shared:  # (with a canonical start or bounce of its line)
                        out.head_odd.add(msg)
                    else:  # read the exact way by logscan.heads_of
                        heads.setdefault(msg, []).append(pos)
            else:
                held = val.get(msg)
                if held is not None:
                    info[pos] = held
                elif pos < first.get(msg, never):
                    heads.setdefault(msg, []).append(pos)
        out.open.update(at for at in val.values() if at >= 0)
        return out

    def _message_of(self, ls: int) -> bytes | None:
        """The message of the line at ``ls`` as event() reads it (start, bounce or
        triple bounce), or None."""

        e = event(self.data[ls:self.ends([ls])[0]])
        return None if e is None else e[E_MSG] or e[E_BOUNCE] or e[E_TRIPLE]

    def classify(self, starts: list[int]) -> list[re.Match[bytes] | None]:
        """The canonical reading of each line at ``starts`` (None: a slow line)."""
        return list(map(self.shape.line.match, repeat(self.data), starts))

    def rows(self, bounces: bool = True, tails: bool = False) -> Rows:
        """Every row of the block (computed once): its result lines, and its bounce
        lines unless ``bounces`` is false (those are then left out); with ``tails``,
        each report's detail tail too (:attr:`Rows.tails`)."""
        if self._rows is None:
            self._rows = self._find_rows(tails)
        if bounces and not self._bounced:
            self._add_bounces(self._rows)
            self._bounced = True
        return self._rows

    def result_lines(self, lines: list[int]) -> tuple[list[int], list[int], list[int]]:
        """The canonical result lines among ``lines`` (line starts, in order): their line
        starts, status codes, and where their report texts start."""
        data = self.data
        w = self.width
        fast = self.fast()
        # The pairing's matches tell them: made anyway when many lines are asked (the
        # caller pairs the block's lines for their start lines), or when one of the
        # first is no result line (no pattern's first word at its event).
        if fast is not None and lines[lines[:1] == [0]:] and (
                self._pairs is not None or len(lines) > _MANY_RESULTS or not all(
                map(data.startswith, repeat(b"delivery"), map(add, lines[:8], repeat(w))))):
            from qconsole import logfast

            if lines[0]:
                return logfast.result_lines(fast, self, lines)
            # (the block's first line is read by the pattern: the matches' look back
            # needs a line break before it)
            first = self._result_lines([0])
            rest = logfast.result_lines(fast, self, lines[1:])
            return first[0] + rest[0], first[1] + rest[1], first[2] + rest[2]
        return self._result_lines(lines)

    def _result_lines(self, lines: list[int]) -> tuple[list[int], list[int], list[int]]:
        data, w = self.data, self.width
        ms = list(map(self.shape.result.match, repeat(data), map(add, lines, repeat(w))))
        found = list(map(truth, ms))
        lines, ms = list(compress(lines, found)), list(compress(ms, found))
        ok = list(map(ge, map(re.Match.start, ms, repeat(1)), repeat(0)))
        if lines and lines[0] == 0 and not ok[0]:  # the block's first line
            ok[0] = self.canonical([w])[0]
        if not all(ok):
            lines, ms = list(compress(lines, ok)), list(compress(ms, ok))
        after = list(map(re.Match.end, ms))
        codes = list(bytes(map(data.__getitem__, map(_minus(8), after))).translate(_CODE_OF))
        return lines, codes, list(map(add, after, map(data.startswith, repeat(b" "), after)))

    def text_for(self, needle: bytes) -> bytes:
        """The block as a normalised needle is found in: lower-cased with ``_`` as a
        space (lower-cased will do when the needle holds no space, the block itself
        when it holds no letter either: ``@4000``, an address)."""
        if b" " in needle or self._norm is not None:
            return self.norm
        if self._lower is None and not needle.translate(None, _NO_LETTERS):
            return self.data
        return self.lower

    def count(self, needle: bytes) -> int:
        """How often a normalised needle occurs (counted once)."""
        from qconsole import logfast

        n = self._counts.get(needle)
        if n is None:
            text = self.text_for(needle)
            fast = self.fast() if needle else None
            n = text.count(needle) if fast is None else logfast.count(fast, text, needle)
            self._counts[needle] = n
        return n

    def count_to(self, needle: bytes, most: int, raw: bool = False) -> int:
        """How often a normalised needle occurs, up to ``most`` (counted no further in
        compiled code); in the block's own bytes with ``raw``."""
        n = None if raw else self._counts.get(needle)
        if n is None and needle and (fast := self.fast()) is not None:
            from qconsole import logfast

            n = logfast.count(fast, self.data if raw else self.text_for(needle), needle,
                              most)
            if n < most and not raw:
                self._counts[needle] = n
            return n
        return min(self.data.count(needle) if raw else self.count(needle), most)

    def _find_rows(self, tails: bool) -> Rows:
        fast = None if tails else self.fast()
        if fast is not None:
            return self._fast_rows(fast)
        data = self.data
        rows = Rows(data)
        w = self.width
        ms = list((self.shape.result_tail if tails else self.shape.result).finditer(data))
        ok = list(map(ge, map(re.Match.start, ms, repeat(1)), repeat(0)))
        if ms and ms[0].start() == w and not ok[0]:  # the block's first line
            ok[0] = self.canonical([w])[0]
        good = ms if all(ok) else list(compress(ms, ok))
        rows.ls = list(map(_minus(w), map(re.Match.start, good)))
        if tails:
            rows.tails = list(map(re.Match.group, good, repeat(3)))
            after = list(map(re.Match.end, good, repeat(2)))
        else:
            after = list(map(re.Match.end, good))
        rows.code = list(bytes(map(data.__getitem__, map(_minus(8), after))).translate(_CODE_OF))
        rows._after = after
        slow = set(map(re.Match.start, compress(ms, map(not_, ok))))
        if slow:
            fast = set(rows.ls)
            rows.slow = [ls for ls in self.line_starts(sorted(slow)) if ls not in fast]
        return rows

    def _fast_rows(self, fast: CDLL) -> Rows:
        """:meth:`_find_rows` (without tails) from the compiled scan's matches."""
        from qconsole import logfast

        rows = Rows(self.data)
        w = self.width
        rows.ls, rows.code, rows._after, odd, odd_end = logfast.rows(fast, self)
        if odd and odd[0] == w and self.canonical([w])[0]:  # the block's first line
            rows.ls.insert(0, 0)
            rows.code.insert(0, _CODE_OF[self.data[odd_end[0] - 8]])
            rows._after.insert(0, odd_end[0])
            odd = odd[1:]
        if odd:
            fast_ls = set(rows.ls)
            rows.slow = [ls for ls in self.line_starts(odd) if ls not in fast_ls]
        return rows

    def _add_bounces(self, rows: Rows) -> None:
        data = self.data
        if not self.has_bounce:
            return
        bounces = sorted([*BOUNCES[0].finditer(data), *BOUNCES[1].finditer(data)],
                         key=re.Match.start)
        slow = []
        bps = list(map(re.Match.start, bounces))
        for p, good, m in zip(bps, self.canonical(bps), bounces, strict=True):
            if good and m[0][:1] == b"b":
                rows.ls.append(p - self.width)
                rows.code.append(BOUNCE)
                rows._after.append(p)
            else:
                slow.append(p)
        order = sorted(range(len(rows.ls)), key=rows.ls.__getitem__)
        rows.ls = [rows.ls[i] for i in order]
        rows.code = [rows.code[i] for i in order]
        rows._after = [rows._after[i] for i in order]
        rows._ts = None
        if rows.tails is not None:
            rows.tails.extend([None] * (len(order) - len(rows.tails)))
            rows.tails = [rows.tails[i] for i in order]
        if slow:
            fast = set(rows.ls)
            rows.slow = sorted(set(rows.slow).union(
                ls for ls in self.line_starts(slow) if ls not in fast))


def kind(m: re.Match[bytes] | None) -> int:
    """What a classified line is."""
    if m is None or m[G_TRIPLE] is not None:
        return K_SLOW
    if m[G_STATUS] is not None:
        return K_RESULT
    if m[G_MSG] is not None:
        return K_START if m[G_STARTING] is not None else K_OTHER
    if m[G_INFO] is not None:
        return K_INFO
    if m[G_BOUNCE] is not None:
        return K_BOUNCE
    return K_OTHER


def hidden_needles(block: Block, starts: list[int], ends: list[int] | None = None,
                   ) -> list[bool] | list[int]:
    """For each line (its start, and its end unless it ends at its line break): it
    holds a start or info needle past its own event (so it is the start or info line of
    some delivery the canonical reading does not see)."""
    from qconsole import logfast

    data = block.data
    if (fast := block.fast()) is not None:
        return logfast.needles(fast, data, starts, ends, block.width + 1)
    if ends is None:
        ends = block.ends(starts)
    after = list(map(add, starts, repeat(block.width + 1)))
    a = map(ge, map(data.find, repeat(b"starting delivery "), after, ends), repeat(0))
    b = map(ge, map(data.find, repeat(b"info msg "), after, ends), repeat(0))
    return list(map(bool.__or__, a, b))


def loud(block: Block, lines: list[int]) -> list[int]:
    """``lines`` (line starts, sorted) but the canonical lines of a quiet event
    (:data:`QUIET`: their reading is K_OTHER) that hold no hidden needle (which makes
    a line K_SLOW): those lead to no row, and classifying them would cost a pattern
    match each."""
    fast = block.fast() if len(lines) > _MANY_QUIET else None
    table = None if fast is None else block.shape.line_table
    if fast is None or table is None:
        return lines
    from qconsole import logfast

    quiet = logfast.quiet(fast, block.data, lines, table, block.width, QUIET)
    if not any(quiet):
        return lines
    odd = list(compress(lines, quiet))
    keep = list(compress(odd, hidden_needles(block, odd)))
    out = list(compress(lines, map(not_, quiet)))
    return union(block, out, keep) if keep else out


def member(block: Block, lines: list[int], among: list[int]) -> list[int] | list[bool]:
    """For each of the sorted ``lines``: it is one of the sorted ``among``."""
    if (fast := block.fast()) is not None:
        from qconsole import logfast

        return logfast.member(fast, lines, among)
    return list(map(set(among).__contains__, lines))


def split(block: Block, lines: list[int], among: list[int]) -> tuple[list[int], list[int]]:
    """The sorted ``lines`` that are among the sorted ``among``, and the others."""
    if (fast := block.fast()) is not None:
        from qconsole import logfast

        return logfast.split(fast, lines, among)
    flags = member(block, lines, among)
    return list(compress(lines, flags)), list(compress(lines, map(not_, flags)))


def union(block: Block, a: list[int], b: list[int]) -> list[int]:
    """The sorted lists ``a`` and ``b`` merged, each value once."""
    if (fast := block.fast()) is not None:
        from qconsole import logfast

        return logfast.union(fast, a, b)
    return sorted(set(a).union(b))


def follow_starts(block: Block, ends: list[int], numbers: list[bytes],
                  ) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    """The rows canonical start lines lead to within the block (see
    :meth:`~qconsole.logjoin.Joiner.row_after_start`): the start lines end at ``ends``
    and are of deliveries ``numbers``. Returns (index of the start line, row line
    start, status code, text start) of each row, and the indices of the start lines
    to follow the slow way (the next line holding their number is neither a canonical
    result nor a canonical start, or lies past the block)."""
    data = block.data
    needles = list(map(b"delivery %b: ".__mod__, numbers))
    q = list(map(data.find, needles, ends))
    found = list(map(ge, q, repeat(0)))
    later = list(compress(range(len(q)), map(not_, found)))
    idx = list(compress(range(len(q)), found))
    qs = list(compress(q, found))
    if not qs:
        return [], [], [], [], later
    after = list(map(add, qs, map(len, compress(needles, found))))
    head = block.canonical(qs)
    result = list(map(and_, head, map(data.startswith, repeat(_STATUS_WORDS), after)))
    # Or the next start of that delivery number: then there is no row.
    restart = map(and_, map(data.startswith, repeat(b"msg "), after),
                  map(data.startswith, repeat(b"starting "), map(_minus(9), qs)))
    restart = list(map(and_, restart, block.canonical(list(map(_minus(9), qs)))))
    rows_i = list(compress(idx, result))
    row_after = list(compress(after, result))
    codes = list(bytes(map(data.__getitem__, row_after)).translate(_CODE_AT))
    stat_end = [a + (9 if c == DEFERRAL else 8) for a, c in zip(row_after, codes,
                                                                   strict=True)]
    ts = list(map(add, stat_end, map(data.startswith, repeat(b" "), stat_end)))
    slow = [i for i, r, s in zip(idx, result, restart, strict=True) if not (r or s)]
    return rows_i, list(map(_minus(block.width), compress(qs, result))), codes, ts, later + slow


def follow_infos(block: Block, ends: list[int], msgs: list[bytes],
                 ) -> tuple[list[int], list[int], list[bytes], list[int], list[int],
                            list[int]]:
    """The start and bounce lines canonical info lines lead to within the block (see
    :meth:`~qconsole.logjoin.Joiner.rows_after_info`): the info lines end at ``ends``
    and are of messages ``msgs``. Returns (index of the info line, start line start,
    delivery number) of each start line, (index of the info line, line start) of each
    bounce line (``bounce msg`` or ``triple bounce``), and the indices of the info
    lines to follow the slow way (their message goes on past the block, or a line on
    the way is not canonical)."""
    data = block.data
    n = len(msgs)
    slow: set[int] = set()
    bound: list[int] = []
    # The message's end, then a new info line of its number before that (numbers
    # rarely come back: looking for the info line first would read to the block's end).
    done = list(map(data.find, map(b"end msg %b\n".__mod__, msgs), ends))
    until = [len(data) if b < 0 else b for b in done]
    again = map(data.find, map(b"info msg %b: ".__mod__, msgs), ends, until)
    for i, a, b in zip(range(n), again, done, strict=True):
        if a < 0 and b < 0:  # the message goes on past the block
            slow.add(i)
            bound.append(0)
            continue
        e = data.find(b"\n", a if a >= 0 else b)  # a start or bounce on the
        bound.append(len(data) if e < 0 else e)  # boundary line still counts
    s_i: list[int] = []
    s_ls: list[int] = []
    s_num: list[bytes] = []
    b_i: list[int] = []
    b_ls: list[int] = []
    _triples_of(block, ends, msgs, bound, slow, b_i, b_ls)
    for bounce in (False, True):
        needles = list(map((b"bounce msg %b" if bounce else b"msg %b to ").__mod__, msgs))
        active = [i for i in range(n) if i not in slow]
        pos = [ends[i] for i in active]
        while active:
            q = list(map(data.find, [needles[i] for i in active], pos,
                         [bound[i] for i in active]))
            hit = list(map(ge, q, repeat(0)))
            active = list(compress(active, hit))
            q = list(compress(q, hit))
            if not active:
                break
            if bounce:
                for i, p, good in zip(active, q, block.canonical(q), strict=True):
                    if not good:
                        slow.add(i)
                    elif not data[p + len(needles[i]):p + len(needles[i]) + 1].isdigit():
                        b_i.append(i)  # (bounce msg 12 is not message 1)
                        b_ls.append(p - block.width)
            else:
                lines = block.starts_of(q)
                for i, p, ls, m in zip(active, q, lines, block.classify(lines), strict=True):
                    if m is None:
                        slow.add(i)
                    elif m[G_MSG] is not None and m.start(G_MSG) == p + 4:
                        if m[G_STARTING] is not None:
                            s_i.append(i)
                            s_ls.append(ls)
                            s_num.append(m[G_NUMBER])
                        elif data.find(b"starting delivery ", ls, data.find(b"\n", p)) >= 0:
                            slow.add(i)  # "delivery N: msg M" with a needle inside
                    # else: "msg M to" inside another event's text: no start of M
            pos = list(map(data.find, repeat(b"\n"), q))
            keep = list(map(ge, pos, repeat(0)))
            active = list(compress(active, keep))
            pos = list(compress(pos, keep))
    if s_ls:  # a start line with a second start needle inside: the slow way
        hidden = hidden_needles(block, s_ls)
        slow.update(compress(s_i, hidden))
    keep = [i not in slow for i in s_i]
    kb = [i not in slow for i in b_i]
    return (list(compress(s_i, keep)), list(compress(s_ls, keep)), list(compress(s_num, keep)),
            list(compress(b_i, kb)), list(compress(b_ls, kb)), sorted(slow))


def _triples_of(block: Block, ends: list[int], msgs: list[bytes], bound: list[int],
                slow: set[int], b_i: list[int], b_ls: list[int]) -> None:
    """The triple bounce lines of each info line's message between the info line (it
    ends at ``ends``) and ``bound``: its bounce rows (``b_i``, ``b_ls``; read the exact
    way, so any line will do, at byte 26 or not)."""
    of: dict[bytes, list[int]] = {}
    for ls, msg in block.triples():
        of.setdefault(msg, []).append(ls)
    if not of:
        return
    for i in range(len(msgs)):
        if i not in slow:
            for ls in of.get(msgs[i], ()):
                if ends[i] < ls < bound[i]:
                    b_i.append(i)
                    b_ls.append(ls)


def hits_of_text(block: Block, needle: bytes) -> list[int]:
    """Line starts of the lines whose normalised text holds ``needle``."""
    from qconsole import logfast


    text = block.text_for(needle)
    if needle and (fast := block.fast()) is not None:
        return logfast.hits(fast, block.data, text, needle)
    if not block.count(needle):
        return []
    positions = map(re.Match.start, re.finditer(re.escape(needle), text))
    return block.line_starts(positions)


def hits_of_regex(block: Block, rx: re.Pattern, lowered: bool,
                  beyond: Callable[[bytes], bool] | None = None) -> list[int]:
    """Line starts of the lines in which ``rx`` finds a match, each line read alone (as
    :meth:`~qconsole.logquery.Term.holds` reads it; lines that :func:`loud` drops may
    be left out). ``beyond``, when given, tests a
    raw line holding bytes beyond ASCII instead (an ASCII pattern reads such a line as
    characters: :meth:`~qconsole.logquery.Term.search_line`)."""
    hits = _hits_of_regex(block, rx, lowered)
    if beyond is None or block.data.isascii():
        return hits
    data = block.data
    odd = block.line_starts(map(re.Match.start, _BEYOND_ASCII.finditer(data)))
    held = set(compress(odd, map(beyond, map(data.__getitem__,
                                             map(slice, odd, block.ends(odd))))))
    return sorted(set(hits).difference(odd).union(held))


def _hits_of_regex(block: Block, rx: re.Pattern, lowered: bool) -> list[int]:
    text = block.lower if lowered else block.data
    plain = isinstance(rx.pattern, bytes)
    if plain and _UNSAFE.search(rx.pattern) is None:
        # (a pattern matching many times a line, /./, is read line by line below:
        # each of its matches would cost a match object; the first _PROBE matches in
        # the block's first bytes foretell that)
        found = rx.finditer(text)
        ms = list(islice(found, _PROBE))
        if len(ms) < _PROBE or ms[-1].start() * (_MANY_MATCHES // _PROBE) >= len(text):
            ms += islice(found, _MANY_MATCHES - _PROBE)
            starts = list(map(re.Match.start, ms))
            # No match runs past its line's end (holds a line break: each match's own
            # bytes are read, not its line's, which may hold thousands of matches).
            if len(ms) < _MANY_MATCHES and not any(map(text.count, repeat(b"\n"), starts,
                                                       map(re.Match.end, ms))):
                return block.line_starts(starts)
    if plain and (loud_lines := _loud_lines(block)) is not None:
        # (the lines that lead to no row are not searched: loud() drops them anyway)
        loud_lines, ends = loud_lines
        if _UNSAFE.search(rx.pattern) is None and b"\\B" not in rx.pattern:
            # Searched between a line's start and end in the block, as in the line
            # alone: ^, $ (multi-line) and \b read a line break as a string's end.
            return list(compress(loud_lines, map(rx.search, repeat(text), loud_lines, ends)))
        return list(compress(loud_lines, map(rx.search, map(text.__getitem__, map(
            slice, loud_lines, ends)))))
    lines = text.split(b"\n")
    if not lines[-1]:  # (what follows the last line break is no line)
        lines.pop()
    offsets = [0, *map(add, _running(map(len, lines)), range(1, len(lines)))]
    read = lines if plain else searched(rx, text).split("\n")[:len(lines)]
    return list(compress(offsets, map(rx.search, read)))


def _loud_lines(block: Block) -> tuple[list[int], list[int]] | None:
    """The starts and ends of the block's lines but those :func:`loud` drops (None
    without the compiled library or its table of the block's prefix)."""
    fast = block.fast()
    table = None if fast is None else block.shape.line_table
    if fast is None or table is None:
        return None
    from qconsole import logfast

    return logfast.loud_lines(fast, block.data, table, block.width, QUIET)


def _running(lengths):
    total = 0
    for n in lengths:
        total += n
        yield total
