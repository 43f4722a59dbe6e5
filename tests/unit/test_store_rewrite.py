"""Rewriting a table's files in logical columns: row groups kept, values replaced, atomic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from teiten.decode.batch import empty_columns
from teiten.enrich.country import COUNTRIES, country_code
from teiten.store.lake import NS_PER_DAY, Lake
from teiten.store.rewrite import Columns, read_columns, rewrite_table
from teiten.store.writers import PacketWriter

DAY0 = 17440  # 2017-10-01
KEPT = ("ts", "src_ip4", "dst_ip4", "dst_port", "tcp_seq", "ip_id", "ip_len", "tcp_mss", "proto")


def _store(root: Path, days: int = 2, n: int = 300) -> Lake:
    rng = np.random.default_rng(7)
    lake = Lake(root, create=True)
    lake.lock()
    with lake.begin("x.pcap", 1, "h", "s1") as tx:
        assert tx.input_id is not None
        w = PacketWriter(lake, tx.input_id, "s1", row_group_rows=64)
        w.labels["src_as_org"] = ["", "Old Org"]
        for d in range(days):
            for start in range(0, n, 50):
                c = empty_columns(50)
                c["ts"] = ((DAY0 + d) * NS_PER_DAY + (start + np.arange(50)) * 10**6).astype(
                    np.int64
                )
                c["ip_version"][:] = 4
                c["src_ip4"] = rng.integers(1 << 24, 1 << 32, 50, dtype=np.uint32)
                c["dst_ip4"] = rng.integers(0, 1 << 32, 50, dtype=np.uint32)
                c["dst_port"] = rng.integers(0, 1 << 16, 50, dtype=np.uint16)
                c["tcp_seq"] = rng.integers(0, 1 << 32, 50, dtype=np.uint32)
                c["ip_id"] = rng.integers(0, 1 << 16, 50, dtype=np.uint16)
                c["ip_len"] = rng.integers(40, 1500, 50, dtype=np.uint16)
                c["tcp_mss"] = rng.integers(0, 1 << 16, 50, dtype=np.uint16)
                c["proto"][:] = 6
                c["src_cc"][:] = country_code("JP")
                c["src_as_org"][:] = 1
                w.write(c)
        w.close()
        tx.commit(records=n * days, packets=n * days, malformed={}, skipped={}, enrichment="a")
    return lake


def _row_groups(lake: Lake) -> list[list[int]]:
    out = []
    for path in lake.files("packets"):
        md = pq.ParquetFile(path).metadata
        out.append([md.row_group(i).num_rows for i in range(md.num_row_groups)])
    return out


def _read(lake: Lake, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    parts = list(read_columns(lake, "packets", names))
    return {k: np.concatenate([p[k] for p in parts]) for k in names}


def _by_octet(c: Columns) -> Columns:
    """Country US for even last octets, '' for odd; ASN = the last octet; org by parity."""
    even = (c["src_ip4"] & 1) == 0
    return {
        "src_cc": np.where(even, country_code("US"), 0),
        "src_asn": (c["src_ip4"] & 0xFF).astype(np.uint32),
        "src_as_org": np.where(even, 1, 2).astype(np.int32),
    }


LABELS = {"src_as_org": ["", "Even Org", "Odd Org"], "src_cc": list(COUNTRIES)}


def test_values_replaced_row_groups_and_other_columns_kept(tmp_path: Path) -> None:
    with _store(tmp_path) as lake:
        groups = _row_groups(lake)
        assert any(len(g) > 1 for g in groups)
        before = _read(lake, KEPT)
        old_paths = lake.files("packets")
        with lake.rewriting() as tx:
            done = rewrite_table(tx, "packets", _by_octet, reads=("src_ip4",), labels=LABELS)
            assert lake.files("packets") == old_paths  # nothing visible before the commit
            tx.commit_replacements(enrichment="b")
        assert done.files == 2 and done.rows == 600 and done.row_groups == sum(map(len, groups))
        assert _row_groups(lake) == groups
        after = _read(lake, (*KEPT, "src_cc", "src_asn"))
        for name in KEPT:
            assert np.array_equal(after[name], before[name]), name
        even = (after["src_ip4"] & 1) == 0
        assert np.array_equal(after["src_cc"], np.where(even, country_code("US"), 0))
        assert np.array_equal(after["src_asn"], after["src_ip4"] & 0xFF)
        org = pq.read_table(lake.files("packets")[0], columns=["src_as_org", "src_ip4"])
        names = org.column("src_as_org").to_pylist()
        parity = org.column("src_ip4").to_numpy() & 1
        assert names == ["Odd Org" if p else "Even Org" for p in parity]
        assert not any(p.exists() for p in old_paths)
        assert {r.enrichment for r in lake.catalog.inputs()} == {"b"}


def test_rewriting_twice_gives_the_same_files(tmp_path: Path) -> None:
    with _store(tmp_path) as lake:
        tables = []
        for _ in range(2):
            with lake.rewriting() as tx:
                rewrite_table(tx, "packets", _by_octet, reads=("src_ip4",), labels=LABELS)
                tx.commit_replacements()
            tables.append([pq.read_table(p, partitioning=None) for p in lake.files("packets")])
        assert [t.equals(u) for t, u in zip(*tables, strict=True)] == [True, True]
        on_disk = sorted(str(p) for p in (tmp_path / "packets").rglob("*.parquet"))
        assert on_disk == sorted(str(p) for p in lake.files("packets"))
        # the input id is still read from the renamed files
        assert all(p.name.startswith("in000001-") for p in lake.files("packets"))


def test_a_residual_and_its_keys_stay_consistent(tmp_path: Path) -> None:
    with _store(tmp_path, days=1) as lake:
        before = _read(lake, ("ip_id", "dst_port"))
        with lake.rewriting() as tx:

            def zero_seq(c: Columns) -> Columns:
                return {"tcp_seq": np.zeros_like(c["tcp_seq"])}

            rewrite_table(tx, "packets", zero_seq, reads=("tcp_seq",))
            tx.commit_replacements()
        after = _read(lake, ("tcp_seq", "ip_id", "dst_port"))
        assert not after["tcp_seq"].any()
        assert np.array_equal(after["ip_id"], before["ip_id"])  # re-derived from the new seq


def test_a_failed_rewrite_swaps_nothing(tmp_path: Path) -> None:
    with _store(tmp_path) as lake:
        paths = lake.files("packets")
        calls = 0

        def breaks(c: Columns) -> Columns:
            nonlocal calls
            calls += 1
            if calls > 3:
                raise RuntimeError("lookup failed")
            return _by_octet(c)

        with pytest.raises(RuntimeError), lake.rewriting() as tx:
            rewrite_table(tx, "packets", breaks, reads=("src_ip4",), labels=LABELS)
            tx.commit_replacements()
        assert lake.files("packets") == paths
        assert {int(x) for x in _read(lake, ("src_cc",))["src_cc"]} == {country_code("JP")}
        lake.unlock()
        lake.lock()
        assert sorted((tmp_path / "packets").rglob("*.parquet")) == sorted(paths)


def test_columns_that_cannot_be_replaced(tmp_path: Path) -> None:
    with _store(tmp_path, days=1) as lake, lake.rewriting() as tx:
        with pytest.raises(ValueError, match="sensor"):
            rewrite_table(tx, "packets", lambda c: {"sensor": c["src_ip4"]}, reads=("src_ip4",))
        with pytest.raises(ValueError, match="no column"):
            rewrite_table(tx, "packets", lambda c: {"nope": c["src_ip4"]}, reads=("src_ip4",))


def test_files_from_before_the_asn_columns_get_them(tmp_path: Path) -> None:
    with _store(tmp_path, days=1) as lake:
        [path] = lake.files("packets")
        old = pq.ParquetFile(path)
        parts = [
            old.read_row_group(i).drop_columns(["src_asn", "src_as_org"])
            for i in range(old.num_row_groups)
        ]
        groups = [t.num_rows for t in parts]
        with pq.ParquetWriter(path, parts[0].schema) as w:  # an older store's file
            for t in parts:
                w.write_table(t)
        with lake.rewriting() as tx:

            def cc_only(c: Columns) -> Columns:
                return {"src_cc": np.full(len(c["src_ip4"]), country_code("US"))}

            rewrite_table(tx, "packets", cc_only, reads=("src_ip4",))
            tx.commit_replacements()
        [new] = lake.files("packets")
        t = pq.read_table(new, columns=["src_asn", "src_as_org"])
        assert set(t.column("src_asn").to_pylist()) == {0}
        assert set(t.column("src_as_org").to_pylist()) == {""}
        md = pq.ParquetFile(new).metadata
        assert [md.row_group(i).num_rows for i in range(md.num_row_groups)] == groups
        assert {int(x) for x in _read(lake, ("src_cc",))["src_cc"]} == {country_code("US")}
