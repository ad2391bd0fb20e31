"""What the worker is doing: deliveries in flight with their stage, and counts.

The worker keeps one :class:`Status`; ``qremote status`` and the console ask for its
:meth:`Status.snapshot` over the worker's socket (:func:`query`). The document::

    {"version": 1, "pid": 123, "uid": 1003, "gid": 1002, "groups": [1002],
     "socket": "/var/qmail/queue/lock/qremote.sock", "started": 1700000000.0,
     "uptime": 12.5, "draining": false,
     "in_flight": [{"id": 17, "stage": "delivering", "age": 0.42, "host": "x.org",
                    "recipients": 1, "client_pid": 4242}],
     "deliveries": 120, "results": {"K": 118, "Z": 2, "D": 0},
     "refused": 0, "errors": 0,
     "connections": [], "reused": 0}

``deliveries`` counts the deliveries finished (their report written or not);
``refused`` the connections refused by the peer-credential check; ``errors`` the
requests dropped before the ack (malformed, or the client vanished). ``connections``
(cached SMTP connections by destination) and ``reused`` (deliveries that reused one)
are kept for the connection cache.

Stages of a delivery: ``accepted`` (request read, descriptors held, not yet acked),
``acked``, ``delivering`` (in the engine; the engine may set finer stages through
:meth:`Delivery.set_stage`), ``reporting`` (the report is being written).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from qremote.delivery.report import clean
from qremote.errors import QremoteError

STAGES = ("accepted", "acked", "delivering", "reporting")

if TYPE_CHECKING:
    from qremote.delivery.connections import Pool


class WorkerUnavailable(QremoteError):
    """No worker answers on the socket, or it refused us."""


class Delivery:
    """One delivery in flight."""

    __slots__ = ("client_pid", "host", "id", "recipients", "stage", "started")

    def __init__(self, ident: int, client_pid: int, args: list[bytes]) -> None:
        self.id = ident
        self.client_pid = client_pid
        self.host = os.fsdecode(args[0]) if args else ""
        self.recipients = max(0, len(args) - 2)
        self.stage = "accepted"
        self.started = time.monotonic()

    def set_stage(self, stage: str) -> None:
        """Record where the delivery is (shown by ``qremote status``)."""
        self.stage = stage

    def as_dict(self, now: float) -> dict[str, object]:
        """The delivery in the status document."""
        return {"id": self.id, "stage": self.stage, "age": round(now - self.started, 3),
                "host": self.host, "recipients": self.recipients,
                "client_pid": self.client_pid}


class Status:
    """Deliveries in flight and counts; thread-safe."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.started = time.time()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._next = 1
        self.in_flight: dict[int, Delivery] = {}
        self.deliveries = 0
        self.results = {"K": 0, "Z": 0, "D": 0}
        self.refused = 0
        self.errors = 0
        self.draining = False
        self.pool: Pool | None = None  # the engine's connection cache, when it has one

    def begin(self, client_pid: int, args: list[bytes]) -> Delivery | None:
        """Register a delivery about to be acked; None once the worker drains."""
        with self._lock:
            if self.draining:
                return None
            delivery = Delivery(self._next, client_pid, args)
            self._next += 1
            self.in_flight[delivery.id] = delivery
            return delivery

    def end(self, delivery: Delivery, letter: str | None) -> None:
        """The delivery is over; ``letter`` is None when it was never acked."""
        with self._lock:
            self.in_flight.pop(delivery.id, None)
            if letter is None:
                self.errors += 1
            else:
                self.deliveries += 1
                self.results[letter] = self.results.get(letter, 0) + 1
            self._idle.notify_all()

    def count(self, field: str) -> None:
        """Add one to ``refused`` or ``errors``."""
        with self._lock:
            setattr(self, field, getattr(self, field) + 1)

    def drain(self) -> int:
        """Take no new delivery from now on; the number still in flight."""
        with self._lock:
            self.draining = True
            return len(self.in_flight)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is in flight (True) or ``timeout`` passes (False)."""
        with self._lock:
            return self._idle.wait_for(lambda: not self.in_flight, timeout)

    def snapshot(self) -> dict[str, object]:
        """The status document (see the module docstring)."""
        now = time.monotonic()
        with self._lock:
            flights = [d.as_dict(now) for d in self.in_flight.values()]
            doc: dict[str, object] = {
                "version": 1, "pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid(),
                "groups": sorted(os.getgroups()), "socket": str(self.socket_path),
                "started": self.started, "uptime": round(time.time() - self.started, 3),
                "draining": self.draining, "in_flight": flights,
                "deliveries": self.deliveries, "results": dict(self.results),
                "refused": self.refused, "errors": self.errors,
            }
        pool = self.pool
        doc["connections"] = pool.snapshot() if pool is not None else []
        doc["reused"] = pool.reused if pool is not None else 0
        doc["opened"] = pool.created if pool is not None else 0
        doc["stale"] = pool.stale if pool is not None else 0
        return doc


def query(socket_path: Path, timeout: float = 5.0) -> dict[str, object]:
    """Ask the worker at ``socket_path`` for its status document."""
    from qremote.worker import protocol

    try:
        sock = protocol.connect(socket_path, timeout)
    except FileNotFoundError:
        raise WorkerUnavailable(f"no worker is running: {socket_path} does not exist"
                                ) from None
    except ConnectionRefusedError:
        raise WorkerUnavailable(f"no worker is running: nothing listens on {socket_path}"
                                ) from None
    except PermissionError:
        raise WorkerUnavailable(f"cannot connect to {socket_path}: permission denied "
                                "(only root and the worker's user may)") from None
    except OSError as exc:
        raise WorkerUnavailable(f"cannot connect to {socket_path}: {exc.strerror}"
                                ) from None
    chunks = []
    try:
        with sock:
            protocol.send_request(sock, protocol.STATUS)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except TimeoutError:
        raise WorkerUnavailable(f"the worker at {socket_path} did not answer within "
                                f"{timeout:g} s") from None
    except OSError:
        pass  # a refusal resets the connection: said below
    data = b"".join(chunks)
    if not data.startswith(protocol.ACK):
        raise WorkerUnavailable(f"the worker at {socket_path} refused the request (only "
                                "root and the worker's user may ask)")
    try:
        doc = json.loads(data[1:])
    except ValueError:
        raise WorkerUnavailable(f"the worker at {socket_path} sent an unreadable "
                                "status") from None
    if not isinstance(doc, dict):
        raise WorkerUnavailable(f"the worker at {socket_path} sent an unreadable status")
    return doc


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def summary(doc: dict) -> list[str]:
    """Two lines: who the worker is, and its counts."""
    results = doc.get("results", {})
    return [
        f"worker pid {doc.get('pid')}, uid {doc.get('uid')}, up "
        f"{_duration(doc.get('uptime', 0))}"
        f"{', draining' if doc.get('draining') else ''}; socket {doc.get('socket')}",
        f"deliveries {doc.get('deliveries', 0)} (K {results.get('K', 0)}, "
        f"Z {results.get('Z', 0)}, D {results.get('D', 0)}), in flight "
        f"{len(doc.get('in_flight', []))}, refused peers {doc.get('refused', 0)}, "
        f"dropped requests {doc.get('errors', 0)}",
    ]


def render(doc: dict) -> str:
    """``qremote status``'s text: the summary, one line per delivery in flight, then
    the cached connections."""
    lines = summary(doc)
    for d in sorted(doc.get("in_flight", []), key=lambda d: d.get("id", 0)):
        lines.append(f"  #{d.get('id')}  {d.get('stage', '?'):<10}  "
                     f"{d.get('age', 0):7.1f}s  {d.get('host', '')}  "
                     f"{d.get('recipients', 0)} recipient(s)  client pid "
                     f"{d.get('client_pid')}")
    connections = doc.get("connections", [])
    lines.append(f"cached connections {len(connections)}, reused {doc.get('reused', 0)}")
    for c in connections:
        lines.append("  " + "  ".join(f"{k}={v}" for k, v in c.items()))
    return "\n".join(clean(line) for line in lines) + "\n"  # no terminal escapes


def to_json(doc: dict) -> str:
    """``qremote status --json``'s text."""
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
