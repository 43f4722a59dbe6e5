"""The shipped signatures: their positive and negative samples, the loader's checks, the docs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from teiten.classify import classify, load_signatures
from teiten.classify.signatures import KINDS, PROTOCOLS, SEVERITIES, parse_signature_file
from teiten.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "data" / "requests"

MATCHES: dict[str, set[str]] = {
    "realtek-seed.http": {"sig.realtek-miniigd-soap-cve-2014-8361"},
    "realtek-wanipcn-m.http": {"sig.realtek-miniigd-soap-cve-2014-8361"},
    "realtek-picsdesc-desc-arg.http": {"sig.realtek-miniigd-soap-cve-2014-8361"},
    "realtek-broken-xml.http": {"sig.realtek-miniigd-soap-cve-2014-8361"},
    "upnp-benign.http": {"sig.upnp-addportmapping-benign"},
    "realtek-no-injection.http": {"sig.upnp-addportmapping-benign"},
    "upnp-public-client.http": set(),
    "huawei-hg532.http": {"sig.huawei-hg532-upgrade-cve-2017-17215"},
    "huawei-plain-upgrade.http": set(),
    "gpon-diag.http": {"sig.gpon-diag-form-cve-2018-10561", "sig.gpon-hello-world-user-agent"},
    "gpon-diag-no-bypass.http": set(),
    "hello-world-get.http": set(),
    "dlink-hnap.http": {"sig.dlink-hnap-soapaction-cve-2015-2051"},
    "dlink-hnap-plain.http": set(),
    "jaws-shell.http": {"sig.jaws-dvr-shell-rce"},
    "jaws-shell-php.http": set(),
    "linksys-tmunblock.http": {"sig.linksys-tmunblock-themoon"},
    "linksys-tmunblock-plain.http": set(),
    "linksys-hnap-probe.http": {"sig.linksys-hnap-probe-themoon"},
    "hnap-probe-hostname.http": set(),
    "netgear-setup.http": {"sig.netgear-setup-cgi-syscmd"},
    "netgear-setup-plain.http": set(),
    "netgear-dgn2200-ping.http": {"sig.netgear-dgn2200-ping-cve-2017-6077"},
    "netgear-ping-plain.http": set(),
    "thinkphp-invokefunction.http": {"sig.thinkphp-invokefunction-cve-2018-20062"},
    "thinkphp-route.http": set(),
    "thinkphp-construct.http": {"sig.thinkphp-method-construct-cve-2018-20062"},
    "thinkphp-method-put.http": set(),
    "eir-d1000.http": {"sig.eir-d1000-tr064-setntpservers"},
    "eir-ntp-plain.http": set(),
    "zyxel-viewlog.http": {"sig.zyxel-viewlog-cve-2017-18368"},
    "zyxel-viewlog-plain.http": set(),
    "mirai-user-agent.http": {"sig.mirai-http-user-agent"},
    "browser.http": set(),
    "zgrab.http": {"sig.scanner-zgrab-http"},
    "masscan.http": {"sig.scanner-masscan-http"},
    "telnet-mirai.bin": {"sig.mirai-telnet-busybox-token"},
    "telnet-admin.bin": set(),
    "telnet-echo-loader.bin": {"sig.mirai-echo-hex-elf-loader"},
    "telnet-echo-text.bin": set(),
    "telnet-shellshock.bin": {"sig.shellshock-command-cve-2014-6271"},
    "telnet-shell-function.bin": set(),
    "shellshock-user-agent.http": {"sig.shellshock-http-cve-2014-6271"},
    "shellshock-near-miss.http": set(),
    "pipelined-chunked.http": {
        "sig.linksys-hnap-probe-themoon",
        "sig.netgear-dgn2200-ping-cve-2017-6077",
    },
}
"""Every sample file → exactly the signatures it must match."""

NEAR_MISSES: dict[str, set[str]] = {
    "sig.realtek-miniigd-soap-cve-2014-8361": {"realtek-no-injection.http", "upnp-benign.http"},
    "sig.upnp-addportmapping-benign": {
        "upnp-public-client.http",
        "realtek-seed.http",
        "realtek-picsdesc-desc-arg.http",
    },
    "sig.huawei-hg532-upgrade-cve-2017-17215": {"huawei-plain-upgrade.http"},
    "sig.gpon-diag-form-cve-2018-10561": {"gpon-diag-no-bypass.http"},
    "sig.gpon-hello-world-user-agent": {"hello-world-get.http"},
    "sig.dlink-hnap-soapaction-cve-2015-2051": {"dlink-hnap-plain.http"},
    "sig.jaws-dvr-shell-rce": {"jaws-shell-php.http"},
    "sig.linksys-tmunblock-themoon": {"linksys-tmunblock-plain.http"},
    "sig.linksys-hnap-probe-themoon": {"hnap-probe-hostname.http"},
    "sig.netgear-setup-cgi-syscmd": {"netgear-setup-plain.http"},
    "sig.netgear-dgn2200-ping-cve-2017-6077": {"netgear-ping-plain.http"},
    "sig.thinkphp-invokefunction-cve-2018-20062": {"thinkphp-route.http"},
    "sig.thinkphp-method-construct-cve-2018-20062": {"thinkphp-method-put.http"},
    "sig.eir-d1000-tr064-setntpservers": {"eir-ntp-plain.http"},
    "sig.zyxel-viewlog-cve-2017-18368": {"zyxel-viewlog-plain.http"},
    "sig.mirai-telnet-busybox-token": {"telnet-admin.bin"},
    "sig.mirai-http-user-agent": {"browser.http"},
    "sig.mirai-echo-hex-elf-loader": {"telnet-echo-text.bin", "telnet-mirai.bin"},
    "sig.shellshock-command-cve-2014-6271": {"telnet-shell-function.bin", "telnet-admin.bin"},
    "sig.shellshock-http-cve-2014-6271": {"shellshock-near-miss.http", "browser.http"},
    "sig.scanner-zgrab-http": {"browser.http", "masscan.http"},
    "sig.scanner-masscan-http": {"browser.http", "zgrab.http"},
}
"""Signature → samples that resemble its target but must not match it."""


def _matches(name: str) -> set[str]:
    port = 23 if name.endswith(".bin") else None
    return set(classify((SAMPLES / name).read_bytes(), dst_port=port).signatures)


@pytest.mark.parametrize("name", sorted(MATCHES))
def test_sample_matches_exactly(name: str) -> None:
    assert _matches(name) == MATCHES[name]


def test_every_signature_has_positive_and_negative_samples() -> None:
    ids = {s.id for s in load_signatures().signatures}
    positives = set().union(*MATCHES.values())
    assert ids == positives == set(NEAR_MISSES)
    for sig, files in NEAR_MISSES.items():
        for name in files:
            assert sig not in MATCHES[name], (sig, name)
    assert len(ids) >= 15


def test_samples_are_what_make_requests_writes() -> None:
    spec = importlib.util.spec_from_file_location("make_requests", SAMPLES / "make_requests.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0
    written = {p.name for p in SAMPLES.iterdir() if p.suffix in (".http", ".bin")}
    assert written - {"telnet-mirai.server.bin"} == set(MATCHES)


def test_shipped_signatures_are_complete() -> None:
    for s in load_signatures().signatures:
        assert s.source and s.title and s.references, s.id
        assert s.kind in KINDS and s.protocol in PROTOCOLS and s.severity in SEVERITIES
        assert s.kind != "exploit" or s.severity in ("high", "critical"), s.id
    realtek = load_signatures().get("sig.realtek-miniigd-soap-cve-2014-8361")
    assert realtek.cves == ("CVE-2014-8361",) and realtek.jvn == ("JVNDB-2014-008039",)


GOOD = """
[[signature]]
id = "sig.test-one"
title = "t"
kind = "exploit"
protocol = "http"
severity = "high"
source = "s"
[signature.match]
path = '^/x'
"""


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ('kind = "exploit"', 'kind = "exploit"\nhue = 1', ":6: signature 1: hue: unknown key"),
        ("path = '^/x'", "path = '^/(x'", ":10: signature 1: match.path: bad regular expression"),
        ('source = "s"\n', "", ":2: signature 1: source: missing"),
        ("path = '^/x'", "command = 'x'", ":10: signature 1: match.command: not a condition for"),
        ("path = '^/x'", "paths = 'x'", ":10: signature 1: match.paths: unknown condition"),
        ('severity = "high"', 'severity = "huge"', ":7: signature 1: severity: 'huge' is not one"),
        ('kind = "exploit"', 'kind = "exploit"\ncves = ["CVE-17-1"]', ":6: signature 1: cves:"),
        ("path = '^/x'", "header = { regex = 'x' }", ":10: signature 1: match.header.name:"),
        ("path = '^/x'", "soap_arg = { nme = 'x' }", ":10: signature 1: match.soap_arg.nme:"),
        ('id = "sig.test-one"', 'id = "Test One"', ":3: signature 1: id:"),
        ("[signature.match]\npath = '^/x'\n", "", ":2: signature 1: match: missing"),
        ('title = "t"', 'title = "t', "TOML syntax error"),
    ],
)
def test_loader_names_file_line_and_key(replace: str, by: str, message: str) -> None:
    assert replace in GOOD
    with pytest.raises(ConfigError) as e:
        parse_signature_file(GOOD.replace(replace, by), "my.toml")
    assert str(e.value).startswith("my.toml") and message in str(e.value), str(e.value)


def test_loader_on_files(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD)
    sigs = load_signatures([tmp_path])
    assert sigs.signatures[-1].id == "sig.test-one"
    assert len(sigs.signatures) == len(load_signatures().signatures) + 1
    assert [s.id for s in load_signatures([tmp_path], builtin=False).signatures] == ["sig.test-one"]
    (tmp_path / "b.toml").write_text(GOOD)
    with pytest.raises(ConfigError, match="also defined"):
        load_signatures([tmp_path])
    with pytest.raises(ConfigError, match="no \\[\\[signature\\]\\] tables"):
        parse_signature_file("# nothing\n", "c.toml")
    with pytest.raises(ConfigError, match=r"c\.toml:1: unknown top-level key 'title'"):
        parse_signature_file("title = 'x'\n" + GOOD, "c.toml")


def _table() -> str:
    rows = ["| id | kind | protocol | severity | CVE / JVN | port hints | title |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    for s in load_signatures().signatures:
        ids = ", ".join((*s.cves, *s.jvn)) or "—"
        ports = ", ".join(map(str, s.ports)) or "—"
        title = s.title.replace("|", "\\|")
        rows.append(f"| `{s.id}` | {s.kind} | {s.protocol} | {s.severity} | {ids} | {ports} "
                    f"| {title} |")  # fmt: skip
    return "\n".join(rows)


def test_docs_table_lists_the_shipped_signatures() -> None:
    text = (ROOT / "docs" / "signatures.md").read_text()
    begin, end = "<!-- signatures:begin -->\n", "\n<!-- signatures:end -->"
    block = text.split(begin, 1)[1].split(end, 1)[0]
    assert block == _table(), "docs/signatures.md is stale; the expected table is:\n" + _table()
