"""The live demo: a small SMTP sink on loopback, and the real qmail-remote run on
sample messages every few seconds, its reports written as qmail-send would log them
(multilog ``current`` with TAI64N stamps), so the logs view shows real deliveries.

No root, no network: the sink listens on ports above 1024 of 127.0.0.x addresses
the sample routes name, and DNS goes to a loopback responder that answers SERVFAIL
to everything, so ``mx`` attempts fail at once (a deferral, or a failover to the
next remote group, as in real life).
"""

from __future__ import annotations

import itertools
import os
import random
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

from qconsole.logformat import logsafe, tai64n_label

SINKS = (("127.0.0.30", 587), ("127.0.0.60", 587), ("127.0.0.50", 2525))
# (sender, recipients of one domain): routed by the sample routemap and smtproutes.
SAMPLES = (
    ("news@domaine1.com", ["anne@domaine2.com"]),  # route3: mx fails, then :587
    ("shop@shop.test", ["bob@relay.test", "carol@relay.test"]),  # route5
    ("shop@shop.test", ["unknown-dave@relay.test"]),  # route5, 550 for the recipient
    ("billing@shop.test", ["erin@smarthost.test"]),  # route4: mx only, no DNS: deferral
    ("news@domaine1.com", ["frank@relay.test"]),  # route1: mx (default IP): deferral
    ("shop@shop.test", ["full-gina@relay.test"]),  # route5, 452: recipient deferred
    ("", ["postmaster@relay.test"]),  # a bounce (null sender)
)


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for qmail-remote: unknown-* is refused, full-* deferred."""

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 sink.demo ESMTP demo sink")
        while line := self.rfile.readline(4096):
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.reply("250-sink.demo\r\n250-8BITMIME\r\n250 SIZE 10000000"
                           if verb == b"EHLO" else "250 sink.demo")
            elif verb == b"RCPT":
                local = line.split(b"<", 1)[-1].lower()
                self.reply("550 5.1.1 no such user here" if local.startswith(b"unknown")
                           else "452 4.2.2 mailbox full" if local.startswith(b"full")
                           else "250 2.1.5 ok")
            elif verb == b"DATA":
                self.reply("354 go ahead")
                while self.rfile.readline(65536) not in (b".\r\n", b""):
                    pass
                self.reply(f"250 2.0.0 ok queued as {random.randrange(10**6):06d}")
            elif verb == b"QUIT":
                self.reply("221 2.0.0 bye")
                return
            else:
                self.reply("250 2.0.0 ok")


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class _ServfailHandler(socketserver.BaseRequestHandler):
    """Answers every DNS query with SERVFAIL (the question echoed, no records)."""

    def handle(self) -> None:
        data, sock = self.request
        if len(data) < 12:
            return
        flags = 0x8000 | (data[2] & 0x79) << 8 | 0x80 | 2  # QR, opcode+RD kept, RA, rcode
        answer = data[:2] + flags.to_bytes(2, "big") + data[4:6] + bytes(6) + data[12:]
        sock.sendto(answer, self.client_address)


def rspawn_results(reports: bytes, count: int) -> list[tuple[str, str]]:
    """What qmail-send logs for each recipient, from qmail-remote's reports (as
    qmail-rspawn combines them): (success|deferral|failure, text)."""
    parts = [p.decode("utf-8", "replace") for p in reports.split(b"\0") if p]
    if not parts:
        return [("deferral", "qmail-remote gave no report")] * count
    message = parts[-1]
    status = {"K": "success", "Z": "deferral", "D": "failure"}.get(message[:1], "deferral")
    out = []
    for i in range(count):
        rcpt = parts[i] if i < len(parts) - 1 else "r"
        if rcpt[:1] == "h":
            out.append(("failure", rcpt[1:] + message[1:]))
        elif rcpt[:1] == "s":
            out.append(("deferral", rcpt[1:] + message[1:]))
        else:
            out.append((status, message[1:]))
    return out


class LiveDemo:
    """Sinks plus a thread delivering a sample every ``interval`` seconds."""

    def __init__(self, home: Path, interval: float = 3.0, free_ports: bool = False,
                 through_worker: bool = False) -> None:
        self.home = home
        self.interval = interval
        # through_worker: each delivery by qmail-remote's client (pyclient), which
        # hands it to a running `qremote worker` of the home (else delivers itself).
        self.through_worker = through_worker
        # free_ports: each sink on a port the system picks, the home's routes and
        # smtproutes rewritten to it (tests: no other demo can answer in its place).
        self.free_ports = free_ports
        self.log = home / "log" / "current"
        self.stop = threading.Event()
        self.servers: list[socketserver.BaseServer] = []
        self.msg = itertools.count(int(time.time()) % 100000 * 10)
        self.slot = itertools.count(1)

    def start(self, deliveries: bool = True) -> LiveDemo:
        """Open the sinks (and the DNS responder) and start delivering."""
        dns = socketserver.ThreadingUDPServer(("127.0.0.1", 0), _ServfailHandler)
        threading.Thread(target=dns.serve_forever, daemon=True).start()
        self.servers.append(dns)  # type: ignore[arg-type]
        (self.home / "control" / "dnsservers").write_text(
            f"127.0.0.1:{dns.server_address[1]}\n")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        moved: dict[str, str] = {}
        for host, port in SINKS:
            try:
                server = _Server((host, 0 if self.free_ports else port), _SmtpHandler)
            except OSError:
                continue  # taken: those deliveries will show as deferrals
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append(server)
            moved[f"{host}:{port}"] = f"{host}:{server.server_address[1]}"
        if self.free_ports:
            for name in ("routes", "smtproutes"):
                path = self.home / "control" / name
                text = path.read_text()
                for old, new in moved.items():
                    text = text.replace(old, new)
                path.write_text(text)
        if deliveries:
            self.start_deliveries()
        return self

    def start_deliveries(self) -> None:
        """Start delivering (after ``start(deliveries=False)``)."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop delivering (the delivery under way ends first) and close the sinks."""
        self.stop.set()
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(30)
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def _write(self, *lines: str) -> None:
        try:
            with open(self.log, "a", encoding="utf-8") as fh:
                for line in lines:
                    fh.write(f"{tai64n_label(time.time())} {line}\n")
        except OSError:
            if not self.stop.is_set():  # the demo's home is going away: nothing to say
                raise

    def deliver_once(self, sender: str, recipients: list[str]) -> None:
        """One message: qmail-send's lines around one real qmail-remote run."""
        msg = next(self.msg)
        body = (f"From: {sender or 'MAILER-DAEMON@mail.example.org'}\nTo: "
                f"{', '.join(recipients)}\nSubject: qconsole demo {msg}\n\nHello.\n")
        self._write(f"new msg {msg}",
                    f"info msg {msg}: bytes {len(body)} from <{sender}> qp {os.getpid()} "
                    "uid 1000")
        slots = []
        for rcpt in recipients:
            slot = next(self.slot) % 20 + 1
            slots.append(slot)
            self._write(f"starting delivery {slot}: msg {msg} to remote {rcpt}")
        host = recipients[0].rsplit("@", 1)[1]
        env = dict(os.environ, QMAIL_HOME=str(self.home))
        try:
            if self.through_worker:
                from qremote.client import pyclient

                run = [sys.executable, "-I", "-S", pyclient.__file__]
            else:
                run = [sys.executable, "-m", "qremote.remote"]
            done = subprocess.run([*run, host, sender, *recipients], input=body.encode(),
                                  env=env, capture_output=True, timeout=120)
            reports = done.stdout
        except (OSError, subprocess.SubprocessError) as exc:
            reports = f"Zdemo could not run qmail-remote: {exc}\n".encode() + b"\0"
        for slot, (status, text) in zip(slots, rspawn_results(reports, len(recipients)),
                                        strict=True):
            self._write(f"delivery {slot}: {status}: {logsafe(text)}")
        self._write(f"end msg {msg}")

    def _run(self) -> None:
        for sender, recipients in itertools.cycle(SAMPLES):
            if self.stop.is_set():
                return
            self.deliver_once(sender, recipients)
            if self.stop.wait(self.interval * random.uniform(0.5, 1.5)):
                return

