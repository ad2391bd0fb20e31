"""Memory given back to the system after a search (glibc's allocator, where it is).

A filter over a long history holds millions of rows in arrays, and its steps make
many short-lived objects. When the search is over (or replaced by the next key's),
that memory is free in the process but, by default, glibc keeps it: large arrays
come from the heap once the allocator has raised its threshold for mapping them, and
a heap with holes is not trimmed. Each filter typed would then add its size to the
console's. :func:`settle` keeps arrays of a megabyte or more in their own mappings
(returned when freed) and :func:`trim` returns the heap's free pages. Without glibc
both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

_M_MMAP_THRESHOLD = -3  # mallopt's parameter (malloc.h)
MAPPED = 1 << 20  # bytes: an allocation this large has its own mapping


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError, TypeError):
        return None
    return libc


def settle() -> bool:
    """Map allocations of :data:`MAPPED` bytes or more on their own, always (glibc
    raises that threshold as such blocks are freed: then they stay in the heap).
    Returns whether it was done."""
    libc = _libc()
    return libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, MAPPED) == 1


def trim() -> None:
    """Give the heap's free memory back to the system."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
