"""Spark as a cluster runs it: launched by spark-submit, reading the files from a Hadoop URL.

The spark-submit case runs the ``spark-submit`` shipped in the pyspark wheel
with ``--master local[2]`` while the ``spark_master`` setting names a master
nobody listens on: the answer can only come if teiten keeps the launcher's
master. The ``spark_data_url`` case reads a copy of the store in which one
file differs, through a ``file://`` URL, with the catalog of the original.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import teiten
from teiten.app.ingest import ingest
from teiten.cli.main import cli
from teiten.config import Settings, load_settings
from teiten.errors import ConfigError
from teiten.simulate import SimulationResult

TREND = ["trend", "23/tcp", "2323/tcp", "--split", "domestic", "--format", "json"]
LAUNCHER_TIMEOUT = 900
"""Seconds before a hung spark-submit is stopped (a guard against waiting forever, not a limit)."""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, smoke: SimulationResult) -> Settings:
    settings = load_settings(
        env={},
        overrides={
            "data": str(tmp_path_factory.mktemp("cluster") / "store"),
            "sensor_networks": ["203.0.113.0/24"],
        },
    )
    ingest(list(smoke.pcaps), settings)
    return settings


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEITEN_", "PYSPARK_"))}
    return {**env, "TEITEN_CONFIG": "", "SPARK_LOCAL_IP": "127.0.0.1", **extra}


def _teiten(args: list[str], env: dict[str, str]) -> str:
    """``python -m teiten ARGS``'s output (the test fails on a non-zero exit)."""
    run = subprocess.run(
        [sys.executable, "-m", "teiten", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=LAUNCHER_TIMEOUT,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.spark
def test_spark_submit_runs_a_command_on_the_launchers_master(store: Settings) -> None:
    pyspark = pytest.importorskip("pyspark")
    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    entry = Path(teiten.__file__).with_name("__main__.py")
    data = ["--data", str(store.data_dir)]
    log4j = Path(teiten.__file__).parent / "engine" / "log4j2.properties"
    env = _env(
        PYSPARK_PYTHON=sys.executable,
        # Port 9 of loopback: no Spark master there. Used, the command would fail.
        TEITEN_SPARK_MASTER="spark://127.0.0.1:9",
    )
    run = subprocess.run(
        [
            str(submit),
            "--master",
            "local[2]",
            "--driver-java-options",
            f"-Dlog4j2.configurationFile={log4j}",
            str(entry),
            *TREND,
            "--engine",
            "spark",
            *data,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=LAUNCHER_TIMEOUT,
        check=False,
    )
    # spark-submit passes the Python driver's stdout and stderr on together, as its stdout.
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    duckdb = _teiten([*TREND, *data], _env())
    assert '"segment": "domestic"' in duckdb
    assert run.stdout == duckdb


def _halve_one_file(store: Path) -> Path:
    """Keep every other row of the largest packets file of ``store``; its path."""
    files = sorted(store.glob("packets/sensor=*/date=*/*.parquet"), key=lambda p: p.stat().st_size)
    path = files[-1]
    table = pq.read_table(path)
    assert table.num_rows > 1
    pq.write_table(table.take(list(range(0, table.num_rows, 2))), path)
    return path


@pytest.mark.spark
def test_spark_reads_the_files_at_spark_data_url(store: Settings, tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    copy = tmp_path / "synced"
    shutil.copytree(store.data_dir, copy)
    _halve_one_file(copy)
    runner = CliRunner()
    env = {"TEITEN_CONFIG": "", "TEITEN_SPARK_MASTER": "local[2]"}

    # Counts from the packet files themselves (trend may answer from the hourly rollups).
    count = ["query", "SELECT dst_port, count(*) AS n FROM packets GROUP BY dst_port ORDER BY 1"]

    def trend(data: Path, *extra: str, url: str = "") -> str:
        r = runner.invoke(
            cli, [*count, "--data", str(data), *extra], env={**env, "TEITEN_SPARK_DATA_URL": url}
        )
        assert r.exit_code == 0, r.output
        return r.output

    original, synced = trend(store.data_dir), trend(copy)
    assert original != synced  # the halved file changes the answer
    assert trend(store.data_dir, "--engine", "spark") == original
    # The original's catalog, the copy's files.
    assert trend(store.data_dir, "--engine", "spark", url=copy.as_uri()) == synced
    assert trend(store.data_dir, "--engine", "spark", url=copy.as_uri() + "/") == synced


@pytest.mark.spark
def test_a_listed_file_missing_at_spark_data_url_is_one_line(
    store: Settings, tmp_path: Path
) -> None:
    pytest.importorskip("pyspark")
    copy = tmp_path / "half-synced"
    shutil.copytree(store.data_dir, copy)
    missing = _halve_one_file(copy)
    missing.unlink()
    r = CliRunner().invoke(
        cli,
        [*TREND, "--engine", "spark", "--data", str(store.data_dir)],
        env={
            "TEITEN_CONFIG": "",
            "TEITEN_SPARK_MASTER": "local[2]",
            "TEITEN_SPARK_DATA_URL": copy.as_uri(),
        },
    )
    assert r.exit_code == 1, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "cannot read the store" in lines[0], r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("", ""),
        ("hdfs://nn:8020/teiten-data", "hdfs://nn:8020/teiten-data"),
        ("S3A://bucket/teiten-data/", "s3a://bucket/teiten-data"),
        ("file:///srv/teiten-data", "file:///srv/teiten-data"),
        ("file:///", "file://"),
        ("hdfs://nn:8020", "hdfs://nn:8020"),
    ],
)
def test_spark_data_url_is_kept_without_a_trailing_slash(given: str, kept: str) -> None:
    assert load_settings(env={}, overrides={"spark_data_url": given}).spark_data_url == kept


@pytest.mark.parametrize(
    "given",
    [
        "/srv/teiten-data",
        "teiten-data",
        "hdfs:/nn/teiten-data",
        "s3a://bucket/teiten data",
        "s3a://bucket/teiten-*",
        "hdfs://nn/x?user=a",
        "://nn/x",
    ],
)
def test_spark_data_url_without_a_scheme_or_with_globs_is_refused(given: str) -> None:
    with pytest.raises(ConfigError, match="spark_data_url") as e:
        load_settings(env={}, overrides={"spark_data_url": given})
    assert "\n" not in str(e.value)


def test_a_bad_spark_data_url_is_one_line_on_the_command_line(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        cli,
        [*TREND, "--engine", "spark", "--data", str(tmp_path)],
        env={"TEITEN_CONFIG": "", "TEITEN_SPARK_DATA_URL": "/srv/teiten-data"},
    )
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "TEITEN_SPARK_DATA_URL" in lines[0], r.output
