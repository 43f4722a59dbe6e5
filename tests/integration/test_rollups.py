"""The rollups written at ingest answer exactly as the packets do.

Every statement that reads the rollups is built twice over the simulator's
store — once reading the rollups, once forced onto the packets — and must give
the same rows: in Asia/Tokyo and UTC, by day and by hour, across a DST change
(America/New_York), and in Asia/Kolkata (a half-hour offset), where the
statements read the packets. Then again after a re-ingest, after ``enrich``
rewrote the countries and ASNs, and with the rollup files of some inputs
unlisted, as in a store written before the rollups existed.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from teiten.analysis.window import Window
from teiten.app.engine import scope
from teiten.app.ingest import ingest
from teiten.config import Settings, load_settings
from teiten.engine import Engine, connect
from teiten.enrich.asn import AsnEnricher
from teiten.enrich.country import CountryEnricher, country_code
from teiten.enrich.recompute import rewrite_enrichment
from teiten.enrich.sources import open_asn_source, open_country_source
from teiten.fingerprint import registry
from teiten.simulate import SimulationResult
from teiten.sql import traffic
from teiten.sql.dialect import Dialect
from teiten.store.lake import Lake

DATA = Path(__file__).parent.parent / "data"
HOME = country_code("JP")
FPS = [(f.bit, f.name) for f in registry.registered()]
PORTS = [("tcp", 23), ("tcp", 2323), ("tcp", 52869), ("udp", 53), ("tcp", 80)]
FIRST, LAST = dt.date(2017, 10, 1), dt.date(2017, 12, 18)

Build = Callable[[Dialect], str]


def _store(root: Path, npa_small: SimulationResult) -> Settings:
    settings = load_settings(
        env={},
        overrides={
            "data": str(root / "store"),
            "sensor_networks": ["203.0.113.0/24"],
            "sensor": "rollups",
        },
    )
    ingest([*npa_small.pcaps, DATA / "eth_ipv6.pcap"], settings)
    return settings


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory, npa_small: SimulationResult) -> Settings:
    return _store(tmp_path_factory.mktemp("rollups"), npa_small)


@pytest.fixture
def engine(stored: Settings) -> Iterator[Engine]:
    with Lake(stored.data_dir) as lake:
        e = connect("duckdb", lake, scope(stored))
        try:
            yield e
        finally:
            e.close()


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    def norm(v: Any) -> Any:
        if isinstance(v, float):
            return round(v, 12) if not math.isnan(v) else "nan"
        return v

    rows = [tuple(norm(v) for v in r.values()) for r in table.to_pylist()]
    return sorted(rows, key=repr)


def _both(engine: Engine, build: Build, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Any, Any]:
    """The statement's SQL and rows as built, and the rows forced onto the packets."""
    sql = build(engine.dialect)
    rolled = _rows(engine.query(sql))
    with monkeypatch.context() as m:
        m.setattr(traffic, "USE_ROLLUPS", False)
        raw_sql = build(engine.dialect)
        assert "_hours_raw" not in raw_sql
        raw = _rows(engine.query(raw_sql))
    return sql, rolled, raw


def _window(tz: str, by: str) -> Window:
    return Window.from_dates(FIRST, LAST, tz, by)


def _window_statements(w: Window) -> dict[str, Build]:
    out: dict[str, Build] = {
        "active_addresses": lambda d: traffic.active_addresses(d, w),
        "top_ports": lambda d: traffic.top_ports(d, w, home=HOME, top=50),
        "busy_port_days": lambda d: traffic.busy_port_days(d, w, home=HOME, min_sources=3),
    }
    for split in traffic.SPLITS:
        out[f"port_series {split}"] = lambda d, split=split: traffic.port_series(
            d, w, PORTS, split=split, home=HOME, fingerprints=FPS, with_sources24=True
        )
    return out


def _slices(w: Window) -> list[traffic.Slice]:
    start = w.start_ns + 30 * 86_400_000_000_000  # a day boundary inside the window
    end = start + 20 * 86_400_000_000_000
    return [
        traffic.Slice(proto, port, seg, start, end, HOME)
        for proto, port in (("tcp", 23), ("tcp", 52869), ("udp", 53))
        for seg in ("all", "domestic", "foreign", "unknown")
    ]


def _slice_statements(s: traffic.Slice) -> dict[str, Build]:
    mirai = next(b for b, n in FPS if n == "mirai")
    return {
        "slice_sources_and_share": lambda d: traffic.slice_sources_and_share(d, s, mirai),
        "slice_busiest_sources": lambda d: traffic.slice_busiest_sources(d, s, limit=100000),
        "slice_fingerprint_shares": lambda d: traffic.slice_fingerprint_shares(d, s, FPS),
        "slice_sources": lambda d: traffic.slice_sources(d, s),
        "slice_source_keys": lambda d: traffic.slice_source_keys(d, s, limit=10**9),
    }


def _check_all(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    for tz in ("Asia/Tokyo", "UTC", "America/New_York"):
        for by in ("day", "hour"):
            w = _window(tz, by)
            assert traffic.hourly(w)
            for name, build in _window_statements(w).items():
                sql, rolled, raw = _both(engine, build, monkeypatch)
                assert "_hours_raw" in sql, name
                assert rolled, f"{name} in {tz} by {by}: no rows"
                assert rolled == raw, f"{name} in {tz} by {by}"
    for s in _slices(_window("Asia/Tokyo", "day")):
        for name, build in _slice_statements(s).items():
            sql, rolled, raw = _both(engine, build, monkeypatch)
            assert "port_hours_raw" in sql
            assert rolled == raw, f"{name} {s}"


def test_rollups_answer_as_the_packets(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    _check_all(engine, monkeypatch)


def test_slices_have_rows(engine: Engine) -> None:
    s = _slices(_window("Asia/Tokyo", "day"))[0]
    row = engine.query(traffic.slice_sources_and_share(engine.dialect, s, 0)).to_pylist()[0]
    assert row["n"] > 10 and 0.0 < row["share"] < 1.0


def test_half_hour_zone_reads_the_packets(engine: Engine) -> None:
    for by in ("day", "hour"):
        w = _window("Asia/Kolkata", by)
        assert not traffic.hourly(w)
        for name, build in _window_statements(w).items():
            assert "_hours_raw" not in build(engine.dialect), name
    s = _slices(_window("Asia/Kolkata", "day"))[0]
    assert "port_hours_raw" not in traffic.slice_busiest_sources(engine.dialect, s, limit=9)


def test_rollups_are_smaller_and_count_every_counted_packet(engine: Engine) -> None:
    packets = engine.query(
        "SELECT count(*) AS n FROM packets_raw WHERE NOT is_outbound"
        " AND proto IN (6, 17) AND decode_error IN (0, 6, 7)"
    ).to_pylist()[0]["n"]
    rolled = engine.query(
        "SELECT count(*) AS rows, sum(packets) AS n FROM port_hours_raw"
    ).to_pylist()[0]
    assert rolled["n"] == packets and rolled["rows"] < packets


def _copy(stored: Settings, root: Path) -> Settings:
    shutil.copytree(stored.data_dir, root / "store")
    return stored.replace(data=str(root / "store"))


def test_reingest_keeps_them_equal(
    stored: Settings, npa_small: SimulationResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _copy(stored, tmp_path)
    result = ingest([*npa_small.pcaps, DATA / "eth_ipv6.pcap"], settings)
    assert {r.status for r in result.inputs} == {"duplicate"}
    with Lake(settings.data_dir) as lake:
        assert lake.unrolled() == []
        e = connect("duckdb", lake, scope(settings))
        try:
            _check_all(e, monkeypatch)
        finally:
            e.close()


def test_enrich_rewrites_the_rollups_too(
    stored: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _copy(stored, tmp_path)
    enrich = DATA / "enrich"
    country = CountryEnricher(open_country_source(f"mmdb:{enrich / 'country.mmdb'}"))
    asn_source = open_asn_source(f"mmdb:{enrich / 'asn.mmdb'}")
    assert asn_source is not None
    with Lake(settings.data_dir) as lake:
        lake.lock()
        before = len(lake.files("port_hours"))
        rewrite_enrichment(lake, country, AsnEnricher(asn_source), text="test")
        assert len(lake.files("port_hours")) == before
    with Lake(settings.data_dir) as lake:
        e = connect("duckdb", lake, scope(settings))
        try:
            changed = e.query(
                "SELECT count(*) AS n FROM port_hours_raw WHERE src_asn <> 0"
            ).to_pylist()[0]["n"]
            assert changed > 0  # the rollups carry the new ASNs
            _check_all(e, monkeypatch)
        finally:
            e.close()


def test_a_store_without_rollups_still_answers(
    stored: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _copy(stored, tmp_path)
    catalog = sqlite3.connect(settings.data_dir / "catalog.sqlite")
    with catalog:  # as if every other input had been ingested before the rollups existed
        catalog.execute(
            "DELETE FROM files WHERE tbl IN ('port_hours', 'address_hours') AND input_id % 2 = 0"
        )
    catalog.close()
    with Lake(settings.data_dir) as lake:
        assert lake.unrolled()
        e = connect("duckdb", lake, scope(settings))
        try:
            _check_all(e, monkeypatch)
        finally:
            e.close()
