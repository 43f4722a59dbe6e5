"""Operator mistakes, tried as a new user would: exit statuses, --tz, query --limit,
output folders, demo folders and an enrich source that would remove countries."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import pyarrow as pa
import pytest
from click.testing import CliRunner, Result
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from teiten.app.demo import MARK, prepare_out, run_demo
from teiten.app.engine import run_query
from teiten.cli.main import cli
from teiten.config import load_settings
from teiten.engine.duckdb import DuckDBEngine
from teiten.errors import ConfigError
from teiten.simulate import SimulationResult

ENRICH = Path(__file__).parent.parent / "data" / "enrich"


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        cli, list(args), env={"TEITEN_CONFIG": "", **(env or {})}, catch_exceptions=False
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, smoke: SimulationResult) -> str:
    data = str(tmp_path_factory.mktemp("operator") / "store")
    r = run("ingest", str(smoke.pcap), "--data", data, "--sensor-net", "203.0.113.0/24")
    assert r.exit_code == 0, r.output
    return data


def commands(option: str | None = None) -> list[tuple[list[str], click.Command]]:
    """Every leaf command as its argument path (subcommands too), optionally only those
    that accept ``option``."""
    found: list[tuple[list[str], click.Command]] = []

    def walk(group: click.Group, prefix: list[str]) -> None:
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            if isinstance(command, click.Group):
                walk(command, [*prefix, name])
            elif option is None or any(option in p.opts for p in command.params):
                found.append(([*prefix, name], command))

    walk(cli, [])
    return found


# --- item 22: one exit-status rule ---------------------------------------------------


@pytest.mark.parametrize("path", [p for p, _ in commands()], ids=" ".join)
def test_unknown_option_exits_1_on_every_command(path: list[str]) -> None:
    r = run(*path, "--frobnicate")
    assert r.exit_code == 1 and "No such option" in r.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["frobnicate"], "No such command"),  # unknown command
        (["advisory", "frobnicate"], "No such command"),  # unknown subcommand
        (["ports", "--top", "0"], "Invalid value for '--top'"),  # bad value (click)
        (["trend", "23/tcp", "--by", "week"], "Invalid value for '--by'"),
        (["query", "SELECT 1", "--limit", "-1"], "Invalid value for '--limit'"),
        (["trend"], "Missing argument"),  # missing argument (click)
        (["advisory", "check", "LAN-W300N/R"], "Missing argument"),
        (["signatures", "test"], "Missing argument"),
        (["--config", "/nonexistent/teiten.toml", "settings"], "teiten.toml"),
        (["trend", "23/tcpx"], "not a port"),  # teiten's checks
        (["ports", "--from", "Nov 1"], "not a date"),
        (["query", "SELECT nope FROM packets"], "nope"),
        (["ports", "--tz", "Mars/Olympus"], "time zone"),
        (["payloads", "--show", "nope"], "not a session id"),
    ],
)
def test_mistakes_exit_1(store: str, args: list[str], words: str) -> None:
    needs_data = args[0] in ("trend", "ports", "query", "payloads")
    r = run(*args, *(["--data", store] if needs_data else []))
    assert r.exit_code == 1, r.output
    assert words in r.output


def test_missing_files_exit_1(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    for args in (
        ["ingest", missing + ".pcap", "--data", str(tmp_path / "s")],
        ["ports", "--data", missing],
        ["signatures", "test", missing + ".txt"],
        ["advisory", "import", missing + ".json", "--out", str(tmp_path / "adv")],
        ["advisory", "check", "LAN-W300N/R", "2.27", "--advisories", missing],
        ["backcheck", "import", missing + ".json", "--no-store"],
    ):
        r = run(*args)
        assert r.exit_code == 1, (args, r.output)
        assert r.output.count("Error:") == 1, r.output


def test_advisory_answers_are_not_error_statuses() -> None:
    assert run("advisory", "check", "LAN-W300N/R", "2.33").exit_code == 0
    assert run("advisory", "check", "LAN-W300N/R", "Ver2.27").exit_code == 3
    assert run("advisory", "check", "NO-SUCH-MODEL", "1.0").exit_code == 4


def test_interrupt_exits_130(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Iterator[pa.RecordBatch]:
        raise KeyboardInterrupt

    monkeypatch.setattr("teiten.cli.query.stream_query", interrupted)
    r = run("query", "SELECT 1", "--data", store)
    assert r.exit_code == 130 and "interrupted" in r.output


def test_internal_error_exits_70(tmp_path: Path) -> None:
    # a bug planted in a fresh interpreter, through the console entry point
    script = (
        "import sys\n"
        "import teiten.cli.query as q\n"
        "def broken(*a, **k):\n"
        "    raise RuntimeError('a bug')\n"
        "q.stream_query = broken\n"
        "from teiten.cli.main import main\n"
        "sys.argv = ['teiten', 'query', 'SELECT 1', '--data', sys.argv[1]]\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TEITEN_DEBUG"}
    p = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env={**env, "TEITEN_CONFIG": ""},
    )
    assert p.returncode == 70, p.stderr
    assert "internal error: RuntimeError: a bug" in p.stderr and p.stderr.count("\n") == 1


# --- item 19: --tz only where it changes something -----------------------------------

# For every command that accepts --tz: arguments whose output must differ between
# zones (the output is stdout, or the files a command writes).
TZ_CASES: dict[str, list[str]] = {
    "ports": ["--from", "2017-10-31", "--to", "2017-10-31", "--format", "json"],
    "trend": ["23/tcp", "--format", "csv"],
    "detect": ["--format", "table"],  # no alert in two days: the window line differs
    "report": ["--lang", "en", "--format", "md"],
    "payloads": ["--format", "json", "--limit", "3"],
    "indicators": ["--format", "csv"],
    "notify": ["--by", "prefix", "--format", "json"],  # first and last seen, in the zone
}
SERVED_TZ = {"serve"}
"""``serve --tz`` is the zone of the server's answers (the API's ``tz`` parameter when a
request gives none): tests/integration/test_serve_api.py compares them with the CLI's."""


def _tz_output(name: str, store: str, zone: str, out: Path) -> str:
    folder = out / name / zone.replace("/", "-")
    folder.parent.mkdir(exist_ok=True)
    extra = ["--out", str(folder)] if name in ("report", "notify") else []
    r = run(name, *TZ_CASES[name], "--data", store, "--tz", zone, *extra)
    assert r.exit_code == 0, r.output
    if name in ("report", "notify"):
        return "".join(p.read_text() for p in sorted(folder.glob("*.*")))
    return r.output  # stdout and stderr


def test_every_tz_option_changes_the_output(store: str, tmp_path: Path) -> None:
    with_tz = {" ".join(path) for path, _ in commands("--tz")}
    assert with_tz == set(TZ_CASES) | SERVED_TZ  # a new command with --tz needs a case here
    for name in sorted(TZ_CASES):
        utc = _tz_output(name, store, "UTC", tmp_path)
        tokyo = _tz_output(name, store, "Asia/Tokyo", tmp_path)
        assert utc and tokyo and utc != tokyo, name


@pytest.mark.parametrize("name", ["ingest", "enrich", "alerts", "query"])
def test_commands_that_ignore_zones_do_not_take_tz(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    assert not any("--tz" in p.opts for p in command.params)


def test_times_carry_their_zone(store: str) -> None:
    utc = json.loads(run("payloads", "--data", store, "--format", "json", "--limit", "1").stdout)
    tokyo = json.loads(
        run(
            "payloads", "--data", store, "--format", "json", "--limit", "1", "--tz", "Asia/Tokyo"
        ).stdout
    )
    assert utc[0]["ts_first"].endswith("Z") and "T" in utc[0]["ts_first"]
    assert tokyo[0]["ts_first"].endswith("+09:00")
    a = datetime.fromisoformat(utc[0]["ts_first"].replace("Z", "+00:00"))
    assert a == datetime.fromisoformat(tokyo[0]["ts_first"])  # the same instant
    text = run("indicators", "--data", store, "--format", "csv").stdout
    rows = list(csv.DictReader(text.splitlines()))
    assert rows and all(
        r["first_seen"].endswith("Z") and r["last_seen"].endswith("Z") for r in rows
    )
    shown = run("payloads", "--data", store, "--show", utc[0]["id"], "--tz", "Asia/Tokyo")
    assert f"ts_first: {tokyo[0]['ts_first']}" in shown.stdout


# --- item 20: query --limit in the engine, output streamed ---------------------------


@pytest.fixture
def fetched(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows each engine call handed back to Python (query or stream)."""
    counts: list[int] = []
    original_query = DuckDBEngine.query
    original_stream = getattr(DuckDBEngine, "stream", None)

    def query(self: DuckDBEngine, sql: str, params: Any = None) -> pa.Table:
        table = original_query(self, sql, params)
        counts.append(table.num_rows)
        return table

    def stream(self: DuckDBEngine, sql: str, **kw: Any) -> Iterator[pa.RecordBatch]:
        assert original_stream is not None
        for batch in original_stream(self, sql, **{"batch_rows": 1000, **kw}):
            counts.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(DuckDBEngine, "query", query)
    monkeypatch.setattr(DuckDBEngine, "stream", stream, raising=False)
    return counts


def test_query_limit_is_applied_in_the_engine(store: str, fetched: list[int]) -> None:
    total = run_query(load_settings(env={}, overrides={"data": store}), "SELECT 1 FROM packets")
    assert total.num_rows > 5000
    fetched.clear()
    r = run("query", "SELECT * FROM packets", "--data", store, "--limit", "5", "--format", "json")
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)) == 5
    assert sum(fetched) <= 6  # never the whole table: at most limit + 1 to know there is more
    assert "more than 5 rows" in r.stderr


def _query(store: str, sql: str, *args: str) -> str:
    return run("query", sql, "--data", store, *args).stdout


def test_query_without_limit_streams_csv_and_json(store: str, fetched: list[int]) -> None:
    n = json.loads(_query(store, "SELECT count(*) AS n FROM packets", "--format", "json"))[0]["n"]
    fetched.clear()
    sql = "SELECT src, dst_port FROM packets"
    lines = _query(store, sql, "--limit", "0", "--format", "csv").splitlines()
    assert len(fetched) > 1 and max(fetched) <= 1000  # batch by batch
    assert lines[0] == "src,dst_port" and lines.count("src,dst_port") == 1 and len(lines) == n + 1
    rows = json.loads(_query(store, sql, "--limit", "0", "--format", "json"))
    assert len(rows) == n and set(rows[0]) == {"src", "dst_port"}
    none = "SELECT src FROM packets WHERE false"
    assert _query(store, none, "--format", "csv").strip() == "src"
    assert json.loads(_query(store, none, "--limit", "0", "--format", "json")) == []


# --- item 21: output folders and the demo folder -------------------------------------


def test_output_options_never_create_parent_folders(store: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    cases = [
        ["trend", "23/tcp", "--data", store, "--chart", str(missing / "t.png")],
        ["indicators", "--data", store, "--out", str(missing / "i.json")],
        ["report", "--data", store, "--out", str(missing / "report")],
        ["simulate", "smoke", "--out", str(missing / "sim")],
        ["demo", "--out", str(missing / "demo")],
        ["advisory", "import", str(tmp_path / "a.json"), "--out", str(missing / "adv")],
        ["backcheck", "import", str(tmp_path / "scan.json"), "--out", str(missing / "p.parquet")],
    ]
    for args in cases:
        r = run(*args)
        assert r.exit_code == 1, (args, r.output)
        assert "does not exist" in r.output, r.output
        assert not missing.exists()


def test_demo_folder_is_new_empty_or_an_earlier_demos(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    prepare_out(fresh)
    assert (fresh / MARK).is_file()
    (fresh / "data").mkdir()
    (fresh / "data" / "old.parquet").write_bytes(b"x")
    (fresh / "chart.png").write_bytes(b"x")
    prepare_out(fresh)  # an earlier demo's folder: emptied
    assert sorted(p.name for p in fresh.iterdir()) == [MARK]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not made by teiten demo"):
        prepare_out(mine)
    assert (mine / "notes.txt").read_text() == "keep me"
    with pytest.raises(ConfigError, match="does not exist"):
        prepare_out(tmp_path / "a" / "b")
    r = run("demo", "--out", str(mine))
    assert r.exit_code == 1 and "not made by teiten demo" in r.output


def test_demo_twice_into_one_folder_keeps_one_simulation(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    settings = load_settings(env={})
    run_demo(out, settings, scale=0.01, seed=1, reports=False)
    run_demo(out, settings, scale=0.01, seed=2, reports=False)
    stored = run_query(
        settings.replace(data=str(out / "data")),
        "SELECT count(DISTINCT input_id) AS inputs, count(*) AS n FROM packets_raw",
    ).to_pylist()[0]
    assert stored["inputs"] == 1 and stored["n"] > 0  # the second simulation only


# --- item 18: enrich refuses a source that would remove many countries ---------------

SOURCES = ["1.0.16.5", "1.0.16.6", "1.1.64.9", "1.0.1.7", "3.4.1.1", "8.8.8.8", "5.1.0.1"]


@pytest.fixture
def small_store(tmp_path: Path) -> str:
    pcap = tmp_path / "in.pcap"
    wrpcap(
        str(pcap),
        [Ether() / IP(src=s, dst="203.0.113.9") / TCP(dport=23, flags="S") for s in SOURCES],
    )
    data = str(tmp_path / "s")
    r = run("ingest", str(pcap), "--data", data, "--sensor-net", "203.0.113.0/24")
    assert r.exit_code == 0, r.output
    return data


def _countries(data: str) -> dict[str, str | None]:
    r = run("query", "SELECT src, src_cc FROM packets", "--data", data, "--format", "json")
    return {x["src"]: x["src_cc"] for x in json.loads(r.stdout)}


def _rir(*names: str) -> str:
    return "rir:" + ",".join(str(ENRICH / f"delegated-{n}-latest") for n in names)


APNIC, ARIN, RIPE = "apnic-extended", "arin-extended", "ripencc"


def test_enrich_refuses_a_source_that_removes_countries(small_store: str) -> None:
    before = _countries(small_store)
    assert all(before.values()) and before["1.0.16.5"] == "JP"
    r = run("enrich", "--data", small_store, "--source", _rir(RIPE))
    assert r.exit_code == 1, r.output
    assert "6 of 7" in r.output and "would have none" in r.output
    assert "packets from JP (domestic) would fall from 3 to 0" in r.output
    assert "--force" in r.output and len(r.output.strip().splitlines()) == 1
    assert _countries(small_store) == before  # nothing written


def test_enrich_with_every_registry_goes_ahead(small_store: str) -> None:
    r = run("enrich", "--data", small_store, "--source", _rir(APNIC, ARIN, RIPE))
    assert r.exit_code == 0, r.output
    after = _countries(small_store)
    assert after["1.0.16.5"] == "JP" and after["3.4.1.1"] == "US" and after["5.1.0.1"] == "DE"


def test_enrich_force_goes_ahead(small_store: str) -> None:
    r = run("enrich", "--data", small_store, "--source", _rir(RIPE), "--force")
    assert r.exit_code == 0, r.output
    assert "warning: 6 packets lost their country" in r.stderr
    after = _countries(small_store)
    assert after["5.1.0.1"] == "DE" and after["1.0.16.5"] is None


def test_coverage_rule() -> None:
    """Refused when more than 10 % of country-known packets lose it, or domestic falls >10 %."""
    from teiten.enrich.recompute import Coverage

    ok = Coverage(known_before=100, lost=10, home_before=50, home_after=45)
    assert ok.problem("JP") is None
    moved = Coverage(known_before=100, lost=0, home_before=50, home_after=10)
    assert moved.problem("JP") == "packets from JP (domestic) would fall from 50 to 10"
    lost = Coverage(known_before=100, lost=11, sources_known_before=9, sources_lost=2)
    assert lost.problem("JP") == (
        "11.0% of the packets that have a country now (11 of 100; 2 of 9 sources) would have none"
    )
