"""No password ever shows: not in a finding, a report, ``simulate``, the console's diff
or a committed screenshot; and files holding passwords are never readable by others,
not even while they are written."""

from __future__ import annotations

import html
import json
import os
import re
import stat
import sys
from pathlib import Path

import pytest

from qremote.control.cache import compile_cache, fingerprint
from qremote.control.config import load_config
from qremote.control.controlwrite import save
from tests.conftest import DEMO_HOME, REPO, run_cli
from tests.support.delivery import deliver

TAIL = "tail-of-the-secret"


@pytest.mark.parametrize("line", [
    f"r;;127.0.0.1:9;user;Se;{TAIL}",            # 6 fields: the tail looks like OPTIONS
    f"r;;127.0.0.1:9;user;Se;{TAIL};tls=may",    # 7 fields
    f"r;;127.0.0.1:9;user;Se;cr;{TAIL}",         # 7 fields, two ';'
    f"r;;127.0.0.1:9;user;;{TAIL}",              # a password that starts with ';'
])
def test_a_semicolon_in_a_password_is_never_echoed(make_home, line: str) -> None:
    home = make_home(routes=line + "\n", routemap="*;*;r\n")
    seen = []
    check = run_cli("check", home=home)
    assert check.returncode == 1
    assert "a PASS cannot contain ';'" in check.stdout
    seen += [check.stdout, check.stderr]
    # The deferral qmail-remote reports (and qmail-send logs, and a bounce may show).
    got = deliver(home, "x.org", "a@b.org", ["y@x.org"])
    assert got[-1].startswith("Z") and "Control files have errors" in got[-1]
    seen += got
    for extra in ([], ["--json"], ["--no-dns"], ["--json", "--no-dns"]):
        sim = run_cli("simulate", *extra, "a@b.org", "y@x.org", home=home)
        assert sim.returncode == 1
        seen += [sim.stdout, sim.stderr]
    for text in seen:
        assert TAIL not in text and "Se;" not in text, text


def test_a_password_never_shows_in_simulate_or_check(make_home) -> None:
    secret = "S3cr3t-Pw"
    home = make_home(routes=f"r;;127.0.0.1:9;user;{secret};tls=none\n",
                     routemap="*;*;r\n")
    (home / "control" / "routes").chmod(0o644)  # warned about, without the password
    out = []
    result = run_cli("check", home=home)
    assert "holds passwords and is readable by every user" in result.stdout
    out += [result.stdout, result.stderr]
    for extra in ([], ["--json"], ["--no-dns"]):
        result = run_cli("simulate", *extra, "a@b.org", "y@x.org", home=home)
        assert result.returncode == 0
        out += [result.stdout, result.stderr]
    assert json.loads(out[-4])["deliveries"][0]["auth"] is True
    assert all(secret not in text for text in out)


def test_masking_a_routes_diff() -> None:
    from qremote.control.controlwrite import mask_diff
    from qremote.control.routes import MASK, mask_password

    assert mask_password("r;;;u;pw;tls=verify\r\n") == f"r;;;u;{MASK};tls=verify\r\n"
    assert mask_password("r;;;u;p;w;tls=none\n") == f"r;;;u;{MASK}\n"
    assert mask_password("r;;;u;p;w\n") == f"r;;;u;{MASK}\n"
    assert mask_password("r;;;;\n") == "r;;;;\n"
    assert mask_password("# r;;;u;pw\n") == "# r;;;u;pw\n"
    diff = ("--- control/routes\n+++ control/routes (new)\n@@ -1,2 +1,2 @@\n"
            " a;;;u;keep-me-hidden\n-b;;;u;old-pw\n+b;;;u;new-pw;tls=verify\n")
    masked = mask_diff("routes", diff)
    assert "keep-me-hidden" not in masked and "old-pw" not in masked
    assert "new-pw" not in masked
    assert f"+b;;;u;{MASK};tls=verify\n" in masked and f"-b;;;u;{MASK}\n" in masked
    assert mask_diff("routemap", "-a;b;c\n") == "-a;b;c\n"


def _svg_text(path: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


def test_no_committed_screenshot_shows_a_password() -> None:
    routes = (DEMO_HOME / "control" / "routes").read_text().splitlines()
    secrets = [f.split(";")[4] for f in routes if f and not f.startswith("#")
               and len(f.split(";")) > 4 and f.split(";")[4]]
    assert secrets == ["123456"]
    svgs = [*(REPO / "screenshots").glob("*.svg"), *(REPO / "tests").rglob("*.svg")]
    assert len(svgs) >= 7
    for svg in svgs:
        text = _svg_text(svg).replace("\xa0", " ")
        for secret in secrets:
            assert secret not in text, svg


class _Watch:
    """Records, for files under ``root``: each creation (mode given at creation) and
    each write (mode, owner and group of the file when written). Audit hooks cannot
    be removed, so one hook serves every test through ``active``."""

    active: _Watch | None = None
    installed = False

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.created: list[tuple[str, object]] = []
        self.writes: list[tuple[str, int, int, int]] = []

    @classmethod
    def hook(cls, event: str, args: tuple) -> None:
        watch = cls.active
        if watch is None or event != "open" or len(args) < 3:
            return
        path, mode, flags = args[0], args[1], args[2]
        # os.open reports no mode here (the spy on os.open records it); open() reports
        # its mode string, and creates with 0666 less the umask.
        if mode is not None and isinstance(path, (str, os.PathLike)) \
                and str(path).startswith(watch.root) and isinstance(flags, int) \
                and flags & os.O_CREAT:
            watch.created.append((str(path), mode))


@pytest.fixture
def watch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if not _Watch.installed:
        sys.addaudithook(_Watch.hook)
        _Watch.installed = True
    w = _Watch(tmp_path)
    real_write = os.write

    def spy(fd: int, data) -> int:
        try:
            where = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            where = ""
        if where.startswith(w.root):
            st = os.fstat(fd)
            w.writes.append((where, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid))
        return real_write(fd, data)

    real_open = os.open

    def open_spy(path, flags, mode=0o777, *args, **kwargs) -> int:
        if str(path).startswith(w.root) and flags & os.O_CREAT:
            w.created.append((str(path), mode))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "write", spy)
    monkeypatch.setattr(os, "open", open_spy)
    old_umask = os.umask(0o022)  # the usual umask: 0666 would become 0644
    _Watch.active = w
    try:
        yield w
    finally:
        _Watch.active = None
        os.umask(old_umask)


def _no_window(w: _Watch, mode: int, uid: int, gid: int) -> None:
    """Every file was created giving nothing to group and others, and had its final
    mode, owner and group before its first byte."""
    assert w.created, "nothing was created"
    for path, created in w.created:
        assert isinstance(created, int) and created & 0o077 == 0, (path, created)
    assert w.writes, "nothing was written"
    for path, m, u, g in w.writes:
        assert (m, u, g) == (mode, uid, gid), path


def test_backup_and_temporary_files_have_their_mode_from_the_first_byte(
        tmp_path: Path, watch: _Watch) -> None:
    path = tmp_path / "routes"
    before = b"r;;;user;secret\n"
    path.write_bytes(before)
    path.chmod(0o640)
    gid = os.getgroups()[-1] if os.getgroups() else os.getgid()
    os.chown(path, os.getuid(), gid)
    watch.created.clear()
    backup = save(path, before, b"r;;;user;secret2\n")
    assert backup is not None and backup.read_bytes() == before
    for p in (path, backup):
        st = p.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o640, gid)
    _no_window(watch, 0o640, os.getuid(), gid)


def test_routes_cache_has_its_mode_from_the_first_byte(make_home, watch: _Watch) -> None:
    home = make_home(routes="r;;127.0.0.1:9;user;secret\n", routemap="*;*;r\n")
    (home / "control" / "routes").chmod(0o640)
    before = fingerprint(home / "control")
    watch.created.clear()
    cache = compile_cache(load_config(home), before)
    assert cache is not None and stat.S_IMODE(cache.stat().st_mode) == 0o640
    _no_window(watch, 0o640, os.getuid(), (home / "control" / "routes").stat().st_gid)


def test_a_new_routes_file_is_not_world_readable(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert save(tmp_path / "routes", None, b"r;;;user;secret\n") is None
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "routes").stat().st_mode) == 0o640
