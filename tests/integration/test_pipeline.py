"""Ingest end to end: stored columns read back exactly, idempotence, interruption, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from teiten import pipeline
from teiten.app.engine import open_engine, run_query
from teiten.app.ingest import ingest
from teiten.capture import open_source
from teiten.config import Settings
from teiten.decode.decoder import decode
from teiten.enrich.country import COUNTRIES, CountryEnricher, IptoccSource
from teiten.enrich.network import NetworkSet
from teiten.fingerprint import registry
from teiten.schema import DECODED
from teiten.simulate import SimulationResult
from teiten.store.lake import Lake

DATA = Path(__file__).parent.parent / "data"
SENSOR_NET = "203.0.113.0/24"  # as in conftest's settings

CAPTURES = sorted(p for p in DATA.iterdir() if p.suffix in {".pcap", ".pcapng"})


def _expected(path: Path) -> dict[str, np.ndarray]:
    """Decode a capture directly, as the pipeline's stages would."""
    parts: list[dict[str, Any]] = []
    enricher = CountryEnricher(IptoccSource())
    for chunk in open_source(path).chunks():
        c = decode(chunk).columns
        c["fp"] = registry.apply(c)
        enricher.fill(c)
        c["is_outbound"] = NetworkSet([SENSOR_NET]).contains(
            c["ip_version"], c["src_ip4"], c["src_ip6"]
        )
        parts.append(c)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_every_logical_column_reads_back_exactly(settings: Settings, path: Path) -> None:
    result = ingest([path], settings)
    assert result.inputs[0].status == "ingested"
    want = _expected(path)
    names = [*DECODED, "fp", "is_outbound", "src_cc"]
    table = run_query(
        settings,
        f"SELECT {', '.join(names)} FROM packets_raw ORDER BY ts, "
        "src_port, dst_port, tcp_seq, ip_id",
    )
    order = np.lexsort([want[k] for k in ("ip_id", "tcp_seq", "dst_port", "src_port", "ts")])
    assert table.num_rows == len(order)
    for name in names:
        got = table.column(name).to_pylist()
        if name == "src_cc":
            exp = [COUNTRIES[int(i)] for i in want[name][order]]
        elif want[name].ndim == 2:
            exp = [
                bytes(r) if v == 6 else None
                for r, v in zip(want[name][order], want["ip_version"][order], strict=True)
            ]
        else:
            exp = want[name][order].tolist()
        assert got == exp, name


def test_reingest_adds_nothing(settings: Settings, smoke: SimulationResult) -> None:
    first = ingest(smoke.pcaps, settings)
    count = run_query(settings, "SELECT count(*) AS n FROM packets").column("n")[0].as_py()
    again = ingest([*smoke.pcaps, smoke.pcaps[0]], settings)
    assert [r.status for r in again.inputs] == ["duplicate"]
    assert run_query(settings, "SELECT count(*) AS n FROM packets").column("n")[0].as_py() == count
    assert count == first.packets == smoke.packets
    # the same bytes under another name are the same input
    copy = Path(settings.data_dir).parent / "copy.pcap"
    shutil.copy(smoke.pcaps[0], copy)
    assert ingest([copy], settings).inputs[0].status == "duplicate"


def test_interrupted_ingest_leaves_nothing_and_can_be_rerun(
    settings: Settings, smoke: SimulationResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = pipeline.PacketWriter.write_parts
    calls = {"n": 0}

    def crash(self: Any, parts: Any) -> None:
        calls["n"] += 1
        real(self, parts)
        raise KeyboardInterrupt  # the operator pressed Ctrl-C mid-ingest

    monkeypatch.setattr(pipeline.PacketWriter, "write_parts", crash)
    with pytest.raises(KeyboardInterrupt):
        ingest(smoke.pcaps, settings.replace(chunk_mb=1))
    monkeypatch.setattr(pipeline.PacketWriter, "write_parts", real)
    assert calls["n"] == 1
    with open_engine(settings) as engine:
        assert engine.query("SELECT count(*) AS n FROM packets").column("n")[0].as_py() == 0
    result = ingest(smoke.pcaps, settings)
    assert result.inputs[0].status == "ingested" and result.packets == smoke.packets
    with Lake(settings.data_dir) as lake:
        assert [r.status for r in lake.catalog.inputs()] == ["failed", "done"]


def test_truncated_capture_keeps_complete_records(
    settings: Settings, tmp_path: Path, smoke: SimulationResult
) -> None:
    data = smoke.pcaps[0].read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2 + 7])
    result = ingest([cut], settings)
    r = result.inputs[0]
    assert r.status == "ingested" and r.skipped == {"truncated_record": 1}
    assert 0 < r.packets < smoke.packets


def test_bad_inputs_are_reported_and_others_still_ingested(
    settings: Settings, tmp_path: Path, smoke: SimulationResult
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(smoke.pcaps[0], folder / "good.pcap")
    (folder / "notes.txt").write_text("not a capture")
    bad = tmp_path / "named.pcap"
    bad.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 5)  # header cut short
    result = ingest([bad, folder], settings)
    status = {Path(r.path).name: r.status for r in result.inputs}
    assert status == {"named.pcap": "failed", "good.pcap": "ingested", "notes.txt": "not_capture"}
    assert "named.pcap" in result.failed[0].message


def test_series_match_simulator_truth(settings: Settings, smoke: SimulationResult) -> None:
    from teiten.app.traffic import port_trend

    ingest(smoke.pcaps, settings)
    truth = json.loads(smoke.truth.read_text())
    ports = [k for k in truth["keys"] if k.split("/")[0].isdigit()]  # not other/…, icmp
    assert "52869/tcp" in ports and "2323/tcp" in ports
    rows = port_trend(settings, ports, split="domestic")
    got = {
        (r["date"], r["port"], r["segment"]): (r["packets"], r["sources"])
        for r in rows
        if r["packets"]
    }
    want = {
        (r["date"], r["port"], r["segment"]): (r["packets"], r["sources"])
        for r in truth["series"]
        if r["port"] in ports
    }
    assert got == want


def test_same_size_and_ends_but_different_middle_is_not_a_duplicate(
    settings: Settings, npa_small: SimulationResult, tmp_path: Path
) -> None:
    data = bytearray(npa_small.pcaps[0].read_bytes())
    assert len(data) > 3 << 20  # the quick key reads the first and last MiB only
    other = tmp_path / "other.pcap"
    middle = len(data) // 2
    data[middle] ^= 0xFF
    other.write_bytes(bytes(data))
    first = ingest([npa_small.pcaps[0]], settings).inputs[0]
    second = ingest([other], settings).inputs[0]
    assert first.status == second.status == "ingested"
    with Lake(settings.data_dir) as lake:
        hashes = [r.sha256 for r in lake.catalog.inputs()]
    assert len(set(hashes)) == 2 and all(len(h) == 64 for h in hashes)
    assert ingest([other], settings).inputs[0].status == "duplicate"
