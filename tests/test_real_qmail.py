"""End to end in a real qmail: qmail-send → qmail-rspawn → qremote's qmail-remote, run
as qmail's remote user, → an SMTP server with STARTTLS and AUTH.

The whole of notqmail (../shared/reference) is built once for the session with its own
users, qremote is installed into it with ``qremote install`` (which tests the wrapper
as that user first), and qmail runs as on a server: ``qmail-start``, its log in a file.
Mail goes in with qmail's ``qmail-queue``; what happened is read from qmail-send's log,
the queue (qmail-qstat, qmail-qread), the SMTP sink and the Maildir where local mail
(bounces) lands. Every wait has a deadline. See tests/support/realqmail.py.

Skips with a message where the reference, cc, make, useradd or root is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from qremote.install import is_wrapper
from qremote.qmailuser import lookup
from tests.support import realqmail
from tests.support.realqmail import Accounts, Delivery, RealQmail, logsafe
from tests.support.smtpsink import Received, Sink, free_port, tls_contexts
from tests.support.users import _usable_base, make_venv, qremote_cli

ME = "qmail.test"  # control/me and control/locals: the only local domain
REMOTE = "remote.test"  # routed by routemap to the sink
AUTH_USER = "e2e-authuser"
PASSWORD = "Pa55-e2e-s3cret"  # must never reach a log line or a bounce
LOCAL_IP = "127.0.0.2"
ANY = {"success", "deferral", "failure"}


@dataclass
class Setup:
    """The running qmail, the sink its remote mail goes to, and how they were made."""

    qmail: RealQmail
    sink: Sink
    python: Path  # the venv qremote was installed from
    qmailr: str
    build_seconds: float
    install_output: str

    def good_routes(self) -> str:
        return (f"sink;{LOCAL_IP};127.0.0.1:{self.sink.port};{AUTH_USER};{PASSWORD};"
                "tls=encrypt\n")

    def write_routes(self, text: str) -> None:
        self.qmail.write_control("routes", text, 0o640,
                                 self.qmail.accounts.gid("qmail"))


@pytest.fixture(scope="session")
def real_qmail() -> Iterator[Setup]:
    """notqmail built (``make setup check``), qremote installed, qmail-start running."""
    why = realqmail.unavailable()
    if why:
        pytest.skip(why)
    root = realqmail.make_root()
    home = root / "qmail"
    accounts = Accounts(home)
    qmail = RealQmail(root, home, accounts)
    context, ca_file = tls_contexts()
    os.unlink(ca_file)  # tls=encrypt checks no certificate
    sink = Sink("127.0.0.1", free_port(), starttls=context,
                users={AUTH_USER: PASSWORD}).start()
    try:
        accounts.create()
        build_seconds = realqmail.build(root, accounts, home)
        print(f"\nreal qmail: built in {build_seconds:.1f} s at {home}")
        qmail.setup_alias()
        qmailr = accounts.users["qmailr"]
        setup = Setup(qmail, sink, Path(), qmailr, build_seconds, "")
        for name, text in (("me", f"{ME}\n"), ("locals", f"{ME}\n"),
                           ("concurrencyremote", "20\n"),
                           ("dnsservers", "127.0.0.1:9\n"),  # no DNS leaves the machine
                           ("timeoutconnect", "10\n"),
                           ("routemap", f"*;{REMOTE};sink\n")):
            qmail.write_control(name, text)
        setup.write_routes(setup.good_routes())
        user = lookup(qmailr)
        assert user is not None
        base = _usable_base(user)
        if base is None:
            pytest.skip(f"no Python 3.11+ on this machine that {qmailr} can run")
        setup.python = make_venv(base, root / "venv")
        done = qremote_cli(setup.python, "--qmail-home", str(home), "install",
                           "--user", qmailr)
        setup.install_output = done.stdout
        if done.returncode != 0:
            pytest.fail("qremote install refused to install into the real qmail:\n"
                        f"{done.stdout}{done.stderr}", pytrace=False)
        qmail.start()
        yield setup
    finally:
        leftover = qmail.stop()
        sink.stop()
        shutil.rmtree(root, ignore_errors=True)
        accounts.remove()
    assert not leftover, f"processes left behind after qmail-send stopped: {leftover}"


@pytest.fixture
def env(real_qmail: Setup) -> Iterator[Setup]:
    """The session's qmail with an empty queue, good routes and a sink that accepts
    everything; checks afterwards that neither the AUTH user nor the password reached
    qmail-send's log meanwhile."""
    setup = real_qmail
    setup.sink.rcpt_replies.clear()
    setup.sink.data_reply = None
    setup.write_routes(setup.good_routes())
    # What an earlier test left (if it failed) is retried now, so that it cannot
    # spoil this one.
    setup.qmail.wait_empty()
    start = len(setup.qmail.log_text())
    yield setup
    log = setup.qmail.log_text()[start:]
    assert PASSWORD not in log, f"the password is in qmail-send's log:\n{log}"
    assert AUTH_USER not in log, f"the AUTH user is in qmail-send's log:\n{log}"


def message(tag: str) -> bytes:
    """A message that only this test sends: a line with a leading dot (dot-stuffing on
    the way), a blank line inside the body, 8-bit-free text."""
    return (f"From: e2e <e2e-{tag}@{ME}>\n"
            f"To: someone@{REMOTE}\n"
            f"Subject: e2e {tag}\n"
            f"Message-ID: <{tag}.{time.time_ns()}@{ME}>\n"
            "\n"
            f"Hello from the real qmail test {tag}.\n"
            ".a line that starts with a dot\n"
            "\n"
            "last line\n").encode()


def received_exactly(got: Received, sent: bytes) -> None:
    """What the sink got is the queued message with qmail-queue's Received line on top
    (CRLF on the wire)."""
    assert got.content.endswith(b"\r\n") and b"\r\n" in got.content
    lf = got.content.replace(b"\r\n", b"\n")
    first, _, rest = lf.partition(b"\n")
    assert re.fullmatch(rb"Received: \(qmail \d+ invoked by uid 0\); .+", first), first
    assert rest == sent


def one_result(setup: Setup, recipient: str) -> Delivery:
    """The first delivery to ``recipient`` that ended, whatever its result."""
    (first, *_rest) = [d for d in setup.qmail.wait_deliveries(recipient, ANY)
                       if d.result]
    return first


def detail_fields(delivery: Delivery) -> dict[str, str]:
    """The detail line (the report's last line) as a dict."""
    last = delivery.lines[-1]
    assert last.startswith("route="), f"the last line is not the detail line: {delivery}"
    return dict(item.split("=", 1) for item in last.split())


def expected_detail(setup: Setup, delivery: Delivery) -> None:
    fields = detail_fields(delivery)
    assert fields == {"route": "sink", "local": LOCAL_IP,
                      "remote": f"127.0.0.1:{setup.sink.port}", "tls": fields["tls"],
                      "auth": "CRAM-MD5"}, delivery.raw
    assert re.fullmatch(r"TLSv1\.[23]", fields["tls"]), delivery.raw


def for_recipient(sink: Sink, recipient: str) -> list[Received]:
    return [r for r in sink.received if recipient in r.rcpt_tos]


def test_install_replaced_qmails_qmail_remote(env: Setup) -> None:
    """``qremote install`` passed its self-test as qmail's remote user and kept qmail's
    binary as qmail-remote.orig."""
    bin_dir = env.qmail.home / "bin"
    assert is_wrapper(bin_dir / "qmail-remote")
    orig = bin_dir / "qmail-remote.orig"
    assert orig.read_bytes()[:4] == b"\x7fELF"
    gid = env.qmail.accounts.gid("qmail")
    st = orig.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, gid, 0o711)
    st = (bin_dir / "qmail-remote").stat()  # the compiled client: qmail's own mode
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, gid, 0o711)
    assert (bin_dir / "qmail-remote").read_bytes()[:4] == b"\x7fELF"
    out = env.install_output
    # qmail-start's processes, each as the user qmail gives it.
    users = env.qmail.accounts.users
    running = {cmd.split()[0]: user for _pid, cmd, user in
               realqmail.session_processes(env.qmail.pid)}
    assert running == {"qmail-send": users["qmails"], "qmail-lspawn": "root",
                       "qmail-rspawn": users["qmailr"], "qmail-clean": users["qmailq"]}
    assert f"tested the new qmail-remote as {env.qmailr} (uid" in out
    assert f"ok    running as {env.qmailr} (uid" in out
    assert f"ok    qmail home: {env.qmail.home} (set by the wrapper)" in out
    assert "self-test passed" in out and "FAIL" not in out


def test_check_finds_qmails_remote_user_by_itself(env: Setup) -> None:
    """Without ``--user``, check asks qmail who its remote user is (the owner of
    queue/lock/tcpto, made by qmail's install): here not called qmailr."""
    home = env.qmail.home
    check = qremote_cli(env.python, "--qmail-home", str(home), "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout == ""  # the wrapper is qremote's, the memory writable
    assert (f"as seen by {env.qmailr}, the user qmail-remote runs as (the owner of "
            f"{home / 'queue' / 'lock' / 'tcpto'})") in check.stderr, check.stderr


def test_delivery_through_qmail_send_and_rspawn(env: Setup) -> None:
    """qmail-send → qmail-rspawn → our qmail-remote (as qmailr) → the sink: success in
    the log with our detail line, and the sink got the message byte for byte."""
    sender, rcpt = f"e2e-one@{ME}", f"one@{REMOTE}"
    sent = message("one")
    env.qmail.queue(sender, [rcpt], sent)
    delivery = one_result(env, rcpt)
    assert delivery.result == "success", (
        f"qmail-send logged {delivery.result} for a plain delivery: {delivery.raw}")
    assert delivery.channel == "remote"
    assert delivery.lines[0] == "127.0.0.1 accepted message."
    assert delivery.lines[1] == "Remote host said: 250 2.0.0 queued as 1234"
    expected_detail(env, delivery)
    (got,) = for_recipient(env.sink, rcpt)
    assert (got.mail_from, got.rcpt_tos) == (sender, [rcpt])
    assert (got.peer, got.tls, got.auth) == (LOCAL_IP, True, AUTH_USER)
    received_exactly(got, sent)
    env.qmail.wait_end(delivery)
    assert env.qmail.qstat() == (0, 0)


def test_rejected_recipient_bounces_to_the_sender(env: Setup) -> None:
    """A 550 to RCPT: failure in the log, and qmail's bounce reaches the (local) sender
    with our report in it, and neither the AUTH user nor the password."""
    sender, rcpt = f"e2e-bounce@{ME}", f"nobody@{REMOTE}"
    env.sink.rcpt_replies[rcpt] = f"550 5.1.1 <{rcpt}>: no such user here"
    sent = message("bounce")
    before = set(os.listdir(env.qmail.maildir() / "new"))
    env.qmail.queue(sender, [rcpt], sent)
    delivery = one_result(env, rcpt)
    assert delivery.result == "failure", delivery.raw
    # The bounce is local mail to the sender: delivered into ~alias/Maildir.
    (bounce_delivery,) = env.qmail.wait_deliveries(sender, ANY)
    assert bounce_delivery.channel == "local" and bounce_delivery.result == "success", \
        bounce_delivery.raw
    (name,) = set(os.listdir(env.qmail.maildir() / "new")) - before
    bounce = (env.qmail.maildir() / "new" / name).read_text()
    assert f"Hi. This is the qmail-send program at {ME}." in bounce
    assert "I'm afraid I wasn't able to deliver your message to the following " \
           "addresses." in bounce
    port = env.sink.port
    block = re.search(
        rf"^<{re.escape(rcpt)}>:\n"
        r"127\.0\.0\.1 does not like recipient\.\n"
        rf"Remote host said: 550 5\.1\.1 <{re.escape(rcpt)}>: no such user here\n"
        r"Giving up on 127\.0\.0\.1\.\n"
        rf"route=sink local={re.escape(LOCAL_IP)} remote=127\.0\.0\.1:{port} "
        r"tls=TLSv1\.[23] auth=CRAM-MD5\n", bounce, re.M)
    assert block, f"the bounce does not hold our report as expected:\n{bounce}"
    assert "--- Below this line is a copy of the message." in bounce
    assert sent.decode() in bounce
    assert PASSWORD not in bounce and AUTH_USER not in bounce
    assert for_recipient(env.sink, rcpt) == []
    env.qmail.wait_end(delivery)


def test_deferral_stays_queued_then_is_delivered(env: Setup) -> None:
    """A 451 to RCPT: deferral in the log, the message stays in the queue; once the
    server accepts, a retry delivers it, once."""
    sender, rcpt = f"e2e-later@{ME}", f"later@{REMOTE}"
    env.sink.rcpt_replies[rcpt] = "451 4.7.1 greylisted, come back later"
    sent = message("later")
    env.qmail.queue(sender, [rcpt], sent)
    delivery = one_result(env, rcpt)
    assert delivery.result == "deferral", delivery.raw
    assert delivery.lines[:3] == [
        "127.0.0.1 does not like recipient.",
        "Remote host said: 451 4.7.1 greylisted, come back later",
        "Giving up on 127.0.0.1."], delivery.raw
    expected_detail(env, delivery)
    assert env.qmail.qstat() == (1, 0)
    listing = env.qmail.qread()
    assert re.search(rf"<{re.escape(sender)}>\s*\n\s*remote\s+{re.escape(rcpt)}", listing), \
        listing
    assert for_recipient(env.sink, rcpt) == []
    del env.sink.rcpt_replies[rcpt]
    everything = env.qmail.wait_deliveries(rcpt, {"success"}, nudge=True)
    assert [d.result for d in everything][-1] == "success"
    assert {d.result for d in everything[:-1]} == {"deferral"}
    assert all(d.msg == delivery.msg for d in everything)
    expected_detail(env, everything[-1])
    (got,) = for_recipient(env.sink, rcpt)
    received_exactly(got, sent)
    env.qmail.wait_end(delivery)
    assert env.qmail.qstat() == (0, 0)


def test_broken_routes_defer_every_delivery_never_bounce(env: Setup) -> None:
    """A routes file with an error: every delivery defers with the finding that
    ``qremote check`` prints (no password in it), nothing bounces, nothing is sent;
    once fixed, the queued mail goes."""
    broken = (f"sink;{LOCAL_IP};127.0.0.1:{env.sink.port};{AUTH_USER};{PASSWORD};"
              "tls=sometimes\n")
    env.write_routes(broken)
    check = qremote_cli(env.python, "--qmail-home", str(env.qmail.home), "check",
                        "--user", env.qmailr)
    assert check.returncode == 1, check.stdout + check.stderr
    (finding,) = [line for line in check.stdout.splitlines()
                  if line.startswith("control/routes:1: error: ")]
    assert PASSWORD not in check.stdout + check.stderr
    sender = f"e2e-broken@{ME}"
    rcpts = [f"broken1@{REMOTE}", f"broken2@{REMOTE}"]
    start = len(env.qmail.log_text())
    env.qmail.queue(sender, rcpts, message("broken"))
    tried = {r: env.qmail.wait_deliveries(r, ANY, count=2, nudge=True) for r in rcpts}
    for rcpt, deliveries in tried.items():
        for d in deliveries:
            if d.result is None:
                continue
            assert d.result == "deferral", f"{rcpt}: {d.result}: {d.raw}"
            assert logsafe(finding) in d.raw, (
                f"the deferral does not say what check says ({finding!r}): {d.raw}")
            assert "#4.3.0" in d.raw
        assert for_recipient(env.sink, rcpt) == []
    log = env.qmail.log_text()[start:]
    assert {d.result for d in env.qmail.deliveries(log)} <= {None, "deferral"}, log
    assert not re.search(r"^bounce msg ", log, re.M), log
    assert env.qmail.qstat()[0] == 1
    env.write_routes(env.good_routes())
    for rcpt in rcpts:
        env.qmail.wait_deliveries(rcpt, {"success"}, nudge=True)
        assert len(for_recipient(env.sink, rcpt)) == 1
    env.qmail.wait_end(tried[rcpts[0]][0])


def test_many_messages_at_once(env: Setup) -> None:
    """Twelve messages of two recipients each, queued at once (concurrencyremote 20):
    every one delivered exactly once, several deliveries in flight together."""
    start = len(env.qmail.log_text())
    sent = {}
    for i in range(12):
        rcpts = [f"many{i}a@{REMOTE}", f"many{i}b@{REMOTE}"]
        sent[i] = (rcpts, message(f"many{i}"))
        env.qmail.queue(f"e2e-many{i}@{ME}", rcpts, sent[i][1])
    for rcpts, body in sent.values():
        for rcpt in rcpts:
            deliveries = env.qmail.wait_deliveries(rcpt, ANY, timeout=120)
            assert [d.result for d in deliveries] == ["success"], [
                (d.result, d.raw) for d in deliveries]
            expected_detail(env, deliveries[0])
            (got,) = for_recipient(env.sink, rcpt)
            assert got.rcpt_tos == [rcpt]  # qmail-rspawn: one recipient a delivery
            received_exactly(got, body)
    log = env.qmail.log_text()[start:]
    in_flight = [int(n) for n in re.findall(r"^status: local \d+/\d+ remote (\d+)/20$",
                                            log, re.M)]
    assert max(in_flight) >= 2, "qmail never had two remote deliveries in flight"
    env.qmail.wait_empty()


def test_deliveries_through_the_worker(env: Setup) -> None:
    """``qremote worker`` started as root drops to qmail's remote user; qmail-rspawn's
    qmail-remote (the compiled client) hands it each delivery: same reports in the
    log, messages delivered once each, connections reused; then SIGKILL in the middle
    of a burst loses nothing and bounces nothing (the rest is retried in-process)."""
    import signal
    import subprocess
    import threading

    home = env.qmail.home
    (home / "control" / "reuseidle").write_text("30\n")
    worker = subprocess.Popen(
        [str(env.python), "-m", "qremote.cli", "--qmail-home", str(home), "worker",
         "--user", env.qmailr], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert worker.stdout is not None
        for raw in worker.stdout:
            lines.append(raw.decode(errors="replace").rstrip("\n"))
            if "listening on" in lines[-1]:
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(60) and worker.poll() is None, "\n".join(lines)
        ehlos = env.sink.ehlos
        rcpts = [f"worker{i}@{REMOTE}" for i in range(6)]
        for rcpt in rcpts:  # one after the other: each finds the last one's connection
            body = message(rcpt.split("@")[0])
            env.qmail.queue(f"e2e-worker@{ME}", [rcpt], body)
            (done,) = env.qmail.wait_deliveries(rcpt, ANY, timeout=120)
            assert done.result == "success", done.raw
            expected_detail(env, done)
            (got,) = for_recipient(env.sink, rcpt)
            received_exactly(got, body)
        handed = [line for line in lines if re.match(r"delivery \d+: K ", line)]
        assert len(handed) == len(rcpts), "\n".join(lines)
        assert env.sink.ehlos - ehlos == 2  # one connection (EHLO, STARTTLS, EHLO)
        # SIGKILL while a burst is in flight: nothing lost, nothing bounced.
        burst = [f"killed{i}@{REMOTE}" for i in range(10)]
        for rcpt in burst:
            env.qmail.queue(f"e2e-killed@{ME}", [rcpt], message(rcpt.split("@")[0]))
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(30)
        for rcpt in burst:
            results = [d.result for d in env.qmail.wait_deliveries(rcpt, {"success"},
                                                                   nudge=True,
                                                                   timeout=120)]
            assert "failure" not in results, results
            assert len(for_recipient(env.sink, rcpt)) >= 1
        env.qmail.wait_empty()
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(30)
        (home / "control" / "reuseidle").unlink(missing_ok=True)
