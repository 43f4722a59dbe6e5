"""The source index (``source_ports``, teiten.store.sourceports) against the packets: a
source's profile read from it equals the same numbers counted from the packets, before
and after packing, for inputs ingested before it existed (the view reads their packets,
then ``teiten rollup`` builds their files) and after ``teiten enrich``."""

from __future__ import annotations

import ipaddress
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from teiten.app.engine import open_engine
from teiten.app.enrich import recompute_enrichment
from teiten.app.ingest import ingest
from teiten.app.sketches import pack_store, rebuild_sketches
from teiten.app.sources import source_profile
from teiten.config import Settings, load_settings
from teiten.simulate import SimulationResult
from teiten.sql.expressions import port_rule, proto_text
from teiten.sql.sources import Source
from teiten.store.lake import Lake
from teiten.store.paths import month_of

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, smoke: SimulationResult) -> Settings:
    root = tmp_path_factory.mktemp("source-ports")
    settings = load_settings(
        env={},
        overrides={
            "data": str(root / "store"),
            "sensor_networks": ["203.0.113.0/24", "2001:db8:2::/64"],
            "pack_files": 0,
        },
    )
    ingest([*smoke.pcaps, DATA / "eth_ipv6.pcap", DATA / "mixed.pcapng"], settings)
    return settings


def _copy(settings: Settings, tmp_path: Path) -> Settings:
    shutil.copytree(settings.data_dir, tmp_path / "store")
    return settings.replace(data=str(tmp_path / "store"))


def _rows(settings: Settings, sql: str) -> list[dict[str, Any]]:
    with open_engine(settings) as engine:
        rows: list[dict[str, Any]] = engine.query(sql).to_pylist()
    return rows


def _sources(settings: Settings) -> list[str]:
    """The busiest sources, some with ICMP or unported packets, and IPv6 ones."""
    picked = _rows(
        settings,
        """
SELECT src FROM (
    (SELECT CAST(src AS STRING) AS src FROM packets WHERE direction = 'in'
     GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 4)
    UNION ALL
    (SELECT CAST(src AS STRING) FROM packets WHERE direction = 'in' AND proto_number NOT IN (6, 17)
     GROUP BY 1 ORDER BY 1 LIMIT 3)
    UNION ALL
    (SELECT CAST(src AS STRING) FROM packets WHERE direction = 'in' AND ip_version = 6
     GROUP BY 1 ORDER BY 1 LIMIT 3)
    UNION ALL
    (SELECT CAST(src AS STRING) FROM packets WHERE direction = 'in'
     GROUP BY 1 HAVING count(*) = 1 ORDER BY 1 LIMIT 2)
) AS s""",
    )
    found = list(dict.fromkeys(str(r["src"]) for r in picked))
    assert len(found) >= 8 and any(":" in s for s in found)
    return found


def _where(src: str) -> str:
    return Source.of(ipaddress.ip_address(src)).where()


def _direct(settings: Settings, src: str) -> dict[str, Any]:
    """A source's packets, first and last second, ports and Mirai packets, from the packets."""
    (head,) = _rows(
        settings,
        f"""
SELECT count(*) AS packets, min(ts) AS first, max(ts) AS last,
       count(*) FILTER (WHERE list_contains(fingerprints, 'mirai')) AS mirai
FROM packets WHERE src = '{src}' AND direction = 'in'""",
    )
    ports = _rows(  # the ports the port rule counts, as the source page lists them
        settings,
        f"""
SELECT concat(CAST(dst_port AS STRING), '/', {proto_text()}) AS port, count(*) AS packets
FROM packets_raw WHERE {port_rule()} AND NOT is_outbound AND {_where(src)}
GROUP BY 1""",
    )
    return {"head": head, "ports": {r["port"]: r["packets"] for r in ports}}


def _check(settings: Settings, sources: list[str]) -> None:
    for src in sources:
        profile = source_profile(settings, src)
        direct = _direct(settings, src)
        assert profile is not None, src
        assert profile["packets"] == direct["head"]["packets"] > 0, src
        got = {p["port"]: p["packets"] for p in profile["ports"]}
        assert got == direct["ports"], src
        assert profile["port_count"] == len(direct["ports"])
        assert profile["fingerprints"].get("mirai", 0) == direct["head"]["mirai"]
        if not profile["sessions"]["count"] and not profile["logins"]["count"]:
            # the packets' first and last instants, to the second (UTC in the profile)
            first = direct["head"]["first"].replace(microsecond=0).isoformat()
            last = direct["head"]["last"].replace(microsecond=0).isoformat()
            assert (profile["first_seen"][:19], profile["last_seen"][:19]) == (first, last)


def _profiles(settings: Settings, sources: list[str]) -> list[dict[str, Any] | None]:
    return [source_profile(settings, s) for s in sources]


def test_a_profile_from_the_index_equals_the_packets(store: Settings) -> None:
    with Lake(store.data_dir) as lake:
        assert lake.unsourced() == []
    _check(store, _sources(store))


def test_older_inputs_are_read_from_their_packets_until_rollup_builds_their_index(
    store: Settings, tmp_path: Path
) -> None:
    sources = _sources(store)
    before = _profiles(store, sources)
    settings = _copy(store, tmp_path)
    catalog = sqlite3.connect(settings.data_dir / "catalog.sqlite")
    with catalog:  # as if every input had been ingested before the table existed
        catalog.execute("DELETE FROM files WHERE tbl = 'source_ports'")
    catalog.close()
    shutil.rmtree(settings.data_dir / "source_ports")
    with Lake(settings.data_dir) as lake:
        assert len(lake.unsourced()) == 3
    assert _profiles(settings, sources) == before  # the view rolls their packets up
    result = rebuild_sketches(settings)
    assert result.sourced == 3
    with Lake(settings.data_dir) as lake:
        assert lake.unsourced() == []
        rebuilt = sum(pq.ParquetFile(p).metadata.num_rows for p in lake.files("source_ports"))
    with Lake(store.data_dir) as lake:
        ingested = sum(pq.ParquetFile(p).metadata.num_rows for p in lake.files("source_ports"))
    assert rebuilt == ingested
    assert _profiles(settings, sources) == before


def test_packing_merges_a_month_in_source_order(store: Settings, tmp_path: Path) -> None:
    sources = _sources(store)
    before = _profiles(store, sources)
    settings = _copy(store, tmp_path)
    packed = pack_store(settings)
    assert packed.packs > 0
    with Lake(settings.data_dir) as lake:
        packs = lake.catalog.packs("source_ports")
        assert packs  # the month with two inputs' files (the others have one file each)
        for path, _, inputs in packs:
            assert len(inputs) == 2
            month = month_of(path)
            rest = [f for f in lake.catalog.files("source_ports") if f != path]
            assert month is not None and month not in [month_of(f) for f in rest]
            t = pq.read_table(lake.root / path, columns=["ip_version", "src_ip4"])
            v, a = t.column("ip_version").to_numpy(), t.column("src_ip4").to_numpy()
            key = v.astype("int64") * (1 << 33) + a.astype("int64")
            assert (key[1:] >= key[:-1]).all()
        assert lake.unsourced() == []
    assert _profiles(settings, sources) == before


def test_enrich_rewrites_the_index_packed_or_not(store: Settings, tmp_path: Path) -> None:
    sources = _sources(store)
    for pack_first in (False, True):
        settings = _copy(store, tmp_path / str(pack_first)).replace(
            country_source=f"mmdb:{DATA / 'enrich' / 'country.mmdb'}",
            asn_source=f"mmdb:{DATA / 'enrich' / 'asn.mmdb'}",
        )
        if pack_first:
            pack_store(settings)
        recompute_enrichment(settings, force=True)
        with Lake(settings.data_dir) as lake:
            assert lake.unsourced() == []
            assert bool(lake.catalog.packs("source_ports")) == pack_first
        for src in sources:
            profile = source_profile(settings, src)
            assert profile is not None
            (row,) = _rows(
                settings,
                f"SELECT max(src_cc) AS cc, max(src_asn) AS asn, max(src_as_org) AS org"
                f" FROM packets WHERE src = '{src}' AND direction = 'in'",
            )
            assert (profile["country"], profile["asn"], profile["as_org"]) == (
                row["cc"], row["asn"], row["org"],
            ), src  # fmt: skip
