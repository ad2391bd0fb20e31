"""``qremote simulate`` as a process: JSON per the contract, text, --no-dns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import dnsservers_file, run_cli
from tests.support.dnsserver import DnsServer

SEED_ROUTES = """route1;;;;
route2;1.1.1.1;2.2.2.2:465;admin;123456
route3;1.1.1.1;mx&3.3.3.3:587;;
route4;1.1.1.1|2.2.2.2;;;
route5;1.1.1.1&2.2.2.2&3.3.3.3&4.4.4.4;mx&6.6.6.6:587;;
"""
SEED_MAP = """domaine1.com;*;route1
*;domaine2.com;route2
domaine1.com;domaine2.com;route3
*;example.com;route5
*;*;route4
"""


@pytest.fixture
def seed_home(make_home, dns_server: DnsServer) -> Path:
    z = dns_server.zone
    z.add("example.com", "MX", (10, "mx1.example.com"))
    z.add("mx1.example.com", "A", "192.0.2.10")
    z.add("mx1.example.com", "PTR", "ignored")
    z.add("1.1.1.1.in-addr.arpa", "PTR", "out1.example.org")
    z.add("other.org", "A", "192.0.2.77")
    return make_home(routes=SEED_ROUTES, routemap=SEED_MAP,
                     dnsservers=dnsservers_file(dns_server))


def test_json_route5(seed_home: Path) -> None:
    result = run_cli("simulate", "--json", "a@sender.org", "x@example.com", "y@Example.com",
                     home=seed_home)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert len(doc["deliveries"]) == 1
    d = doc["deliveries"][0]
    assert {k: d[k] for k in ("host", "sender", "recipients", "route", "matched", "tls",
                              "auth", "error")} == {
        "host": "example.com", "sender": "a@sender.org",
        "recipients": ["x@example.com", "y@Example.com"], "route": "route5",
        "matched": "routemap:4", "tls": "may", "auth": False, "error": None}
    got = [(a["local_ip"], a["remote"], a["address"], a["port"], a["implicit_tls"])
           for a in d["attempts"]]
    ips = ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"]
    assert got == [(ip, "mx1.example.com", "192.0.2.10", 25, False) for ip in ips] + \
                  [(ip, "6.6.6.6", "6.6.6.6", 587, False) for ip in ips]
    assert d["attempts"][0]["helo"] == "out1.example.org"  # PTR of the local IP
    assert d["attempts"][1]["helo"] == "relay.example.org"  # no PTR: helohost = me


def test_seed_routemap_and_grouping(seed_home: Path) -> None:
    result = run_cli("simulate", "--json", "--no-dns", "me@domaine1.com", "a@domaine2.com",
                     "b@other.org", "c@domaine2.com", home=seed_home)
    doc = json.loads(result.stdout)
    by_host = {d["host"]: d for d in doc["deliveries"]}
    assert [d["host"] for d in doc["deliveries"]] == ["domaine2.com", "other.org"]
    assert by_host["domaine2.com"]["recipients"] == ["a@domaine2.com", "c@domaine2.com"]
    assert by_host["domaine2.com"]["route"] == "route1"  # line 1 wins over line 3
    assert by_host["other.org"]["attempts"] == [
        {"local_ip": None, "remote": "mx", "address": None, "port": 25,
         "implicit_tls": False, "helo": "relay.example.org", "skipped": False,
         "timed_out_at": None}]
    result = run_cli("simulate", "--json", "--no-dns", "me@else.net", "a@domaine2.com",
                     home=seed_home)
    d = json.loads(result.stdout)["deliveries"][0]
    assert d["route"] == "route2" and d["auth"] is True
    assert d["attempts"] == [{"local_ip": "1.1.1.1", "remote": "2.2.2.2",
                              "address": "2.2.2.2", "port": 465, "implicit_tls": True,
                              "helo": "relay.example.org", "skipped": False,
                              "timed_out_at": None}]


def test_errors_and_exit_status(seed_home: Path, dns_server: DnsServer) -> None:
    dns_server.zone.add("nullmx.test", "MX", (0, "."))
    (seed_home / "control" / "routemap").write_text("*;*;route1\n")
    result = run_cli("simulate", "--json", "a@b.org", "x@nullmx.test", "y@nxdomain.test",
                     "z@other.org", home=seed_home)
    assert result.returncode == 1
    d = {x["host"]: x for x in json.loads(result.stdout)["deliveries"]}
    assert "null MX" in d["nullmx.test"]["error"] and d["nullmx.test"]["attempts"] == []
    assert "couldn't find any host named nxdomain.test" in d["nxdomain.test"]["error"]
    assert d["other.org"]["error"] is None
    assert d["other.org"]["attempts"][0]["address"] == "192.0.2.77"


def test_unknown_route_and_default(make_home) -> None:
    home = make_home(routes="r;;;;\n", routemap="*;a.com;nosuch\n*;*;r\n")
    result = run_cli("simulate", "--json", "--no-dns", "<>", "x@a.com", home=home)
    assert result.returncode == 1
    d = json.loads(result.stdout)["deliveries"][0]
    assert d["sender"] == "" and d["attempts"] == []
    assert "control/routemap:1: error: route 'nosuch' is not defined" in d["error"]
    home = make_home(routes="", routemap="")
    d = json.loads(run_cli("simulate", "--json", "--no-dns", "a@b", "x@c.org",
                           home=home).stdout)["deliveries"][0]
    assert (d["route"], d["matched"], d["error"]) == (None, "default", None)


def test_text_output_reads_like_exim_bt(seed_home: Path) -> None:
    result = run_cli("simulate", "a@sender.org", "x@example.com", home=seed_home)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("example.com <- a@sender.org\n")
    assert "matched     routemap:4  *;example.com;route5" in out
    assert "1. from 1.1.1.1 to 192.0.2.10:25  mx1.example.com  helo out1.example.org" in out
    assert "8. from 4.4.4.4 to 6.6.6.6:587  6.6.6.6" in out


def test_bad_recipient_is_a_usage_error(seed_home: Path) -> None:
    result = run_cli("simulate", "a@b.org", "nodomain", home=seed_home)
    assert result.returncode == 2 and "has no domain" in result.stderr


def _on_a_terminal(home: Path, *args: str, columns: int = 80) -> str:
    """``qremote simulate ARGS`` with its standard output on a terminal of ``columns``
    columns (a pseudo-terminal), as shown there."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    from tests.conftest import REPO

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["QMAIL_HOME"] = str(home)
    proc = subprocess.Popen([sys.executable, "-m", "qremote.cli", "simulate", *args],
                            env=env, stdout=terminal, stderr=subprocess.PIPE, cwd=REPO)
    os.close(terminal)
    out = b""
    while True:
        try:
            data = os.read(controller, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not data:
            break
        out += data
    os.close(controller)
    assert proc.wait(timeout=60) in (0, 1), proc.stderr.read() if proc.stderr else ""
    return out.decode().replace("\r\n", "\n")


@pytest.mark.parametrize("columns", [80, 60])
def test_text_on_a_terminal_wraps_under_its_text(seed_home: Path, columns: int) -> None:
    """At 80 columns the long lines of route5 (its route, its attempts) went on at the
    terminal's left edge. Should: under the field's value, under the attempt's text;
    a pipe gets the lines whole, and --json is the same on a terminal."""
    import re

    args = ("a@sender.org", "x@example.com")
    shown = _on_a_terminal(seed_home, *args, columns=columns)
    piped = run_cli("simulate", *args, home=seed_home).stdout
    assert max(map(len, piped.splitlines())) > 80  # (else nothing to wrap)
    lines = shown.splitlines()
    assert max(map(len, lines)) <= columns, shown
    assert shown.split() == piped.split()  # the same words, in the same order
    fields = ("example.com <-", "  recipients", "  matched", "  route", "  tls",
              "  auth", "  attempts")
    under, continued = 0, set()
    for line in lines:
        if line.startswith(fields):
            under = 14  # a field's value
        elif re.match(r" {4}\d+\. ", line):
            under = 7  # an attempt's text
        else:
            assert line.startswith(" " * under) and line[under] != " ", (line, shown)
            continued.add(under)
    assert continued == ({14} if columns == 80 else {14, 7}), shown  # (attempts: 79)
    assert _on_a_terminal(seed_home, "--json", *args, columns=columns) == run_cli(
        "simulate", "--json", *args, home=seed_home).stdout
