"""The compiled routes.cache: used when fresh, ignored when stale or corrupt."""

from __future__ import annotations

import os
import stat

from qremote.control.config import load_config
from qremote.planning.planner import select
from tests.conftest import run_cli

ROUTES = "a;127.0.0.2&127.0.0.3;mx&relay.example.net:587;u;p;tls=encrypt\nb;;;;\n"
MAP = "x.org;*;a\n*;y.org;b\n*;*;b\n"


def _choices(home, use_cache: bool) -> list[tuple[str, str]]:
    config = load_config(home, use_cache=use_cache)
    return [(s.route.name if s.route else "-", s.matched) for s in
            (select(config, rcpt, sender) for sender, rcpt in
             [("u@x.org", "z.org"), ("u@w.org", "y.org"), ("<>", "q.org")])]


def test_check_writes_a_cache_that_equals_the_text(make_home) -> None:
    home = make_home(routes=ROUTES, routemap=MAP)
    (home / "control" / "routes").chmod(0o640)
    assert run_cli("check", home=home).returncode == 0
    cache = home / "control" / "routes.cache"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o640
    assert load_config(home, use_cache=True).routes.routes == load_config(home).routes.routes
    assert _choices(home, True) == _choices(home, False) == [
        ("a", "routemap:1"), ("b", "routemap:2"), ("b", "routemap:3")]


def test_stale_cache_is_ignored(make_home) -> None:
    home = make_home(routes=ROUTES, routemap=MAP)
    assert run_cli("check", home=home).returncode == 0
    routemap = home / "control" / "routemap"
    before = routemap.stat()
    routemap.write_text(MAP.replace("x.org;*;a", "x.org;*;b"))  # same size, new rule
    os.utime(routemap, ns=(before.st_atime_ns, before.st_mtime_ns + 1))
    assert _choices(home, True)[0] == ("b", "routemap:1")


def test_corrupt_or_foreign_cache_is_ignored(make_home) -> None:
    home = make_home(routes=ROUTES, routemap=MAP)
    (home / "control" / "routes.cache").write_bytes(b"\x00garbage")
    assert _choices(home, True) == _choices(home, False)


def test_no_cache_when_routes_have_errors(make_home) -> None:
    home = make_home(routes="a;;;\n", routemap=MAP)
    assert run_cli("check", home=home).returncode == 1
    assert not (home / "control" / "routes.cache").exists()


def test_cache_holds_helo_names_so_deliveries_need_no_dns(make_home, dns_server) -> None:
    import subprocess
    import sys

    from tests.conftest import REPO, dnsservers_file

    dns_server.zone.add("7.2.0.192.in-addr.arpa", "PTR", "out7.example.org")
    home = make_home(routes="r;192.0.2.7&192.0.2.8&127.0.0.2;;;\n", routemap="*;*;r\n",
                     dnsservers=dnsservers_file(dns_server), helohost="fallback.example\n")
    assert run_cli("check", home=home).returncode == 0
    dns_server.stop()  # from now on any DNS query would time out
    code = (
        "import sys, time; from pathlib import Path\n"
        "from qremote.control.config import load_config\n"
        "from qremote.planning.helo import helo_name\n"
        "from qremote.planning.dns import DnsLookup\n"
        "c = load_config(Path(sys.argv[1]), use_cache=True); t = time.monotonic()\n"
        "names = [helo_name(c, ip, DnsLookup(c.dnsservers)) for ip in\n"
        "         ('192.0.2.7', '192.0.2.8', '127.0.0.2')]\n"
        "print(names, 'dns.resolver' in sys.modules, time.monotonic() - t < 1)\n")
    out = subprocess.run([sys.executable, "-I", "-c", code, str(home)], cwd=REPO,
                         capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == ("['out7.example.org', 'fallback.example', 'fallback.example'] "
                           "False True")
