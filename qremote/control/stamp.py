"""The stamp of the control files: when it changes, the configuration is read again.

A stamp is (name, size, mtime_ns, ctime_ns, inode) of every control file the engine
reads (``-1`` five times over for a missing one). A long-lived process takes one per
delivery, so :class:`Stamper` takes it in few system calls: a name with no entry in
the control directory can only appear through a change of the directory itself
(create, link, rename and symlink all update its mtime and ctime), so while the
directory's own stamp is unchanged only the names present at the last listing are
looked at. Files are written in place too, so each present name is still looked at
every time. The same rule as for files guards the directory: a stamp younger than
:data:`RACY_NS` may change again without changing, and is not trusted.
"""

from __future__ import annotations

import os
import stat
import time

from qremote.control.cache import CACHE_NAME
from qremote.control.config import FILES

# A file changed less than this long ago may change again within its mtime's
# granularity (a second on some file systems) without its stamp changing: such a
# stamp is not trusted, and the next delivery reads the files again (as git does).
RACY_NS = 2_000_000_000
NAMES = (*FILES, CACHE_NAME)
MISSING = (-1, -1, -1, -1)

Entry = tuple[str, int, int, int, int]
Stamp = tuple[Entry, ...]


def _entry(path: str) -> tuple[int, int, int, int] | None:
    """(size, mtime_ns, ctime_ns, inode) of ``path``, or None when it cannot be stat'd."""
    try:
        st = os.stat(path)  # no pathlib: 4x cheaper per delivery
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


class Stamper:
    """Takes the stamp of the control files of one qmail home; thread-safe (a listing
    is replaced whole, never changed in place)."""

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.control = f"{os.fspath(home)}/control"
        # (the directory's identity and times, the names it held then), once trusted
        self._listing: tuple[tuple[int, int, int, int], frozenset[str]] | None = None

    def take(self) -> tuple[Stamp, int] | None:
        """The stamp and the newest mtime or ctime in it; None when there is no control
        directory."""
        try:
            st = os.stat(self.control)
        except OSError:
            return None
        if not stat.S_ISDIR(st.st_mode):
            return None
        here = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
        listing = self._listing
        present = listing[1] if listing is not None and listing[0] == here else \
            self._list(here)
        out: list[Entry] = []
        newest = 0
        for name in NAMES:
            found = _entry(f"{self.control}/{name}") if name in present else None
            if found is None:
                out.append((name, *MISSING))
            else:
                out.append((name, *found))
                newest = max(newest, found[1], found[2])
        return tuple(out), newest

    def _list(self, here: tuple[int, int, int, int]) -> frozenset[str]:
        """The names present in the directory (every name when it cannot be listed),
        kept for later stamps unless the directory's own stamp is too young."""
        try:
            present = frozenset(NAMES).intersection(os.listdir(self.control))
        except OSError:
            self._listing = None
            return frozenset(NAMES)
        # ctime changes with any change, whatever mtime says
        racy = time.time_ns() - max(here[2], here[3]) < RACY_NS
        self._listing = None if racy else (here, present)
        return present

