"""The worker's cheap change checks: the stamp of the control files (a name absent at
the last listing is not stat'd again until the directory changes) and the failover
memory kept by stat. Each must see every change the full check sees.

The racy-stamp rule (a stamp younger than two seconds is not trusted) would hide the
cheap paths in tests that write files just before; here ``RACY_NS`` is 0 unless a
test is about that rule."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from qremote.control import stamp
from qremote.control.stamp import MISSING, NAMES, Stamper
from qremote.delivery import engine as engine_module
from qremote.delivery.engine import Engine
from qremote.delivery.tcpto import Memory

MakeHome = Callable[..., Path]


@pytest.fixture
def trusting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stamps are trusted at once (no two-second wait for the cheap path)."""
    monkeypatch.setattr(stamp, "RACY_NS", 0)
    monkeypatch.setattr(engine_module, "RACY_NS", 0)


def full_stamp(home: Path) -> stamp.Stamp:
    """The stamp as a stat of every name gives it: what the cheap one must equal."""
    out = []
    for name in NAMES:
        try:
            st = os.stat(home / "control" / name)
        except OSError:
            out.append((name, *MISSING))
        else:
            out.append((name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    return tuple(out)


def taken(stamper: Stamper) -> stamp.Stamp:
    result = stamper.take()
    assert result is not None
    return result[0]


def test_a_file_created_after_the_listing_is_seen(make_home: MakeHome,
                                                  trusting: None) -> None:
    home = make_home()
    stamper = Stamper(home)
    before = taken(stamper)
    assert before == full_stamp(home) and taken(stamper) == before  # listing trusted
    (home / "control" / "smtproutes").write_text(":127.0.0.1:2525\n")
    after = taken(stamper)
    assert after != before and after == full_stamp(home)


def test_a_file_removed_and_one_renamed_in_are_seen(make_home: MakeHome,
                                                    trusting: None) -> None:
    home = make_home(routes="r;;127.0.0.1;;\n")
    stamper = Stamper(home)
    taken(stamper)
    (home / "control" / "routes").unlink()
    assert taken(stamper) == full_stamp(home)
    (home / "new").write_text("*;*;r\n")
    os.rename(home / "new", home / "control" / "routemap")
    assert taken(stamper) == full_stamp(home)
    assert dict((e[0], e[1:]) for e in taken(stamper))["routemap"] != MISSING


def test_a_file_written_in_place_with_its_old_mtime_is_seen(make_home: MakeHome,
                                                            trusting: None) -> None:
    home = make_home(routes="r;;127.0.0.1:25;;\n")
    stamper = Stamper(home)
    before = taken(stamper)
    path = home / "control" / "routes"
    old = os.stat(path)
    with open(path, "r+") as f:  # same inode, same size, mtime put back
        f.write("r;;127.0.0.1:26;;\n")
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert taken(stamper) != before and taken(stamper) == full_stamp(home)


def test_the_target_of_a_dangling_symlink_is_seen_when_it_appears(
        make_home: MakeHome, tmp_path: Path, trusting: None) -> None:
    """A symlink whose target is missing is a name in the directory; its target can
    appear elsewhere without the control directory changing."""
    home = make_home()
    target = tmp_path / "elsewhere" / "smtproutes"
    target.parent.mkdir()
    (home / "control" / "smtproutes").symlink_to(target)
    stamper = Stamper(home)
    before = taken(stamper)
    assert taken(stamper) == before
    target.write_text(":127.0.0.1:2525\n")
    assert taken(stamper) != before and taken(stamper) == full_stamp(home)


def test_a_young_directory_is_listed_again(make_home: MakeHome) -> None:
    """Within two seconds of a change of the directory its listing is not kept."""
    home = make_home()
    stamper = Stamper(home)
    taken(stamper)
    assert stamper._listing is None
    assert taken(stamper) == full_stamp(home)


def test_a_missing_control_directory_has_no_stamp(tmp_path: Path) -> None:
    assert Stamper(tmp_path).take() is None
    (tmp_path / "control").write_text("not a directory\n")
    assert Stamper(tmp_path).take() is None


def test_the_warm_engine_reads_a_control_file_created_later(make_home: MakeHome,
                                                            trusting: None) -> None:
    home = make_home()
    engine = Engine(home, warm=True)
    assert engine.config().helohost == engine.config().me
    (home / "control" / "helohost").write_text("helo.example.org\n")
    assert engine.config().helohost == "helo.example.org"


def test_the_kept_failover_memory_sees_every_change(tmp_path: Path,
                                                    trusting: None) -> None:
    path = tmp_path / "tcpto"
    now = [1_000_000.0]
    kept = Memory(path, clock=lambda: now[0], cached=True)
    other = Memory(path, clock=lambda: now[0])  # another process's
    assert kept.read() == {}
    other.record(("*", "192.0.2.1", 25))
    assert kept.read() == other.read() == {("*", "192.0.2.1", 25): now[0]}
    assert kept._seen is not None  # from now on one stat a read
    old = os.stat(path)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"192.0.2.1", b"192.0.2.7"))  # same size, in place
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert kept.read() == {("*", "192.0.2.7", 25): now[0]}
    now[0] += 7200  # entries expire on time, file unchanged
    assert kept.read() == other.read() == {}
    path.unlink()
    assert kept.read() == {}
