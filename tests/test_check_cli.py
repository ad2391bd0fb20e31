"""``qremote check`` as a process: the contract's line format, exit codes, warnings."""

from __future__ import annotations

import os
import pwd
import re
from pathlib import Path

import pytest

from qremote.control.check import check
from qremote.control.config import load_config
from tests.conftest import DEMO_HOME, run_cli

LINE = re.compile(r"^control/[a-z]+:\d+: (error|warning): .+$")
# check as the user running the tests: no "there is no user qmailr" warning.
ME = ("--user", pwd.getpwuid(os.geteuid()).pw_name)
SEED_ROUTES = (DEMO_HOME / "control" / "routes").read_text()


def test_demo_home_is_clean(demo_home: Path) -> None:
    # demo_home copies the sample and sets routes to 640, as `make demo`
    result = run_cli("--qmail-home", str(demo_home), "check", *ME)
    assert result.returncode == 0, result.stdout
    assert result.stdout == ""
    assert "0 error(s)" in result.stderr


def test_every_finding_with_file_and_line(make_home) -> None:
    home = make_home(
        routes="# comment\nok;;;;\nok;;;;\nbad name;;;;\nr2;1.1.1.1|2.2.2.2&3.3.3.3;;;\n"
               "r3;;mx|relay.test;;\nr4;;;;;tls=sometimes\nr5;999.0.0.1;;;\n",
        routemap="*;*;ok\na.com;*;ok\nb.com;*;missing\n\xff;*;ok\n",
        timeoutremote="soon\n",
        dnsservers="127.0.0.1:99999\n",
        smtproutes="no colon here\n",
    )
    result = run_cli("check", *ME, home=home)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert all(LINE.match(line) for line in lines), lines
    text = result.stdout
    for expected in [
        "control/routes:3: error: route 'ok' is already defined at line 2",
        "control/routes:4: error: route name 'bad name'",
        "control/routes:5: error: LOCAL_IPS",
        "control/routes:6: error: 'mx' cannot be part of a '|'",
        "control/routes:7: error: the tls value is not one of",
        "control/routes:8: error: local IP '999.0.0.1'",
        "control/routemap:2: warning: never matches: line 1",
        "control/routemap:3: error: route 'missing' is not defined",
        "control/timeoutremote:1: error: 'soon'",
        "control/dnsservers:1: error: port 99999",
        "control/smtproutes:1: error: no ':'",
    ]:
        assert expected in text, expected
    assert result.stderr.startswith("qremote check:")


def test_non_utf8_and_crlf(make_home) -> None:
    home = make_home(routes=b"r1;;;;\r\nr\xe9;;;;\n", routemap=b"*;*;r1\r\n")
    result = run_cli("check", home=home)
    assert "control/routes:2: error: byte 0xe9 at column 2 is not UTF-8" in result.stdout
    assert "control/routes:1: warning: line ends with CRLF" in result.stdout
    assert result.returncode == 1


def test_warnings_alone_exit_zero(make_home) -> None:
    home = make_home(routes="used;;;;\nunused;;;;\nclear;;;u;p;tls=none\n",
                     routemap="*;*;used\n*;*;clear\n",
                     defaultoutgoingip="192.0.2.1\n")
    (home / "control" / "routes").chmod(0o644)
    result = run_cli("check", home=home)
    assert result.returncode == 0, result.stdout
    out = result.stdout
    assert "control/routes:2: warning: route 'unused' is not used" in out
    assert "control/routes:3: warning: route 'clear' has credentials but tls=none" in out
    assert "control/routes:0: warning: holds passwords and is readable by every user" in out
    assert "control/defaultoutgoingip:1: warning: 192.0.2.1 is not an address of this host" \
        in out
    assert "control/routemap:2: warning: never matches: line 1" in out


def test_local_ip_on_this_host_is_fine(make_home) -> None:
    home = make_home(routes="r;127.0.0.5&::1;;;\n", routemap="*;*;r\n")
    result = run_cli("check", *ME, home=home)
    assert result.returncode == 0 and result.stdout == ""


def test_unreadable_file(make_home, tmp_path: Path) -> None:
    home = make_home(routes="r;;;;\n", routemap="*;*;r\n")
    (home / "control" / "routes").chmod(0o000)
    as_root = os.geteuid() == 0
    if as_root:
        # root reads anything: read as nobody, with the path to the files open to it.
        for p in (tmp_path.parent.parent, tmp_path.parent, tmp_path, home, home / "control"):
            p.chmod(0o755)
        os.seteuid(65534)
    try:
        findings = check(load_config(home))
    finally:
        if as_root:
            os.seteuid(0)
    errors = [f.format() for f in findings if f.severity == "error"]
    assert errors == [f"control/routes:0: error: cannot read {home}/control/routes: "
                      "permission denied; make it readable by the user qmail-remote runs as"]


def test_directory_in_place_of_a_file_and_missing_home(make_home, tmp_path: Path) -> None:
    home = make_home()
    (home / "control" / "routemap").mkdir()
    result = run_cli("check", home=home)
    assert "control/routemap:0: error: cannot read" in result.stdout
    assert "directory" in result.stdout
    result = run_cli("check", home=tmp_path / "nowhere")
    assert result.returncode == 1 and "is not a directory" in result.stdout


@pytest.mark.parametrize("name", ["routes", "routemap", "smtproutes"])
def test_very_long_line(make_home, name: str) -> None:
    home = make_home(**{name: "x" * 100_000 + "\n"})
    result = run_cli("check", home=home)
    assert f"control/{name}:1: error: line is 100000 bytes long" in result.stdout
