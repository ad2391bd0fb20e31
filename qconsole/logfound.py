"""What a block's search knows of the rows it found (see :mod:`qconsole.logscan`):
each row's status code, where its report's text starts, its start and info lines.

The bulk paths add thousands of rows a block: they go to parallel lists in the order
added, and become dicts only when a later step looks rows up; a block whose rows are
only shown goes from the lists to its columns in one compiled call (sorted, each row
once: :func:`qconsole.logfast.columns`), with the same answer as the dicts give.
"""

from __future__ import annotations

from array import array
from itertools import compress, repeat
from operator import ne
from typing import TYPE_CHECKING

from qconsole import logfast

if TYPE_CHECKING:
    from collections.abc import Iterable
    from ctypes import CDLL

    from qconsole.logbulk import Block

UNKNOWN = -2  # a join not looked up yet (-1: looked up, not found)

# The rows to show, newest first: result, start and info offsets, status.
Columns = tuple[array, array, array, array]


class Found:
    """What is known of the fast rows seen in a block, by line start: status code,
    where the report's text starts, start and info lines (global; when known). A row
    added again takes its last code and text, and its last start and info known."""

    def __init__(self) -> None:
        self._code: dict[int, int] = {}
        self._text: dict[int, int] = {}
        self._start: dict[int, int] = {}
        self._info: dict[int, int] = {}
        # Added since the dicts were brought up to date, in order (UNKNOWN start or
        # info: not known by that addition).
        self._rows: list[int] = []
        self._codes: list[int] = []
        self._texts: list[int] = []
        self._starts: list[int] = []
        self._infos: list[int] = []
        self._joined = False  # a start or info is known among them
        self.all_rows = False  # every row of the block is in code (texts not yet)
        self._taken = 0  # how many of the block's rows are in code

    def _flush(self) -> None:
        """The rows added in bulk into the dicts, in the order added."""
        rows = self._rows
        if not rows:
            return
        self._code.update(zip(rows, self._codes, strict=True))
        self._text.update(zip(rows, self._texts, strict=True))
        for known, values in ((self._start, self._starts), (self._info, self._infos)):
            if self._joined:
                has = list(map(ne, values, repeat(UNKNOWN)))
                known.update(zip(compress(rows, has), compress(values, has), strict=True))
        self._rows, self._codes, self._texts, self._starts, self._infos = [], [], [], [], []
        self._joined = False

    @property
    def code(self) -> dict[int, int]:
        """Each row's status code."""
        self._flush()
        return self._code

    @property
    def text(self) -> dict[int, int]:
        """Where each row's report text starts (when read)."""
        self._flush()
        return self._text

    @property
    def start(self) -> dict[int, int]:
        """Each row's start line (global), when known."""
        self._flush()
        return self._start

    @property
    def info(self) -> dict[int, int]:
        """Each row's info line (global), when known."""
        self._flush()
        return self._info

    def texts(self, block: Block, rows: list[int]) -> list[int]:
        """Where the report text of each row starts."""
        if self.all_rows and len(self.text) < len(self.code):
            every = block.rows()
            self.text.update(zip(every.ls, every.ts, strict=True))
        return list(map(self.text.__getitem__, rows))

    def take_rows(self, block: Block, bounces: bool = True, tails: bool = False,
                  ) -> list[int]:
        """Every row of the block, or its result lines (their codes; texts when
        asked)."""
        rows = block.rows(bounces, tails)
        if self._taken < len(rows.ls):  # (bounce lines may have come since)
            self.code.update(zip(rows.ls, rows.code, strict=True))
            self._taken = len(rows.ls)
            self.all_rows = True
        return rows.ls

    def add(self, ls: int, code: int, text: int, start: int = UNKNOWN,
            info: int = UNKNOWN) -> None:
        """One row."""
        self._rows.append(ls)
        self._codes.append(code)
        self._texts.append(text)
        self._starts.append(start)
        self._infos.append(info)
        if start != UNKNOWN or info != UNKNOWN:
            self._joined = True

    def extend(self, rows: list[int], codes: Iterable[int], texts: Iterable[int],
               starts: Iterable[int] | None = None, infos: Iterable[int] | None = None,
               ) -> None:
        """Rows in bulk (``starts`` and ``infos`` None: not known by this)."""
        n = len(rows)
        self._rows.extend(rows)
        self._codes.extend(codes)
        self._texts.extend(texts)
        self._starts.extend(repeat(UNKNOWN, n) if starts is None else starts)
        self._infos.extend(repeat(UNKNOWN, n) if infos is None else infos)
        if starts is not None or infos is not None:
            self._joined = True

    def columns(self, base: int, rows: set[int], fast: CDLL | None = None) -> Columns:
        """The rows (global offsets), newest first, with what is known of them; with
        the compiled library ``fast``, rows only added in bulk are sorted there."""
        if fast is not None and not (self._code or self._start or self._info):
            keep = bytes(map(rows.__contains__, self._rows))
            got = logfast.columns(fast, self._rows, self._codes, self._starts, self._infos,
                                  keep, base, UNKNOWN)
            if len(got[0]) == len(rows):
                return got
        self._flush()
        order = sorted(rows, reverse=True)
        # (an array from a list: twice as fast as from an iterator)
        return (array("q", list(map(base.__add__, order))),
                array("q", list(map(self._start.get, order, repeat(UNKNOWN)))),
                array("q", list(map(self._info.get, order, repeat(UNKNOWN)))),
                array("b", list(map(self._code.__getitem__, order))))
