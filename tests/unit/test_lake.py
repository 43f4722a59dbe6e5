from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from teiten.decode.batch import empty_columns
from teiten.enrich.country import country_code
from teiten.errors import StoreError
from teiten.store.lake import NS_PER_DAY, Lake
from teiten.store.writers import PacketWriter

DAY0 = 17440  # 2017-10-01


def _columns(n: int, day: int, start: int = 0) -> dict[str, np.ndarray]:
    c = empty_columns(n)
    c["ts"] = (day * NS_PER_DAY + np.arange(start, start + n) * 1_000_000).astype(np.int64)
    c["ip_version"][:] = 4
    c["src_ip4"] = np.arange(n, dtype=np.uint32) + 0x01000000
    c["proto"][:] = 6
    c["dst_port"][:] = 23
    c["src_cc"][:] = country_code("JP")
    return c


def _ingest(lake: Lake, days: list[int], n: int = 100) -> int:
    with lake.begin("x.pcap", 1, f"hash{days}", "s1") as tx:
        assert tx.input_id is not None
        w = PacketWriter(lake, tx.input_id, "s1", row_group_rows=64)
        for d in days:
            for start in range(0, n, 40):
                w.write(_columns(min(40, n - start), d, start))
        w.close()
        tx.commit(
            records=n * len(days),
            packets=n * len(days),
            malformed={},
            skipped={},
            enrichment="test",
        )
    return tx.input_id


def test_partitions_by_day_and_commits(tmp_path: Path) -> None:
    with Lake(tmp_path, create=True) as lake:
        lake.lock()
        _ingest(lake, [DAY0, DAY0 + 1])
        files = lake.files()
    assert sorted(p.parent.name for p in files) == ["date=2017-10-01", "date=2017-10-02"]
    assert {p.parent.parent.name for p in files} == {"sensor=s1"}
    t = pq.read_table(files[0], partitioning=None)
    assert t.num_rows == 100
    assert (
        pq.ParquetFile(files[0]).metadata.num_row_groups == 2
    )  # 80 rows once 64 are pending, then 20


def test_batch_spanning_midnight_is_split(tmp_path: Path) -> None:
    with Lake(tmp_path, create=True) as lake:
        lake.lock()
        input_id = lake.catalog.begin("x", 1, "h", "s1")
        w = PacketWriter(lake, input_id, "s1")
        c = _columns(10, DAY0)
        c["ts"][5:] += NS_PER_DAY
        w.write(c)
        staged = w.close()
    assert sorted(rows for _, _, rows in staged) == [5, 5]


def test_uncommitted_files_are_invisible_and_cleared(tmp_path: Path) -> None:
    with Lake(tmp_path, create=True) as lake:
        lake.lock()
        _ingest(lake, [DAY0])
        # a crashed ingest: files published into the lake but never committed
        # (the two-step form pipeline.py used before Transaction.commit)
        input_id = lake.catalog.begin("y", 1, "h2", "s1")
        w = PacketWriter(lake, input_id, "s1")
        w.write(_columns(10, DAY0 + 5))
        lake.publish(input_id, w.close())
        assert len(lake.files()) == 1
        orphan = tmp_path / "packets/sensor=s1/date=2017-10-06"
        assert any(orphan.iterdir())
        lake.unlock()
        lake.lock()  # the next writer clears what the crash left
        assert not any(orphan.iterdir())
        assert [r.status for r in lake.catalog.inputs()] == ["done", "failed"]


def test_second_writer_is_refused(tmp_path: Path) -> None:
    with Lake(tmp_path, create=True) as a, Lake(tmp_path) as b:
        a.lock()
        with pytest.raises(StoreError, match="another teiten process"):
            b.lock()


def test_missing_data_dir(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no data directory"):
        Lake(tmp_path / "nope")


def test_damaged_catalog(tmp_path: Path) -> None:
    (tmp_path / "catalog.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="damaged"):
        Lake(tmp_path)


def test_implausible_and_over_budget_days_go_to_one_quarantine_file(tmp_path: Path) -> None:
    from teiten.store.budget import EARLIEST_NS, DayBudget

    with Lake(tmp_path, create=True) as lake:
        lake.lock()
        input_id = lake.catalog.begin("x", 1, "h", "s1")
        w = PacketWriter(lake, input_id, "s1", budget=DayBudget(2))
        c = _columns(10, DAY0)
        c["ts"][:4] += np.arange(4) * NS_PER_DAY  # days 0, 1, 2, 3: two over the budget
        c["ts"][4] = EARLIEST_NS - 1  # 1989
        c["ts"][5] = (1 << 62) + 7  # far future
        w.write(c)
        w.write(_columns(3, DAY0 + 9))  # a later batch: over the budget too
        staged = w.close()
        assert w.quarantined == 2 + 2 + 3
    tables = sorted((t, rel.split("/")[-2], rows) for t, rel, rows in staged)
    assert tables == [
        ("packets", "date=2017-10-01", 5),
        ("packets", "date=2017-10-02", 1),
        ("packets_quarantine", "sensor=s1", 7),
    ]


def test_unlisted_quarantine_files_are_cleared(tmp_path: Path) -> None:
    with Lake(tmp_path, create=True) as lake:
        lake.lock()
        stray = tmp_path / "quarantine/packets/sensor=s1/in000009-000.parquet"
        stray.parent.mkdir(parents=True)
        stray.write_bytes(b"PAR1")
        lake.unlock()
        lake.lock()
        assert not stray.exists()


def test_data_folder_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    for create in (False, True):
        with pytest.raises(StoreError, match="is a file, not a data folder"):
            Lake(f, create=create)


def test_lock_holder_is_named_and_cleared(tmp_path: Path) -> None:
    import os

    with Lake(tmp_path, create=True) as a, Lake(tmp_path) as b:
        a.lock()
        assert b.holder().startswith(f"pid {os.getpid()}, ")
        with pytest.raises(StoreError, match=rf"\(pid {os.getpid()}, .*after waiting 0.2s"):
            b.lock(wait=0.2)
        a.unlock()
        assert b.holder() == ""
        b.lock()


@pytest.mark.parametrize("threads", [1, 2])
def test_each_row_group_is_sorted_by_source_then_shape_in_arrival_order(
    tmp_path: Path, threads: int
) -> None:
    rng = np.random.default_rng(7)
    batches = []
    for start in range(0, 200, 50):  # four batches: row groups of 100 rows (two batches)
        c = _columns(50, DAY0, start)
        c["src_ip4"] = rng.integers(1, 4, 50).astype(np.uint32)
        c["proto"] = rng.choice(np.array([1, 6, 17], np.uint8), 50)
        batches.append(c)
    with Lake(tmp_path, create=True) as lake:
        lake.lock()
        with lake.begin("x.pcap", 1, "h", "s1") as tx:
            assert tx.input_id is not None
            w = PacketWriter(lake, tx.input_id, "s1", row_group_rows=100, threads=threads)
            for c in batches:
                w.write(c)
            assert [(table, rows) for table, _, rows in w.close()] == [("packets", 200)]
            tx.commit(records=200, packets=200, malformed={}, skipped={}, enrichment="test")
        files = lake.files()
    stored = pq.ParquetFile(files[0])
    assert stored.metadata.num_row_groups == 2
    for g, pair in enumerate((batches[:2], batches[2:])):
        t = stored.read_row_group(g)
        src, shape, ts = (t.column(n).to_numpy() for n in ("src_ip4", "shape", "ts_us"))
        arrival = np.concatenate([c["ts"] for c in pair]) // 1000
        sources = np.concatenate([c["src_ip4"] for c in pair])
        protos = np.concatenate([c["proto"] for c in pair])
        want = np.lexsort((arrival, protos, sources))  # proto is the top field of shape
        assert (ts == arrival[want]).all()
        assert (np.diff(src.astype(np.int64)) >= 0).all()
        assert len(np.unique(shape)) == 3
