"""Build the compiled ``qmail-remote`` client with the system's C compiler.

``build_client(home, python, dest)`` compiles ``qmail-remote.c`` (beside this module)
with the qmail home, the Python interpreter (for the in-process fallback) and the
worker's socket compiled in, and puts the binary at ``dest`` atomically (a temporary
file in the same directory, then a rename). It never raises for an expected failure:
it returns ``Build(None, reason)`` when there is no compiler or the compile fails, so
an installer can fall back to the Python client or the shell wrapper.

The C strings are written as C literals with every byte outside printable ASCII, and
``"``, ``\\`` and ``?``, escaped, and the compiler is run without a shell, so paths
with spaces, quotes or any other byte are safe.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

SOURCE = Path(__file__).with_name("qmail-remote.c")
PYCLIENT = Path(__file__).with_name("pyclient.py")
COMPILERS = ("cc", "gcc", "clang")
CLIENT_MARKER = b"qremote-client: hands deliveries to qremote worker"  # in every binary


def is_client(path: Path) -> bool:
    """True when ``path`` is a client binary built by :func:`build_client`."""
    try:
        with open(path, "rb") as fh:
            return CLIENT_MARKER in fh.read(8 << 20)
    except OSError:
        return False


class Build(NamedTuple):
    """The outcome of :func:`build_client`: the binary, or None and why not."""

    path: Path | None
    reason: str


def c_literal(value: str | bytes) -> str:
    """``value`` as a C string literal (for a ``-DNAME=VALUE`` define)."""
    data = os.fsencode(value) if isinstance(value, str) else value
    out = ['"']
    for byte in data:
        char = chr(byte)
        if char in '"\\?' or not 32 <= byte < 127:
            out.append(f"\\{byte:03o}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def compiler_argv(cc: str) -> list[str]:
    """``cc`` as the start of an argv: a program, or as make takes ``$CC``, a program
    and its options (``gcc -m64``)."""
    if shutil.which(cc) or os.access(cc, os.X_OK):
        return [cc]
    try:
        return shlex.split(cc) or [cc]
    except ValueError:  # unbalanced quotes: not a command line
        return [cc]


def find_compiler() -> str | None:
    """The C compiler to use: ``$CC`` if set (a program, maybe with options), else the
    first of cc, gcc, clang."""
    cc = os.environ.get("CC")
    if cc:
        program, *options = compiler_argv(cc)
        found = shutil.which(program) or (program if os.access(program, os.X_OK) else None)
        if found is None:
            return None
        return shlex.join([found, *options]) if options else found
    for name in COMPILERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def runtimes(machine: str | None = None, system: str | None = None) -> tuple[str, ...]:
    """The ways to build the client, tried in this order: ``freestanding`` (no C
    library; Linux on x86-64 only: see ``freestanding.h``), ``static``, ``dynamic``."""
    import platform

    machine = machine or platform.machine()
    system = system or platform.system()
    first = ("freestanding",) if (system, machine) in (("Linux", "x86_64"),
                                                       ("Linux", "amd64")) else ()
    return (*first, "static", "dynamic")


# Without the C library: no start files, no stack protector or fortified calls (they
# live in the library), and a fixed address (no dynamic loader to relocate it).
FREESTANDING_FLAGS = ("-static", "-nostdlib", "-ffreestanding", "-fno-stack-protector",
                      "-U_FORTIFY_SOURCE", "-fno-pie", "-no-pie", "-DQR_FREESTANDING=1")


def runs_here(path: Path) -> bool:
    """True when ``path`` is what the freestanding runtime must be: a 64-bit x86-64
    executable at a fixed address (``ET_EXEC``). Options the compiler adds on its own
    (a wrapper's ``-static-pie``, ``-mx32``) make something else: a position-independent
    program that no loader relocates, or another ABI."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
    except OSError:
        return False
    return (len(head) == 20 and head[:4] == b"\x7fELF" and head[4] == 2  # 64-bit
            and head[5] == 1 and int.from_bytes(head[16:18], "little") == 2  # ET_EXEC
            and int.from_bytes(head[18:20], "little") == 62)  # EM_X86_64


def compile_command(cc: str, output: Path, home: Path, python: Path, socket: Path,
                    relay: bool = False, runtime: str = "static") -> list[str]:
    """The compiler's argv (no shell involved) for one of :func:`runtimes`."""
    command = [*compiler_argv(cc), "-O2", "-o", str(output)]
    if runtime == "freestanding":
        command += FREESTANDING_FLAGS
    elif runtime == "static":
        command.append("-static")
    elif runtime != "dynamic":
        raise ValueError(f"unknown runtime {runtime!r}")
    command += [f"-DQR_HOME={c_literal(str(home))}",
                f"-DQR_PYTHON={c_literal(str(python))}",
                f"-DQR_SOCKET={c_literal(str(socket))}",
                f"-DQR_RELAY={1 if relay else 0}", str(SOURCE)]
    return command


def build_client(home: Path, python: Path | str, dest: Path, *,
                 socket: Path | None = None, relay: bool = False,
                 cc: str | None = None, only: str | None = None) -> Build:
    """Compile the client for the qmail home ``home`` into ``dest`` (mode 0755).

    ``python`` is the interpreter the fallback runs (``python -I -m qremote.remote``);
    ``socket`` the worker's socket (default ``HOME/queue/lock/qremote.sock``); ``relay``
    selects relay mode (for measurement). All three paths must be absolute. Each of
    :func:`runtimes` is tried in turn (the first starts fastest) unless ``only`` names
    one; ``Build.reason`` says which was built."""
    from qremote.worker.protocol import default_socket

    home, python, dest = Path(home), Path(python), Path(dest)
    socket = Path(socket) if socket is not None else default_socket(home)
    for label, path in (("qmail home", home), ("python", python), ("socket", socket)):
        if not path.is_absolute():
            return Build(None, f"the {label} must be an absolute path, not {path}")
    compiler = cc or find_compiler()
    if compiler is None:
        return Build(None, "no C compiler found (cc, gcc or clang; or set CC)")
    if not SOURCE.is_file():
        return Build(None, f"the client's source {SOURCE} is missing")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    except OSError as exc:
        return Build(None, f"cannot write in {dest.parent}: {exc.strerror}")
    os.close(fd)
    tmp = Path(tmp_name)
    errors = ""
    try:
        for runtime in (only,) if only else runtimes():
            command = compile_command(compiler, tmp, home, python, socket, relay, runtime)
            try:
                result = subprocess.run(command, capture_output=True, timeout=300,
                                        stdin=subprocess.DEVNULL)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return Build(None, f"running {compiler} failed: {exc}")
            if result.returncode == 0 and runtime == "freestanding" \
                    and not runs_here(tmp):
                errors = f"{compiler} made no fixed-address x86-64 program without the C library"
                continue
            if result.returncode == 0:
                os.chmod(tmp, 0o755)
                os.replace(tmp, dest)
                return Build(dest, runtime)
            errors = (result.stdout + result.stderr).decode("utf-8", "replace")
        return Build(None, f"{compiler} failed: {errors.strip()[-1500:]}")
    finally:
        if tmp.exists():
            tmp.unlink()
