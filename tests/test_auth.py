"""AUTH on a route with credentials: which mechanisms, when to stop, never unauthenticated."""

from __future__ import annotations

import base64

from tests.support.delivery import deliver
from tests.support.scripted import ScriptedSmtp

CHALLENGE = b"334 " + base64.b64encode(b"<1.2@scripted.test>") + b"\r\n"


def _deliver(make_home, server: ScriptedSmtp, creds: str = "u;pw") -> list[str]:
    home = make_home(routes=f"r;127.0.0.2;127.0.0.1:{server.port};{creds}\n",
                     routemap="*;*;r\n", timeoutremote="2\n")
    return deliver(home, "x.org", "a@b.org", ["y@x.org"])


def test_after_535_no_other_mechanism_and_quit(make_home) -> None:
    """Bad credentials: one AUTH only (fail2ban counts failures), then QUIT, then Z."""
    ext = ("AUTH CRAM-MD5 PLAIN LOGIN", "PIPELINING")
    with ScriptedSmtp(extensions=ext, auth=[CHALLENGE, b"535 5.7.8 bad credentials\r\n"],
                      ) as server:
        out = _deliver(make_home, server)
        (session,) = server.reset()
    assert session.verbs().count(b"AUTH") == 1
    assert session.verbs()[-1] == b"QUIT" and b"MAIL" not in session.verbs()
    assert out[-1].startswith("ZSorry, I wasn't able to establish an SMTP connection.")
    assert "535 5.7.8 bad credentials" in out[-1]


def _authenticate_against(replies: list[bytes], offered: str) -> tuple[str, list[bytes]]:
    """authenticate() on a real socket whose other end answers ``replies`` in turn,
    as if inside TLS (so every mechanism is allowed): the mechanism or the error, and
    the lines the server heard."""
    import socket
    import threading

    from qremote.control.routes import parse_route
    from qremote.delivery.session import authenticate
    from qremote.delivery.smtp import AttemptError, Client

    ours, theirs = socket.socketpair()
    heard: list[bytes] = []

    def serve() -> None:
        reader = theirs.makefile("rb")
        for reply in replies:
            line = reader.readline()
            if not line:
                return
            heard.append(line)
            theirs.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = Client(ours, 2)
    client.tls_version = "TLSv1.3"  # the mechanism choice is under test, not TLS
    try:
        result = authenticate(client, {"AUTH": offered}, parse_route("r;;;u;pw"))
    except AttemptError as exc:
        result = f"failed: {exc}"
    finally:
        client.close()
        theirs.close()
        thread.join(2)
    return result, heard


def test_a_refused_mechanism_moves_to_the_next() -> None:
    """504, 534, 538 refuse the mechanism, not the login: the next one is tried."""
    result, heard = _authenticate_against(
        [b"504 5.5.4 unknown mechanism\r\n", b"534 5.7.9 too weak\r\n",
         b"334 VXNlcm5hbWU6\r\n", b"334 UGFzc3dvcmQ6\r\n", b"235 2.7.0 ok\r\n"],
        "CRAM-MD5 PLAIN LOGIN")
    assert result == "LOGIN"
    assert [h.split()[:2] for h in heard[:3]] == [[b"AUTH", b"CRAM-MD5"],
                                                 [b"AUTH", b"PLAIN"], [b"AUTH", b"LOGIN"]]


def test_a_bad_password_stops_the_mechanisms() -> None:
    for code in (b"535 5.7.8 bad", b"454 4.7.0 try later", b"530 5.7.0 no"):
        result, heard = _authenticate_against(
            [CHALLENGE, code + b"\r\n", b"235 2.7.0 ok\r\n"], "CRAM-MD5 PLAIN LOGIN")
        assert result.startswith("failed: authentication failed: AUTH CRAM-MD5"), code
        assert len(heard) == 2  # the AUTH line and its answer; no other mechanism


def test_no_usable_auth_never_sends_mail(make_home) -> None:
    for ext in (("PIPELINING",), ("AUTH",), ("AUTH PLAIN LOGIN",), ("AUTH XOAUTH2",)):
        with ScriptedSmtp(extensions=ext) as server:
            out = _deliver(make_home, server)
            (session,) = server.reset()
        assert b"MAIL" not in session.verbs() and b"AUTH" not in session.verbs(), ext
        assert out[-1].startswith("ZSorry, I wasn't able to establish"), (ext, out)


def test_the_old_auth_equals_form(make_home) -> None:
    with ScriptedSmtp(extensions=("AUTH=CRAM-MD5",),
                      auth=[CHALLENGE, b"235 2.7.0 welcome\r\n"]) as server:
        out = _deliver(make_home, server)
        (session,) = server.reset()
    assert out[-1].startswith("K127.0.0.1 accepted message.")
    assert "auth=CRAM-MD5" in out[-1]
    assert session.lines(b"AUTH") == [b"AUTH CRAM-MD5\r\n"]


def test_a_relay_echoing_the_user_name_does_not_put_it_in_the_report(make_home) -> None:
    ext = ("AUTH CRAM-MD5",)
    with ScriptedSmtp(extensions=ext, auth=[CHALLENGE, b"535 5.7.8 bad login for "
                                            b"carol-the-user (pw s3cr3t-pw)\r\n"]) as server:
        out = _deliver(make_home, server, creds="carol-the-user;s3cr3t-pw")
    assert out[-1][0] == "Z" and "535 5.7.8 bad login for *** (pw ***)" in out[-1]
    assert "carol-the-user" not in out[-1] and "s3cr3t-pw" not in out[-1]
