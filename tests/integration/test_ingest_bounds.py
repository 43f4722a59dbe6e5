"""Ingest against hostile inputs and operator mistakes: bounded work, clean stops, clear lines.

Issue 10, items 5 (junk and expansion), 6 (random timestamps), 9 (damaged mmdb
during ingest), 10 (disk full), 11 (a second writer), 16 (``--data`` a file),
17 and 21 (silent results).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import zstandard
from click.testing import CliRunner, Result

from teiten.app.engine import run_query
from teiten.app.ingest import ingest
from teiten.cli.main import cli
from teiten.config import Settings
from teiten.errors import EnrichmentError, StoreError
from teiten.pipeline.guard import JUNK_MIN_RECORDS
from teiten.simulate import SimulationResult
from teiten.store.budget import EARLIEST_NS
from teiten.store.catalog import Catalog
from teiten.store.lake import NS_PER_DAY, Lake

ROOT = Path(__file__).resolve().parents[2]
GOOD_MMDB = ROOT / "tests/data/enrich/country.mmdb"
BAD_MMDB = (
    ROOT.parent / "shared/corpus/country/maxmind-test-data/bad-data/libmaxminddb/"
    "libmaxminddb-oversized-map.mmdb"
)

# Ether / IPv4 / TCP SYN, 1.0.16.5 → 203.0.113.9:23 (checksums do not matter to teiten)
SYN = bytes.fromhex(
    "0000000000020000000000010800450000280001000040062dc101001005cb00710904d2"
    "00170000000000000000500220003deb0000"
)
DAY0 = 17_440 * NS_PER_DAY  # 2017-10-01


def _pcap(ts_ns: Any, packet: bytes = SYN, *, size: int | None = None) -> bytes:
    """A nanosecond pcap (Ethernet) with one ``packet`` per timestamp."""
    out = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)]
    length = len(packet) if size is None else size
    for t in np.asarray(ts_ns, np.int64).tolist():
        out.append(struct.pack("<IIII", t // 10**9, t % 10**9, length, length))
        out.append(packet)
    return b"".join(out)


def _inputs(folder: Path, count: int, packets: int = 1000) -> list[Path]:
    """``count`` small captures of different days (so different content)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"in{i}.pcap"
        path.write_bytes(_pcap(DAY0 + i * NS_PER_DAY + np.arange(packets) * 10**6))
        paths.append(path)
    return paths


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"TEITEN_CONFIG": ""}, catch_exceptions=False)


def _count(settings: Settings, view: str = "packets") -> int:
    return int(run_query(settings, f"SELECT count(*) AS n FROM {view}").column("n")[0].as_py())


# --- item 5: expansion and junk ---------------------------------------------


def test_zstd_bomb_is_stopped_and_what_was_read_is_kept(settings: Settings, tmp_path: Path) -> None:
    t0 = 1_500_000_000 * 10**9
    content = _pcap(np.full(400_000, t0))  # 28 MB of identical SYN records
    bomb = tmp_path / "bomb.pcap.zst"
    bomb.write_bytes(zstandard.ZstdCompressor(level=3).compress(content))
    assert len(content) > 2000 * bomb.stat().st_size  # far past the default 1000×
    result = ingest([bomb], settings.replace(chunk_mb=1))
    r = result.inputs[0]
    assert r.status == "stopped" and "max_expansion" in r.message and "\n" not in r.message
    assert 0 < r.packets < 400_000  # stopped after the first chunk, not at the end
    assert _count(settings) == r.packets  # the part read is committed and visible
    with Lake(settings.data_dir) as lake:
        (done,) = lake.catalog.inputs()
    assert done.status == "done" and done.message == f"stopped: {r.message}"
    # with a limit above the ratio the same bytes are read whole
    other = tmp_path / "other"
    whole = ingest([bomb], settings.replace(data=str(other), max_expansion=100_000))
    assert whole.inputs[0].status == "ingested" and whole.packets == 400_000


def test_junk_pcap_is_stopped_as_malformed(settings: Settings, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    n = 3 * JUNK_MIN_RECORDS
    junk = rng.integers(0, 256, size=(n, 40), dtype=np.uint8)
    junk[:, 12:14] = 0x12  # no IPv4/IPv6 ethertype: every record is damage
    header = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)
    records = np.zeros((n, 56), np.uint8)
    records[:, :16] = np.frombuffer(struct.pack("<IIII", 1_500_000_000, 0, 40, 40), np.uint8)
    records[:, 16:] = junk
    path = tmp_path / "junk.pcap"
    path.write_bytes(header + records.tobytes())
    result = ingest([path], settings.replace(chunk_mb=1))
    r = result.inputs[0]
    assert r.status == "stopped" and "malformed" in r.message
    assert JUNK_MIN_RECORDS <= r.records < n
    assert sum(r.malformed.values()) == r.packets
    out = run("ingest", str(path), "--data", str(tmp_path / "cli"), "--sensor-net", "10.0.0.0/8")
    assert out.exit_code == 1
    assert "STOPPED" in out.output and "1 input(s) failed or stopped early" in out.output


def test_a_real_capture_is_not_junk(settings: Settings, smoke: SimulationResult) -> None:
    result = ingest(smoke.pcaps, settings.replace(chunk_mb=1))
    assert {r.status for r in result.inputs} == {"ingested"}


# --- item 6: random timestamps ----------------------------------------------


def test_random_timestamps_give_few_files_and_a_quarantine(
    settings: Settings, tmp_path: Path
) -> None:
    rng = np.random.default_rng(11)
    now = time.time_ns()
    ts = np.concatenate(
        [
            rng.integers(0, EARLIEST_NS, 5_000),  # before 1990
            rng.integers(now + 2 * NS_PER_DAY, (1 << 32) * 10**9, 5_000),  # the future
            rng.integers(EARLIEST_NS, now, 10_000),  # plausible, over some 13,000 days
        ]
    )
    rng.shuffle(ts)
    path = tmp_path / "random.pcap"
    path.write_bytes(_pcap(ts))
    r = ingest([path], settings).inputs[0]
    assert r.status == "ingested" and r.packets == 20_000
    with Lake(settings.data_dir) as lake:
        packets = lake.files("packets")
        quarantine = lake.files("packets_quarantine")
    assert len(packets) == int(settings.max_days_per_input) and len(quarantine) == 1
    stored = _count(settings)
    assert stored + r.quarantined == 20_000 and stored >= int(settings.max_days_per_input)
    q = pq.read_table(quarantine[0], partitioning=None)
    assert q.num_rows == r.quarantined >= 10_000  # at least every implausible one
    assert _count(settings, "quarantine") == r.quarantined  # for inspection, by SQL
    # the analysis views read only the day partitions
    dates = run_query(settings, "SELECT min(ts) AS a, max(ts) AS b FROM packets_raw")
    assert dates.column("a")[0].as_py() >= EARLIEST_NS and dates.column("b")[0].as_py() < now
    assert run("ports", "--data", str(settings.data_dir)).exit_code == 0
    out = run("ingest", str(path), "--data", str(tmp_path / "cli"), "--sensor-net", "10.0.0.0/8")
    assert out.exit_code == 0 and f"{r.quarantined:,} quarantined" in out.output


def test_a_long_capture_within_the_budget_has_one_file_per_day(
    settings: Settings, tmp_path: Path
) -> None:
    day0 = 17_440 * NS_PER_DAY
    ts = day0 + np.repeat(np.arange(10), 50) * NS_PER_DAY
    np.random.default_rng(1).shuffle(ts)  # interleaved days stay one file each
    path = tmp_path / "ten-days.pcap"
    path.write_bytes(_pcap(ts))
    r = ingest([path], settings.replace(chunk_mb=1, row_group_rows=64)).inputs[0]
    assert r.quarantined == 0 and r.packets == 500
    with Lake(settings.data_dir) as lake:
        assert len(lake.files("packets")) == 10


# --- item 9: damaged mmdb during ingest ---------------------------------------


@pytest.mark.skipif(not BAD_MMDB.is_file(), reason="../shared/corpus is absent")
def test_ingest_refuses_a_damaged_mmdb_before_reading(
    settings: Settings, tmp_path: Path, smoke: SimulationResult
) -> None:
    data = tmp_path / "store-mmdb"
    out = CliRunner().invoke(
        cli,
        ["ingest", str(smoke.pcaps[0]), "--data", str(data), "--sensor-net", "10.0.0.0/8"],
        env={"TEITEN_CONFIG": "", "TEITEN_COUNTRY_SOURCE": f"mmdb:{BAD_MMDB}"},
        catch_exceptions=False,
    )
    assert out.exit_code == 1
    assert out.output.count("\n") == 1 and "damaged MaxMind DB file" in out.output
    assert not data.exists()  # refused before the data folder was touched


def test_damage_met_during_ingest_stops_the_run_keeping_committed_inputs(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from teiten.enrich.mmdb import MmdbCountrySource

    inputs = _inputs(tmp_path / "in", 3)
    s = settings.replace(country_source=f"mmdb:{GOOD_MMDB}")
    first = ingest(inputs[:1], s)
    assert first.inputs[0].status == "ingested"

    def damaged(self: MmdbCountrySource, addresses: list[str]) -> list[str | None]:
        raise EnrichmentError(f"{self.path}: damaged MaxMind DB file (search tree is corrupt)")

    monkeypatch.setattr(MmdbCountrySource, "lookup", damaged)
    result = ingest(inputs, s)
    assert result.error.endswith("damaged MaxMind DB file (search tree is corrupt)")
    assert [r.status for r in result.inputs] == ["duplicate", "failed"]  # the run stopped
    assert _count(settings) == first.packets
    monkeypatch.undo()
    again = ingest(inputs, s)
    assert [r.status for r in again.inputs] == ["duplicate", "ingested", "ingested"]


# --- item 10: disk full ------------------------------------------------------


def _full_disk(monkeypatch: pytest.MonkeyPatch, after: int) -> None:
    real = pq.ParquetWriter.write_table
    state = {"n": 0}

    def write_table(self: pq.ParquetWriter, *a: Any, **k: Any) -> None:
        state["n"] += 1
        if state["n"] > after:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, *a, **k)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", write_table)


def test_disk_full_stops_the_run_and_the_store_stays_valid(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pcaps = _inputs(tmp_path / "in", 3)
    first = ingest(pcaps[:1], settings).inputs[0]
    _full_disk(monkeypatch, after=0)
    result = ingest(pcaps, settings)
    assert result.error.startswith("disk full while writing") and "\n" not in result.error
    assert [r.status for r in result.inputs] == ["duplicate", "failed"]  # third not tried
    monkeypatch.undo()
    with Lake(settings.data_dir) as lake:  # a fresh reader
        assert [r.status for r in lake.catalog.inputs()] == ["done", "failed"]
        assert not (Path(settings.data_dir) / ".staging").exists() or not any(
            (Path(settings.data_dir) / ".staging").iterdir()
        )
    assert _count(settings) == first.packets
    again = ingest(pcaps, settings)  # once there is space, the rest goes in
    assert [r.status for r in again.inputs] == ["duplicate", "ingested", "ingested"]


def test_disk_full_at_the_catalog_commit(
    settings: Settings, smoke: SimulationResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    def commit(self: Catalog, *a: Any, **k: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Catalog, "commit", commit)
    result = ingest(smoke.pcaps, settings)
    assert result.error.startswith("disk full") and result.inputs[0].status == "failed"
    monkeypatch.undo()
    assert _count(settings) == 0
    assert ingest(smoke.pcaps, settings).inputs[0].status == "ingested"


def test_disk_full_in_the_cli_is_one_line_and_exit_1(
    tmp_path: Path, smoke: SimulationResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    _full_disk(monkeypatch, after=0)
    out = run("ingest", str(smoke.pcaps[0]), "--data", str(tmp_path / "d"), "--sensor-net", "::/0")
    assert out.exit_code == 1
    assert out.output.splitlines()[-1].startswith("Error: disk full while writing")
    assert "internal error" not in out.output and "Traceback" not in out.output


# --- item 11: one writer at a time -------------------------------------------


HOLDER = """
import sys
from teiten.store.lake import Lake
lake = Lake(sys.argv[1], create=True)
lake.lock()
print("locked", flush=True)
sys.stdin.read()
lake.close()
"""


def test_second_ingest_is_refused_at_once_naming_the_holder_or_waits(
    settings: Settings, smoke: SimulationResult
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(settings.data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(StoreError, match=rf"another teiten process \(pid {holder.pid}, "):
            ingest(smoke.pcaps, settings)
        out = run("ingest", str(smoke.pcaps[0]), "--data", str(settings.data_dir), "--wait=0.3")
        assert out.exit_code == 1 and "after waiting 0.3s" in out.output
        assert out.output.count("\n") == 1
        done: dict[str, Any] = {}
        waiting = threading.Thread(
            target=lambda: done.update(r=ingest(smoke.pcaps, settings.replace(lock_wait="inf")))
        )
        waiting.start()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()  # the holder finishes and releases the lock
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    waiting.join()
    assert done["r"].inputs[0].status == "ingested"


def test_wait_option_takes_seconds_or_nothing(tmp_path: Path, smoke: SimulationResult) -> None:
    data = str(tmp_path / "d")
    out = run("ingest", str(smoke.pcaps[0]), "--data", data, "--wait")
    assert out.exit_code == 0, out.output
    out = run("ingest", "--wait", str(smoke.pcaps[0]), "--data", data)
    assert out.exit_code != 0 and "--wait=SECONDS" in out.output


# --- item 16: --data names a file ----------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["ingest", "x.pcap"],
        ["ports"],
        ["query", "SELECT 1"],
        ["trend", "23/tcp"],
        ["payloads"],
        ["indicators"],
        ["alerts"],
        ["detect"],
        ["enrich"],
        ["report"],
    ],
    ids=lambda a: a[0],
)
def test_data_naming_a_file_is_one_line(tmp_path: Path, args: list[str]) -> None:
    f = tmp_path / "a-file"
    f.write_text("not a folder")
    (tmp_path / "x.pcap").write_bytes(_pcap([1_500_000_000 * 10**9]))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        out = run(*args, "--data", str(f))
    finally:
        os.chdir(cwd)
    assert out.exit_code == 1
    assert out.output == f"Error: {f} is a file, not a data folder (pass --data DIR)\n"


# --- items 17 and 21: nothing silent -------------------------------------------


def test_empty_folder_empty_capture_and_no_match_warn(settings: Settings, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    zero = tmp_path / "zero.pcap"
    zero.write_bytes(b"")
    headers_only = tmp_path / "header.pcap.gz"
    import gzip

    headers_only.write_bytes(gzip.compress(_pcap([])))
    result = ingest([empty, zero, headers_only, str(tmp_path / "none-*.pcap")], settings)
    assert result.warnings == [
        f"{empty}: no files in this folder",
        f"{tmp_path / 'none-*.pcap'}: no files in this pattern",
    ]
    assert [r.warnings for r in result.inputs] == [["no records (an empty capture)"]] * 2
    assert result.warning_count == 4 and not result.failed and not result.error
    out = run("ingest", str(empty), str(zero), "--data", str(tmp_path / "cli"))
    assert out.exit_code == 0  # warnings do not change the exit status
    lines = out.output.splitlines()
    assert lines[0] == f"warning: {empty}: no files in this folder"
    assert lines[1].startswith("warning: no sensor networks given")
    assert f"{zero}: warning: no records (an empty capture)" in lines
    assert "warnings: 3" in lines


def test_no_sensor_networks_warns_once(settings: Settings, smoke: SimulationResult) -> None:
    result = ingest(smoke.pcaps, settings.replace(data=str(Path(settings.data_dir) / "x")))
    assert not any("sensor networks" in w for w in result.warnings)
    bare = Settings({**settings.values, "sensor_networks": ()}, settings.origin)
    result = ingest([*smoke.pcaps, *smoke.pcaps], bare)
    assert [w for w in result.warnings if "sensor networks" in w] == [
        "no sensor networks given (--sensor-net or setting sensor_networks):"
        " the sensor's own replies will count as inbound"
    ]


def test_missing_path_is_still_an_error(tmp_path: Path) -> None:
    out = run("ingest", str(tmp_path / "nope.pcap"), "--data", str(tmp_path / "s"))
    assert out.exit_code == 1 and "no such file or directory" in out.output


BAD_FILES = sorted(BAD_MMDB.parent.parent.rglob("*.mmdb")) if BAD_MMDB.is_file() else []


@pytest.mark.skipif(not BAD_FILES, reason="../shared/corpus is absent")
@pytest.mark.parametrize("mmdb", BAD_FILES, ids=lambda p: p.name)
def test_every_broken_mmdb_is_one_line_in_ingest_and_enrich(tmp_path: Path, mmdb: Path) -> None:
    capture = _inputs(tmp_path / "in", 1, packets=20)[0]
    data = str(tmp_path / "d")
    assert run("ingest", str(capture), "--data", data, "--sensor-net", "::/0").exit_code == 0
    for args in (
        ["ingest", str(capture), "--data", data, "--sensor-net", "::/0"],
        ["enrich", "--data", data, "--force"],
    ):
        out = CliRunner().invoke(
            cli,
            args,
            env={"TEITEN_CONFIG": "", "TEITEN_COUNTRY_SOURCE": f"mmdb:{mmdb}"},
            catch_exceptions=False,
        )
        assert "internal error" not in out.output and "Traceback" not in out.output
        if out.exit_code:
            assert out.exit_code == 1 and out.output.count("\n") == 1, out.output
            assert "MaxMind DB file" in out.output
