"""``qremote simulate --probe``: real sessions, no mail sent."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.support.smtpsink import Sink, free_port, tls_contexts


def test_probe_reports_each_attempt_and_sends_nothing(make_home) -> None:
    server_ctx, _ = tls_contexts()
    sink = Sink(starttls=server_ctx, users={"alice": "s3cret"}).start()
    closed = free_port()
    try:
        home = make_home(
            routes=f"r;127.0.0.2;127.0.0.1:{closed}&127.0.0.1:{sink.port};alice;s3cret\n",
            routemap="*;*;r\n")
        result = run_cli("simulate", "--json", "--probe", "a@b.org", "x@y.org", home=home)
        assert result.returncode == 0, result.stderr
        attempts = json.loads(result.stdout)["deliveries"][0]["attempts"]
        assert attempts[0]["probe"]["ok"] is False
        assert attempts[0]["probe"]["stage"] == "connect"
        ok = attempts[1]["probe"]
        assert ok["ok"] and ok["tls"].startswith("TLSv1") and ok["auth"] == "CRAM-MD5"
        assert "STARTTLS" not in ok["extensions"]  # after STARTTLS it is not offered again
        text = run_cli("simulate", "--probe", "a@b.org", "x@y.org", home=home).stdout
        assert "probe failed (connect): cannot connect" in text
        assert "probe ok: tls=TLSv1" in text and "auth=CRAM-MD5" in text
        assert sink.received == []
    finally:
        sink.stop()
