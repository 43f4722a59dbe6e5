"""teiten.store.sourceports: the rows of a batch, merged and stored, equal a plain count per
key; packs' pieces cover every address once."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teiten.schema import DECODE_ERRORS, PORT_CAPTURED
from teiten.store import sourceports
from teiten.store.pack import address_pieces

OK = DECODE_ERRORS.index(PORT_CAPTURED[0])
NOT_CAPTURED = next(i for i, n in enumerate(DECODE_ERRORS) if n not in PORT_CAPTURED)


def _batch(draw: Any, n: int) -> dict[str, np.ndarray[Any, Any]]:
    small = st.integers(0, 3)
    pick = lambda values: draw(st.lists(st.sampled_from(values), min_size=n, max_size=n))  # noqa: E731
    version = np.array(pick([4, 4, 6, 0]), np.uint8)
    src6 = np.zeros((n, 16), np.uint8)
    src6[:, 15] = np.array(draw(st.lists(small, min_size=n, max_size=n)), np.uint8)
    src6[version != 6] = 0
    return {
        "ts": np.array(draw(st.lists(st.integers(0, 5 * 10**9), min_size=n, max_size=n)), np.int64),
        "proto": np.array(pick([6, 17, 1]), np.uint8),
        "dst_port": np.array(pick([0, 23, 2323, 52869]), np.uint16),
        "ip_version": version,
        "src_ip4": np.where(version == 4, np.array(pick([1, 2, 7, 1 << 31]), np.uint32), 0),
        "src_ip6": src6,
        "src_cc": np.array(pick([0, 5]), np.uint16),
        "src_asn": np.array(pick([0, 64500]), np.uint32),
        "src_as_org": np.zeros(n, np.int32),
        "fp": np.array(pick([0, 1, 3]), np.uint32),
        "is_outbound": np.array(pick([False, False, True]), np.bool_),
        "decode_error": np.array(pick([OK, OK, NOT_CAPTURED]), np.uint8),
    }


def _plain(c: dict[str, np.ndarray[Any, Any]]) -> dict[tuple[Any, ...], list[int]]:
    """Packets, first and last second per key, one packet at a time."""
    out: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 1 << 62, -1])
    for i in range(len(c["ts"])):
        if c["is_outbound"][i] or c["ip_version"][i] not in (4, 6):
            continue
        counted = c["proto"][i] in (6, 17) and DECODE_ERRORS[c["decode_error"][i]] in PORT_CAPTURED
        key = (
            int(c["ip_version"][i]), int(c["src_ip4"][i]), bytes(c["src_ip6"][i]),
            int(c["proto"][i]), int(c["dst_port"][i]) if counted else 0, bool(counted),
            int(c["fp"][i]), int(c["src_cc"][i]), int(c["src_asn"][i]),
        )  # fmt: skip
        second = int(c["ts"][i]) // 10**9
        row = out[key]
        row[0] += 1
        row[1] = min(row[1], second)
        row[2] = max(row[2], second)
    return dict(out)


def _keyed(table: pa.Table) -> dict[tuple[Any, ...], list[int]]:
    out: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 1 << 62, -1])
    for r in table.to_pylist():
        key = (
            r["ip_version"], r["src_ip4"], r["src_ip6"] or bytes(16), r["proto"], r["dst_port"],
            r["counted"], r["fp"], r["src_cc"], r["src_asn"],
        )  # fmt: skip
        row = out[key]
        row[0] += r["packets"]
        row[1] = min(row[1], r["first_s"])
        row[2] = max(row[2], r["first_s"] + r["span_s"])
    return dict(out)


@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(0, 40), st.integers(0, 40))
def test_rows_merged_and_stored_equal_a_plain_count(data: Any, n: int, m: int) -> None:
    a, b = _batch(data.draw, n), _batch(data.draw, m)
    merged = sourceports.merge(
        [sourceports.source_rows(x, np.arange(len(x["ts"]), dtype=np.int64)) for x in (a, b)]
    )
    table = sourceports.to_table(merged, [""])
    both = {k: np.concatenate([a[k], b[k]]) for k in a}
    assert _keyed(table) == _plain(both)
    assert table.num_rows == len(_plain(both))  # each key once
    versions = table.column("ip_version").to_numpy()
    assert (np.diff(versions.astype(int)) >= 0).all()  # IPv4 first, then by address
    v4 = table.column("src_ip4").to_numpy()[versions == 4]
    assert (np.diff(v4.astype(np.int64)) >= 0).all()
    back, labels = sourceports.from_table(table)
    assert labels == [""] and sourceports.to_table(back, labels).equals(table)


def test_a_day_over_its_bound_is_returned_as_a_part_and_the_rest_kept() -> None:
    rng = np.random.default_rng(1)
    n = 5000
    batch = {
        "ts": np.arange(n, dtype=np.int64) * 10**9,
        "proto": np.full(n, 6, np.uint8),
        "dst_port": rng.integers(0, 65536, n).astype(np.uint16),
        "ip_version": np.full(n, 4, np.uint8),
        "src_ip4": rng.integers(1, 1 << 32, n, dtype=np.uint64).astype(np.uint32),
        "src_ip6": np.zeros((n, 16), np.uint8),
        "src_cc": np.zeros(n, np.uint16),
        "fp": np.zeros(n, np.uint32),
        "is_outbound": np.zeros(n, np.bool_),
        "decode_error": np.full(n, OK, np.uint8),
    }
    days = sourceports.SourceDays(max_rows=3000)
    rows = np.arange(n, dtype=np.int64)
    spilled = days.add(0, batch, rows, [""])
    assert spilled is not None and spilled.num_rows == n  # every key distinct: over the bound
    assert days.table(0, [""]).num_rows == 0
    assert days.add(0, batch, rows[:100], ["", "AS one"]) is None
    kept = days.table(0, ["", "AS one"])
    assert kept.num_rows == 100 and set(kept.column("src_as_org").to_pylist()) == {""}


@pytest.mark.parametrize("prefix", ["src", "dst"])
def test_pieces_cover_every_address_once(prefix: str) -> None:
    pieces = address_pieces(prefix)
    assert all(p[1][0] == p[2][0] == f"{prefix}_ip4" for p in pieces[:-1])
    bounds = [(p[1][2], p[2][2]) for p in pieces[:-1]]
    assert bounds[0][0] == 0 and bounds[-1][1] == (1 << 32) - 1
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(bounds))
    assert pieces[-1] == [("ip_version", "=", 6)]
