"""Saving an edited control file: only the edited line changes, conflicts refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from qremote.control.controlfile import ControlFile
from qremote.control.controlwrite import ConflictError, diff, save
from qremote.control.routes import format_route, parse_route

ORIGINAL = (b"# routes of example.org\r\n\r\nroute1;;;;\r\n"
            b"route2;1.1.1.1;2.2.2.2:465;admin;123456\r\n# trailing comment, no newline")


def test_edit_one_route_and_save_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "routes"
    path.write_bytes(ORIGINAL)
    path.chmod(0o640)
    source = ControlFile.from_bytes("routes", path.read_bytes())
    route = parse_route("route2;1.1.1.1;2.2.2.2:465;admin;123456", 4)
    source.replace(4, format_route(route._replace(tls="verify")))
    after = source.render()
    assert after == ORIGINAL.replace(b"admin;123456\r\n", b"admin;123456;tls=verify\r\n")
    text = diff("routes", ORIGINAL, after)
    assert "-route2;1.1.1.1;2.2.2.2:465;admin;123456" in text
    assert "+route2;1.1.1.1;2.2.2.2:465;admin;123456;tls=verify" in text
    backup = save(path, ORIGINAL, after)
    assert path.read_bytes() == after
    assert backup is not None and backup.read_bytes() == ORIGINAL
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_another_operators_edit_is_never_lost(tmp_path: Path) -> None:
    path = tmp_path / "routemap"
    path.write_bytes(b"*;*;a\n")
    read = path.read_bytes()
    path.write_bytes(b"*;*;a\nx.org;*;b\n")  # someone else saved meanwhile
    with pytest.raises(ConflictError, match="changed on disk"):
        save(path, read, b"*;*;c\n")
    assert path.read_bytes() == b"*;*;a\nx.org;*;b\n"
    with pytest.raises(ConflictError):
        save(tmp_path / "new", b"expected", b"x")  # was expected, is missing


def test_new_file(tmp_path: Path) -> None:
    assert save(tmp_path / "routemap", None, b"*;*;r\n") is None
    assert (tmp_path / "routemap").read_bytes() == b"*;*;r\n"
