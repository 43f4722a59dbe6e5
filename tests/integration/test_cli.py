"""The CLI contract: commands, output shapes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from teiten.cli.main import cli
from teiten.simulate import SimulationResult


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        cli, list(args), env={"TEITEN_CONFIG": "", **(env or {})}, catch_exceptions=False
    )


@pytest.fixture
def store(tmp_path: Path, smoke: SimulationResult) -> str:
    data = str(tmp_path / "store")
    r = run("ingest", str(smoke.pcap), "--data", data, "--sensor-net", "203.0.113.0/24")
    assert r.exit_code == 0, r.output
    assert f"{smoke.packets:,} packets" in r.output and "100 outbound" in r.output
    return data


def test_trend_json_rows_zero_filled(store: str) -> None:
    r = run(
        "trend",
        "23/tcp",
        "52869",
        "--data",
        store,
        "--split",
        "domestic",
        "--from",
        "2017-10-30",
        "--to",
        "2017-11-01",
        "--format",
        "json",
    )
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert set(rows[0]) == {"port", "date", "segment", "packets", "sources"}
    assert {x["port"] for x in rows} == {"23/tcp", "52869/tcp"}
    empty_day = [x for x in rows if x["date"] == "2017-10-30"]
    assert len(empty_day) == 4 and all(x["packets"] == 0 and x["sources"] == 0 for x in empty_day)
    nov1 = {x["segment"]: x for x in rows if x["date"] == "2017-11-01" and x["port"] == "23/tcp"}
    oct31 = {x["segment"]: x for x in rows if x["date"] == "2017-10-31" and x["port"] == "23/tcp"}
    assert nov1["domestic"]["sources"] > 5 * oct31["domestic"]["sources"]


def test_trend_hour_csv_and_chart(store: str, tmp_path: Path) -> None:
    chart = tmp_path / "t.svg"
    r = run(
        "trend",
        "23/tcp",
        "--data",
        store,
        "--by",
        "hour",
        "--format",
        "csv",
        "--chart",
        str(chart),
        "--tz",
        "Asia/Tokyo",
    )
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == "port,hour,segment,packets,sources"
    assert lines[1] == "23/tcp,2017-10-31T00:00,all,0,0"  # the window starts at local midnight
    first = next(x for x in lines[1:] if not x.endswith(",0,0"))
    assert first.startswith("23/tcp,2017-10-31T09:00,all,")  # data starts 00:00 UTC = 09:00 JST
    assert chart.read_text().startswith("<?xml")


def test_trend_split_fingerprint(store: str) -> None:
    r = run("trend", "23/tcp", "--data", store, "--split", "fingerprint", "--format", "json")
    rows = json.loads(r.output)
    mirai = sum(x["packets"] for x in rows if x["segment"] == "mirai")
    assert mirai > 0 and {"mirai", "none"} <= {x["segment"] for x in rows}


def test_ports_and_query(store: str) -> None:
    r = run("ports", "--data", store, "--top", "3", "--format", "json")
    rows = json.loads(r.output)
    assert [x["port"] for x in rows][:1] == ["23/tcp"] and len(rows) == 3
    r = run(
        "query",
        "SELECT src, dst, proto, fingerprints, direction FROM packets "
        "WHERE direction = 'out' LIMIT 2",
        "--data",
        store,
        "--format",
        "json",
    )
    out = json.loads(r.output)
    assert len(out) == 2 and out[0]["src"].startswith("203.0.113.") and out[0]["proto"] == "tcp"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["trend", "23/tcpx"], "not a port"),
        (["trend", "23/tcp", "--from", "Nov 1"], "not a date"),
        (["query", "SELECT nope FROM packets"], "nope"),
        (["ports", "--tz", "Mars/Olympus"], "time zone"),
    ],
)
def test_errors_are_one_line(store: str, args: list[str], words: str) -> None:
    r = run(*args, "--data", store)
    assert r.exit_code == 1
    assert words in r.output and len(r.output.strip().splitlines()) == 1


def test_missing_store_and_unknown_option(tmp_path: Path) -> None:
    r = run("ports", "--data", str(tmp_path / "none"))
    assert r.exit_code == 1 and "no data directory" in r.output
    r = run("ports", "--frobnicate")
    assert r.exit_code == 1 and "No such option" in r.output  # a usage error is a mistake too


def test_ingest_missing_file_fails_cleanly(tmp_path: Path) -> None:
    r = run("ingest", str(tmp_path / "nope.pcap"), "--data", str(tmp_path / "s"))
    assert r.exit_code == 1 and "no such file" in r.output


def test_settings_show_origin() -> None:
    r = run("settings", "--format", "json", env={"TEITEN_HOME_COUNTRY": "de"})
    rows = {x["name"]: x for x in json.loads(r.output)}
    assert rows["home_country"]["value"] == "DE"
    assert rows["home_country"]["origin"] == "TEITEN_HOME_COUNTRY"


def test_console_script_reports_internal_errors_in_one_line(tmp_path: Path) -> None:
    # a bad settings file through the real entry point: one line, exit 1
    bad = tmp_path / "teiten.toml"
    bad.write_text("threads = 'many'\n")
    p = subprocess.run(
        [sys.executable, "-m", "teiten", "--config", str(bad), "settings"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "threads" in p.stderr


def test_trend_measures(store: str, tmp_path: Path) -> None:
    r = run(
        "trend",
        "23/tcp",
        "--data",
        store,
        "--measure",
        "per_address",
        "--measure",
        "sources24",
        "--format",
        "json",
        "--chart",
        str(tmp_path / "c.png"),
    )
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output.split("\nchart written")[0])
    busy = [x for x in rows if x["packets"]]
    assert busy and all(x["sources24"] <= x["sources"] for x in rows)
    assert all(0 < x["per_address"] <= x["packets"] for x in busy)
    active = run(
        "query",
        "SELECT count(DISTINCT dst) AS n FROM packets WHERE direction = 'in'"
        " AND ts < TIMESTAMP '2017-11-01'",
        "--data",
        store,
        "--format",
        "json",
    )
    n = json.loads(active.output)[0]["n"]
    first = busy[0]
    assert first["per_address"] == round(first["packets"] / n, 3)


def test_series_view_matches_trend(store: str) -> None:
    q = run(
        "query",
        "SELECT CAST(date AS VARCHAR) AS date, segment, packets, sources"
        " FROM series WHERE port = 23 AND proto = 'tcp' ORDER BY 1, 2",
        "--data",
        store,
        "--format",
        "json",
    )
    view = json.loads(q.output)
    t = run("trend", "23/tcp", "--data", store, "--split", "domestic", "--format", "json")
    trend = [
        {k: x[k] for k in ("date", "segment", "packets", "sources")}
        for x in json.loads(t.output)
        if x["packets"]
    ]
    assert view == trend


def test_payloads_indicators_and_stix(store: str, tmp_path: Path) -> None:
    r = run("payloads", "--data", store, "--cve", "CVE-2014-8361", "--format", "json")
    rows = json.loads(r.output)
    assert rows and all("CVE-2014-8361" in x["cves"] for x in rows)
    shown = run("payloads", "--data", store, "--show", rows[0]["id"])
    assert "client_bytes" in shown.output and "\\x0d" in shown.output  # CR escaped
    table = run("indicators", "--data", store)
    assert "hxxp://" in table.output and "http://" not in table.output
    out = tmp_path / "b.json"
    r = run("indicators", "--data", store, "--format", "stix", "--out", str(out))
    assert r.exit_code == 0, r.output
    import stix2

    bundle = stix2.parse(out.read_text(), allow_custom=False)
    assert any(o.type == "indicator" for o in bundle.objects)
    assert "203.0.113." not in out.read_text()
    assert run("payloads", "--data", store, "--show", "nope").exit_code == 1
