"""The logs view's filter attacked after a regex matching often was made to search only
the lines that can lead to a row, in place (attack12, session 8): its rows against the
row-by-row reading on logs unlike the repository's, and the joins a line of another
program can take over."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qconsole.logformat import logsafe
from qconsole.logindex import LogIndex
from qconsole.logsource import LogSource
from tests.test_logs import (
    OK_TEXT,
    T0,
    _search,
    any_log,
    compiled_path,
    row_by_row,
    stamp,
)

# Lines a log may hold besides qmail-send's own: quiet lines (status, new msg, end msg)
# holding a start or info needle past their event, CRLF, control bytes and bytes that
# are not UTF-8, a prefix alone, a reply of 60 KB.
HOSTILE = (
    "{s} status: local 0/10 remote 1/20 starting delivery {n}: msg {m} to remote {r}",
    "{s} end msg {m} info msg {m2}: bytes 5 from <{f}> qp 1",
    "{s} new msg {m} starting delivery {n}: msg {m2} to remote {r}",
    "{s} status: info msg {m}: bytes 3 from <{f}> qp 1",
    "{s} end msg {m} delivery {n}: success: x",
    "{s} delivery {n}: {st}: {t}\r",
    "{s} starting delivery {n}: msg {m} to remote {r}\r",
    "{s} info msg {m}: bytes 300 from <{f}> qp 1 uid 2\r",
    "{s} end msg {m}\r",
    "{s} status: local 0/10 remote 1/20\r",
    "{s} delivery {n}: {st}: \udcff\udcfe\x00\x1b[31mred\x07 foo",
    "{s} delivery {n}: {st}: \xe9t\xe9 foo",
    "{s} status: foo \xe9x",
    "{s} status: ",
    "{s} end msg ",
    "{s}",
    "\x00\x01\x02",
    "   ",
    "{s} delivery {n}: {st}: " + "x" * 60000,
    "{s} status: " + "starting delivery 1: msg 2 to remote a@b " * 3,
)
# Regexes that match in most lines (the line-by-line path), with anchors, boundaries,
# lookarounds and flags whose reading differs between a line alone and a line searched
# in place (\A, lookbehinds reaching before the line, \B on an empty line).
OFTEN = ("/./", "/[0-9]/", "/^@/", r"/\bfoo/", "/x$/", r"/e\B/", "/(?<=m)s/",
         "/(?s)(?<=.)@/", r"/\A@/", "/(?=bob)b/", "/(?i)BOB/", "/(?s)a.b/", "/(?m)^s/",
         r"/\Astatus/", r"/org\Z/", r"/(o)\1/", "/\xe9/", "/\r$/", "/$/", "/^/", r"/\s$/",
         "/.*/", "/^.{0,30}$/", "/o$/", r"/\b/", r"/\B/", "/^$/", "/ $/", "/x*/",
         r"/\x00/", r"/\x1b/", "/[^\\x00-\\x7f]/", "e", "msg", "@4000", "-e", "-/./",
         "-/e/", "/e/ -/x/", r"/\d+$/", "/e/ route:relay", "-/^@/", "/S/", "o -/o$/",
         "/status/", "/end msg/", r"/\w$/", "to:x.org", "from:b.org", "msg:1")


@st.composite
def hostile_log(draw) -> list[str]:
    lines = draw(any_log())
    rnd = draw(st.randoms())
    for _ in range(draw(st.integers(0, 12))):
        line = rnd.choice(HOSTILE).format(
            s=stamp(T0 + 100), n=rnd.choice((1, 2, 3, 12)), m=rnd.choice((1, 2, 12)),
            m2=rnd.choice((1, 2, 21)), r=rnd.choice(("ann@x.org", "bob@y.org")),
            f=rnd.choice(("a@b.org", "")), st=rnd.choice(("success", "deferral")),
            t="ok_foo/route=relay_local=127.0.0.2")
        lines.insert(rnd.randrange(len(lines) + 1), line)
    return lines


@pytest.mark.parametrize("fast", [True, False], ids=["compiled", "python"])
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(hostile_log(), st.sampled_from(OFTEN), st.sampled_from((300, 700, 2000, 1 << 20)),
       st.sampled_from((0, 2, 4096)), st.sampled_from(((1, 1), (1, 2), (2, 32))),
       st.booleans(), st.booleans())
def test_a_regex_matching_often_finds_the_rows_of_a_row_by_row_reading(
        tmp_path_factory, monkeypatch, fast, lines, query, block, dense, probe, helpers,
        crlf) -> None:
    """Every regex read line by line (``_PROBE`` and ``_MANY_MATCHES`` low: the first
    matches foretell many), in blocks of any size, by helpers or here, compiled or in
    Python: the rows a row-by-row reading gives, no more, no fewer."""
    from qconsole import logbulk, logfast, logjoin, logscan, logsearch

    log = tmp_path_factory.mktemp("often") / "current"
    end = "\r\n" if crlf else "\n"
    log.write_bytes("".join(line + end for line in lines).encode("utf-8", "surrogateescape"))
    compiled_path(fast)
    with monkeypatch.context() as m:
        m.setattr(logsearch, "BLOCK", block)
        m.setattr(logscan, "DENSE", dense)
        m.setattr(logbulk, "_PROBE", probe[0])
        m.setattr(logbulk, "_MANY_MATCHES", probe[1])
        m.setattr(logsearch, "JOIN_LIMIT", 2 * block)
        m.setattr(logjoin, "JOIN_LIMIT", 2 * block)
        m.setattr(logsearch, "PARALLEL_BLOCKS", 0 if helpers else 1 << 40)
        m.setattr(logfast, "ENABLED", fast)
        expected = row_by_row(log, query)
        index = LogIndex(LogSource(log))
        search = _search(index, query)
    found = [search.locate(i) for i in range(len(search))]
    index.source.close()
    assert [(rows.result[j], rows.status[j]) for rows, j in found] == \
        [e[:2] for e in sorted(expected)]


def _fixed_log(form: str) -> list[str]:
    """Deliveries interleaved with every hostile line, each qmail-send line with the
    prefix of ``form`` (tests.test_logs.FORMS)."""
    from tests.test_logs import FORMS, delivery_lines

    lines: list[str] = []
    for i in range(24):
        message = delivery_lines(T0 + i, i % 4 + 1, i % 3 + 1, ("ann@x.org", "bob@y.org")[i % 2],
                                 ("success", "deferral", "failure")[i % 3], OK_TEXT)
        lines += message[:3]
        template = HOSTILE[i % len(HOSTILE)]
        lines.append(template.format(s=stamp(T0 + i), n=i % 4 + 1, m=i % 3 + 1, m2=2,
                                     r="spy@x.org", f="a@b.org", st="success",
                                     t="ok_foo/route=relay_local=127.0.0.2"))
        lines += message[3:]
        lines.append("")
    prefix = FORMS[form]
    out = []
    for line in lines:
        if line.startswith("@4"):
            line = prefix(T0) + line[26:]
        out.append(line)
    return out


@pytest.mark.parametrize("form", ["multilog", "splogger", "none"])
@pytest.mark.parametrize("fast", [True, False], ids=["compiled", "python"])
def test_every_regex_matching_often_finds_the_rows_of_a_row_by_row_reading(
        tmp_path: Path, monkeypatch, fast: bool, form: str) -> None:
    """The same, deterministic: every regex of OFTEN on one log of every hostile line,
    in blocks of 2 KB."""
    from qconsole import logbulk, logfast, logjoin, logsearch

    log = tmp_path / "current"
    log.write_bytes("".join(line + "\n" for line in _fixed_log(form)).encode(
        "utf-8", "surrogateescape"))
    compiled_path(fast)
    monkeypatch.setattr(logsearch, "BLOCK", 2048)
    monkeypatch.setattr(logsearch, "JOIN_LIMIT", 4096)
    monkeypatch.setattr(logjoin, "JOIN_LIMIT", 4096)
    monkeypatch.setattr(logsearch, "PARALLEL_BLOCKS", 1 << 40)
    monkeypatch.setattr(logbulk, "_PROBE", 1)
    monkeypatch.setattr(logbulk, "_MANY_MATCHES", 2)
    monkeypatch.setattr(logfast, "ENABLED", fast)
    wrong = []
    for query in OFTEN:
        expected = [e[:2] for e in sorted(row_by_row(log, query))]
        search = _search(LogIndex(LogSource(log)), query)
        found = [search.locate(i) for i in range(len(search))]
        search.index.source.close()
        if [(rows.result[j], rows.status[j]) for rows, j in found] != expected:
            wrong.append(query)
    assert not wrong


# A line of another program in a syslog log (sshd's "Invalid user NAME", NAME sent by
# whoever connects) holding "starting delivery 7: msg 9 to remote spy@x.org" between a
# delivery's start line and its result was read as that delivery's start line: the row
# showed recipient "spy@x.org from 192.0.2.1 port 4242" and message 9, on the table and
# the filter alike, and `to:real@x.org` no longer found the delivery to real@x.org.
# (qmail-send writes "_" for the spaces of what it logs, so in a multilog log only
# qmail-send's own words hold spaces; a syslog file may hold any program's.) More in
# tests/test_foreign_lines.py.

def test_a_line_of_another_program_is_not_a_deliverys_start_line(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    pre = "Nov 24 10:00:0{} mail qmail: 1795000000.50000{} "
    log.write_text("\n".join([
        pre.format(0, 0) + "new msg 8",
        pre.format(0, 0) + "info msg 8: bytes 300 from <a@b.org> qp 1 uid 2",
        pre.format(1, 1) + "starting delivery 7: msg 8 to remote real@x.org",
        "Nov 24 10:00:02 mail sshd[77]: Invalid user starting delivery 7: msg 9 to "
        "remote spy@x.org from 192.0.2.1 port 4242",
        pre.format(3, 3) + f"delivery 7: success: {logsafe(OK_TEXT)}",
        pre.format(3, 3) + "end msg 8"]) + "\n")
    index = LogIndex(LogSource(log))
    for _ in index.scan_history(None):
        pass
    index.follow()
    shown = [(index.row(i).recipient, index.row(i).msg) for i in range(len(index))]
    index.source.close()
    search = _search(LogIndex(LogSource(log)), "to:real@x.org")
    found = [(search.row(i).recipient, search.row(i).msg) for i in range(len(search))]
    search.index.source.close()
    assert shown == found == [("real@x.org", "8")]
