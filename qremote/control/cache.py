"""A compiled snapshot of ``routes`` and ``routemap``, as qmail compiles cdb files.

``qremote check`` writes ``control/routes.cache`` when both files are free of errors.
qmail-remote loads it instead of parsing the text, but only while the fingerprint
(size, mtime, inode) of both files is still the one recorded: an edited file makes
the cache stale, and a stale cache is ignored, never trusted. The cache holds the
passwords of ``routes``, so it gets that file's mode and group.

It also holds the PTR name of every configured local IP (the HELO name), looked up
when the cache is written, so that a delivery needs no DNS for its HELO.
"""

from __future__ import annotations

import contextlib
import marshal
import os
from pathlib import Path
from typing import TYPE_CHECKING

from qremote.control.controlfile import ControlFile
from qremote.control.routemap import RouteMap
from qremote.control.routes import Remote, Route, RoutesFile

if TYPE_CHECKING:
    from qremote.control.config import Config

CACHE_NAME = "routes.cache"
VERSION = 3
# The file: MAGIC, then the CRC-32 and length of the marshal data, then the data. A
# truncated or corrupted file (a flipped byte could change a route's port) fails the
# check and the text files are parsed instead.
MAGIC = b"qremote-routes-cache\n"
SOURCES = ("routes", "routemap")


def fingerprint(control: Path) -> list[tuple[str, int, int, int]] | None:
    """(name, size, mtime_ns, inode) of each source file; None if one is missing."""
    out = []
    for name in SOURCES:
        try:
            st = os.stat(control / name)
        except OSError:
            return None
        out.append((name, st.st_size, st.st_mtime_ns, st.st_ino))
    return out


def _route_tuple(r: Route) -> tuple:
    # marshal takes plain tuples only, not NamedTuple instances.
    return tuple(r._replace(remotes=tuple(tuple(x) for x in r.remotes)))


def write_cache(home: Path, routes: RoutesFile, routemap: RouteMap,
                before: list[tuple[str, int, int, int]] | None,
                helo_names: dict[str, str | None] | None = None) -> Path | None:
    """Write the cache for files whose fingerprint was ``before`` (taken before reading).

    Returns the path, or None when the files changed meanwhile or are missing."""
    control = home / "control"
    if before is None or fingerprint(control) != before:
        return None
    payload = marshal.dumps((VERSION, before,
                             [_route_tuple(r) for r in routes.routes.values()],
                             routemap.index(), helo_names or {}))
    data = MAGIC + _seal(payload) + payload
    target = control / CACHE_NAME
    tmp = control / f".{CACHE_NAME}.{os.getpid()}"
    st = os.stat(control / "routes")
    tmp.unlink(missing_ok=True)  # a stale file would keep its own mode
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with contextlib.suppress(PermissionError):
            os.fchown(fd, st.st_uid, st.st_gid)
        os.fchmod(fd, st.st_mode & 0o640)  # final owner and mode before the passwords
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    return target


def read_cache(home: Path,
               ) -> tuple[RoutesFile, RouteMap, dict[str, str | None]] | None:
    """The cached routes and routemap index, or None when absent, stale or unreadable."""
    control = home / "control"
    from qremote.control.config import read_regular

    try:
        data = read_regular(control / CACHE_NAME)
    except OSError:
        return None
    head = len(MAGIC) + 12
    payload = data[head:]
    if data[:len(MAGIC)] != MAGIC or data[len(MAGIC):head] != _seal(payload):
        return None
    try:
        version, recorded, routes, first, helo_names = marshal.loads(payload)
        if version != VERSION or recorded != fingerprint(control):
            return None
        routes_file = RoutesFile(ControlFile("routes"))
        for entry in routes:
            route = Route(*entry[:3], tuple(map(Remote._make, entry[3])), *entry[4:])
            if not _valid_route(route):
                return None
            routes_file.routes[route.name] = route
        if not (_valid_index(first) and isinstance(helo_names, dict)):
            return None
        routemap = RouteMap(ControlFile("routemap"))
        routemap.load_index(first)
    except Exception:  # a cache is never trusted: any doubt means the text files
        return None
    return routes_file, routemap, helo_names


_MODES = ("single", "failover", "roundrobin")


def _valid_route(r: Route) -> bool:
    """What the parser would have given: a checksum proves the bytes are the writer's,
    not that the writer (another version, a hand-made file) was right."""
    from qremote.control.addresses import parse_ip
    from qremote.control.routes import TLS_POLICIES

    if not (type(r.name) is str and r.name and type(r.user) is str
            and type(r.password) is str and type(r.line) is int
            and r.local_mode in _MODES and r.remote_mode in _MODES
            and r.tls in TLS_POLICIES and type(r.local_ips) is tuple
            and type(r.remotes) is tuple and r.remotes):
        return False
    for ip in r.local_ips:
        if type(ip) is not str or parse_ip(ip) != ip:
            return False
    for x in r.remotes:
        if not (type(x.host) is str and x.host and type(x.port) is int
                and 1 <= x.port <= 65535 and type(x.is_ip) is bool):
            return False
        if x.is_ip and parse_ip(x.host) != x.host:
            return False
    return True


def _valid_index(first: object) -> bool:
    """The routemap index: {(sender, recipient): (sender, recipient, route, line)},
    checked column by column (100,000 rules cost a few milliseconds)."""
    if type(first) is not dict:
        return False
    if not first:
        return True
    keys, values = list(first), list(first.values())
    if {type(k) for k in keys} != {tuple} or {len(k) for k in keys} != {2}:
        return False
    if {type(v) for v in values} != {tuple} or {len(v) for v in values} != {4}:
        return False
    columns = [*zip(*keys, strict=True), *zip(*values, strict=True)]
    return all({type(x) for x in col} == {kind} for col, kind in
               zip(columns, (str, str, str, str, str, int), strict=True))


def _seal(payload: bytes) -> bytes:
    """CRC-32 and length of ``payload``, 12 bytes."""
    import zlib

    return zlib.crc32(payload).to_bytes(4, "big") + len(payload).to_bytes(8, "big")


def local_ips(routes: RoutesFile, default: str | None) -> list[str]:
    """Every local IP the configuration names, each once."""
    ips = dict.fromkeys(ip for r in routes.routes.values() for ip in r.local_ips)
    if default:
        ips[default] = None
    return list(ips)


def lookup_helo_names(ips: list[str], servers: list[tuple[str, int]],
                      ) -> dict[str, str | None]:
    """PTR names of ``ips`` (loopback ones skipped), looked up in parallel."""
    import ipaddress
    from concurrent.futures import ThreadPoolExecutor

    from qremote.planning.dns import DnsLookup

    wanted = [ip for ip in ips if not ipaddress.ip_address(ip).is_loopback]
    if not wanted:
        return {}
    with ThreadPoolExecutor(max_workers=min(16, len(wanted))) as pool:
        names = pool.map(lambda ip: DnsLookup(servers).ptr(ip), wanted)
        return dict(zip(wanted, names, strict=True))


def compile_cache(config: Config, before: list[tuple[str, int, int, int]] | None,
                  ) -> Path | None:
    """Write routes.cache for ``config`` (read after ``before`` was taken) when routes
    and routemap are free of errors; what ``qremote check`` and the console's save do.

    Returns the path, or None when not written (errors, or files changed meanwhile);
    a cache that was not rewritten is stale by its fingerprint, hence ignored."""
    if any(f.severity == "error" and f.file in SOURCES for f in config.findings):
        return None
    names = lookup_helo_names(local_ips(config.routes, config.defaultoutgoingip),
                              config.dnsservers)
    return write_cache(config.home, config.routes, config.routemap, before, names)
