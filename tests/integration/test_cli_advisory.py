"""The ``teiten advisory`` commands: output, exit status, import, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from teiten.cli.advisory import advisory_group

DATA = Path(__file__).resolve().parents[1] / "data" / "csaf"


def run(*args: str) -> Result:
    return CliRunner().invoke(advisory_group, list(args), catch_exceptions=False)


def test_check_the_issue_example() -> None:
    r = run("check", "LAN-W300N/R", "Ver2.27")
    assert r.exit_code == 3, r.output
    out = r.stdout
    assert "affected" in out and "2.33" in out and "2013-11-06" in out
    assert "logitec-2017-12-19" in out and "CVE-2014-8361" in out and "JVNDB-2014-008039" in out
    assert "update it at once to the fixed firmware" in out


def test_check_json_and_languages() -> None:
    r = run("check", "lan w300n r", "2.27", "--format", "json", "--lang", "ja")
    assert r.exit_code == 3
    (v,) = json.loads(r.stdout)
    assert v["status"] == "affected" and v["fixed_version"] == "2.33"
    assert v["fixed_date"] == "2013-11-06" and v["lang"] == "ja" and "影響あり" in v["message"]
    assert any("更新" in a for a in v["actions"])


def test_exit_status_by_verdict() -> None:
    assert run("check", "LAN-W300N/R", "2.33").exit_code == 0
    assert run("check", "LAN-W300N3L", "1.14N3L").exit_code == 0
    assert run("check", "LAN-WH300N/DGR", "1.25").exit_code == 3
    assert run("check", "HG532e", "anything").exit_code == 3
    unknown = run("check", "NO-SUCH-MODEL", "1.0")
    assert unknown.exit_code == 4 and "unknown model" in unknown.stdout
    unsure = run("check", "LAN-W300N/R", "2.9")
    assert unsure.exit_code == 4 and "cannot compare" in unsure.stdout
    usage = run("check", "LAN-W300N/R")
    assert usage.exit_code == 1 and "Usage" in usage.output  # a usage error is a mistake: 1


def test_errors_exit_1_on_one_line(tmp_path: Path) -> None:
    r = run("check", "LAN-W300N/R", "2.27", "--advisories", str(tmp_path / "none"))
    assert r.exit_code == 1 and "not a directory" in r.output
    assert len(r.output.strip().splitlines()) == 1
    (tmp_path / "bad.toml").write_text('id = "bad"\nvendor = 1\n')
    r = run("check", "LAN-W300N/R", "2.27", "--advisories", str(tmp_path))
    assert r.exit_code == 1 and "bad.toml: vendor:" in r.output


def test_untrusted_text_is_escaped() -> None:
    r = run("check", "EVIL\x1b[2J\u202e", "1.0")
    assert r.exit_code == 4 and "\x1b" not in r.stdout and "\\x1b[2J" in r.stdout
    assert "\u202e" not in r.stdout


def test_list() -> None:
    r = run("list", "--format", "json")
    assert r.exit_code == 0
    ids = {x["id"] for x in json.loads(r.stdout)}
    assert ids == {
        "logitec-2017-12-19",
        "huawei-hg532-cve-2017-17215",
        "realtek-sdk-miniigd-cve-2014-8361",
    }
    rows = json.loads(run("list", "--products", "--format", "json").stdout)
    assert len(rows) == 12 and {"advisory", "model", "fixed_version", "fixed_date"} <= set(rows[0])
    assert run("list", "--lang", "ja").stdout.count("ロジテック") == 1


def test_import_then_check(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    r = run("import", str(DATA / "logitec-sample.json"), "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "11 models" in r.stdout and (out / "teiten-sample-logitec-2017-12-19.toml").is_file()
    again = run("import", str(DATA / "logitec-sample.json"), "--out", str(out))
    assert again.exit_code == 1 and "--replace" in again.output
    assert (
        run("import", str(DATA / "logitec-sample.json"), "--out", str(out), "--replace").exit_code
        == 0
    )
    r = run("check", "LAN-W300N/RS", "2.32", "--advisories", str(out), "--format", "json")
    (v,) = json.loads(r.stdout)
    assert r.exit_code == 3 and v["fixed_version"] == "2.33"
    assert {v["advisory_id"], *(a["advisory_id"] for a in v["also"])} == {
        "logitec-2017-12-19",
        "teiten-sample-logitec-2017-12-19",
    }
    listed = json.loads(run("list", "--advisories", str(out), "--format", "json").stdout)
    assert len(listed) == 4


def test_import_warnings_and_errors(tmp_path: Path) -> None:
    r = run("import", str(DATA / "example-relationships.json"), "--out", str(tmp_path))
    assert r.exit_code == 0 and "3 models" in r.stdout
    assert "warning:" in r.stderr and "EX999-UNDEFINED" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"document": {"csaf_version": "2.0"}}')
    r = run("import", str(bad), "--out", str(tmp_path))
    assert r.exit_code == 1 and "$.document.category: missing" in r.output
    assert len(r.output.strip().splitlines()) == 1
