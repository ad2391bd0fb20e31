"""The whole configuration: every control file of a qmail home, read and parsed.

This is the I/O edge of the parsers: it reads ``QMAIL_HOME/control/*`` and hands the
bytes to the pure parsers. Errors that span files (a routemap naming an unknown
route) are found here, so qmail-remote and ``qremote check`` refuse the same things.
"""

from __future__ import annotations

import errno
import gc
import os
import socket
import stat
from pathlib import Path

from qremote.control import settings
from qremote.control.controlfile import ControlFile
from qremote.control.findings import Finding
from qremote.control.routemap import RouteMap, parse_routemap
from qremote.control.routes import RoutesFile, parse_routes
from qremote.control.smtproutes import SmtpRoutes, parse_smtproutes

DEFAULT_HOME = "/var/qmail"
FILES = ("me", "helohost", "timeoutconnect", "timeoutremote", "smtproutes",
         "defaultoutgoingip", "routes", "routemap", "dnsservers", "reuseidle",
         "reuselifetime", "reusemessages")


def finding_order(f: Finding) -> tuple[int, str, int, str, str]:
    """Findings in the order the files are read (a cause before its consequences)."""
    rank = FILES.index(f.file) if f.file in FILES else len(FILES)
    return (rank, f.file, f.line, f.severity, f.text)


def qmail_home(option: str | None = None) -> Path:
    """The qmail home: the option, else ``$QMAIL_HOME``, else ``/var/qmail``."""
    return Path(option or os.environ.get("QMAIL_HOME") or DEFAULT_HOME)


def read_control(home: Path, name: str) -> tuple[ControlFile, list[Finding]]:
    """Read ``control/NAME``; a missing file is empty and not an error."""
    path = home / "control" / name
    try:
        data = read_regular(path)
    except FileNotFoundError:
        return ControlFile(name, exists=False), []
    except OSError as exc:
        if exc.errno == errno.EACCES:
            why = "permission denied; make it readable by the user qmail-remote runs as"
        elif exc.errno == errno.EISDIR:
            why = "it is a directory; it must be a file"
        else:
            why = exc.strerror or str(exc)
        return ControlFile(name, exists=False), [Finding(name, 0, "error",
                                                          f"cannot read {path}: {why}")]
    return ControlFile.from_bytes(name, data), []


def read_regular(path: Path) -> bytes:
    """The bytes of a regular file. Opened without blocking, as qmail opens control
    files (a FIFO in its place would hold every delivery for ever); anything but a
    regular file raises OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise OSError(errno.EISDIR, "it is a directory; it must be a file")
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "it is not a regular file (a FIFO, a device?); "
                                        "it must be a file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class Config:
    """Parsed control files of one qmail home, with every finding about them."""

    def __init__(self, home: Path, me: str, helohost: str, timeoutconnect: int,
                 timeoutremote: int, defaultoutgoingip: str | None,
                 dnsservers: list[tuple[str, int]], smtproutes: SmtpRoutes,
                 routes: RoutesFile, routemap: RouteMap,
                 files: dict[str, ControlFile] | None = None,
                 findings: list[Finding] | None = None) -> None:
        self.home = home
        self.me = me
        self.helohost = helohost
        self.timeoutconnect = timeoutconnect
        self.timeoutremote = timeoutremote
        self.defaultoutgoingip = defaultoutgoingip
        self.dnsservers = dnsservers
        self.smtproutes = smtproutes
        self.routes = routes
        self.routemap = routemap
        self.files: dict[str, ControlFile] = files or {}
        self.findings: list[Finding] = findings or []
        # PTR names of local IPs from the compiled cache (None: not known, look up).
        self.helo_names: dict[str, str | None] | None = None
        # The worker's connection cache: (idle seconds, lifetime seconds, messages).
        self.reuse: tuple[int, int, int] = (settings.REUSE_IDLE, settings.REUSE_LIFETIME,
                                            settings.REUSE_MESSAGES)

    @property
    def errors(self) -> list[Finding]:
        """The findings that are errors."""
        return [f for f in self.findings if f.severity == "error"]


def load_config(home: Path, use_cache: bool = False) -> Config:
    """Read and parse every control file of ``home``; never raises for bad content.

    With ``use_cache`` (qmail-remote), a fresh ``control/routes.cache`` replaces the
    parsing of routes and routemap."""
    # Loading makes many small acyclic objects; the cyclic GC would only rescan them.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(home, use_cache)
    finally:
        if was_enabled:
            gc.enable()


def _load(home: Path, use_cache: bool) -> Config:
    files: dict[str, ControlFile] = {}
    findings: list[Finding] = []
    cached = None
    if use_cache:
        from qremote.control.cache import read_cache

        cached = read_cache(home)
    for name in FILES:
        if cached is not None and name in ("routes", "routemap"):
            continue
        files[name], found = read_control(home, name)
        findings += found
    if cached is not None:
        config = build_config(home, files, findings)
        config.routes, config.routemap, config.helo_names = cached
        return config
    return build_config(home, files, findings)


def build_config(home: Path, files: dict[str, ControlFile],
                 findings: list[Finding] | None = None) -> Config:
    """Parse already-read control files (the console uses this for unsaved edits)."""
    findings = list(findings or [])

    def get(name: str) -> ControlFile:
        return files.get(name) or ControlFile(name, exists=False)

    me, found = settings.parse_text(get("me"))
    findings += found
    helohost, found = settings.parse_text(get("helohost"))
    findings += found
    tconnect, found = settings.parse_seconds(get("timeoutconnect"), settings.TIMEOUT_CONNECT)
    findings += found
    tremote, found = settings.parse_seconds(get("timeoutremote"), settings.TIMEOUT_REMOTE)
    findings += found
    outgoing, found = settings.parse_outgoing_ip(get("defaultoutgoingip"))
    findings += found
    dnsservers, found = settings.parse_dnsservers(get("dnsservers"))
    findings += found
    reuse = []
    for name, default, maximum, unit in (
            ("reuseidle", settings.REUSE_IDLE, 3600, "seconds"),
            ("reuselifetime", settings.REUSE_LIFETIME, settings.MAX_TIMEOUT, "seconds"),
            ("reusemessages", settings.REUSE_MESSAGES, 1000000, "messages")):
        value, found = settings.parse_seconds(get(name), default, 0, maximum, unit)
        reuse.append(value)
        findings += found
    smtproutes = parse_smtproutes(get("smtproutes"))
    routes = parse_routes(get("routes"))
    routemap = parse_routemap(get("routemap"))
    routes_unreadable = any(f.file == "routes" and f.line == 0 for f in findings)
    findings += smtproutes.findings + routes.findings + routemap.findings
    for rule in routemap.rules:
        if rule.route not in routes.routes and not routes_unreadable:
            findings.append(Finding("routemap", rule.line, "error",
                                    f"route {rule.route!r} is not defined in control/routes"))
    me = me or socket.gethostname()
    config = Config(home, me, helohost or me, tconnect, tremote, outgoing, dnsservers,
                    smtproutes, routes, routemap, files,
                    sorted(set(findings), key=finding_order))
    config.reuse = (reuse[0], reuse[1], reuse[2])
    return config
