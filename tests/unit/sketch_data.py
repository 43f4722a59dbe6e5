"""Helpers shared by the sketch tests (``test_store_sketch.py``) and the register tests
(``test_store_registers.py``): the tests' country codes, IPv4 sources and ``port_hours``
tables of them, and an independent reading and writing of the registers bytes."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from teiten.schema import PORT_HOURS
from teiten.schema.daytables import SKETCH_DENSE_BYTES, SKETCH_REGISTERS
from teiten.store.registers import estimate
from teiten.store.rollup import to_table

JP, US, CN = 392, 840, 156  # ISO 3166 numeric codes, as the tests' country codes

Registers = dict[int, int]
"""A sketch as the tests see it: register number -> rank (set registers only)."""


def _v4(addresses: list[int]) -> tuple[Any, Any, Any]:
    n = len(addresses)
    return (
        np.full(n, 4, np.uint8),
        np.asarray(addresses, np.uint32),
        np.zeros((n, 16), np.uint8),
    )


def _hour(y: int, m: int, d: int, h: int) -> int:
    return int(dt.datetime(y, m, d, h, tzinfo=dt.UTC).timestamp()) // 3600


def _sources(n: int, seed: int) -> npt.NDArray[np.uint32]:
    rng = np.random.default_rng(seed)
    out = np.unique(rng.integers(0, 2**32, int(n * 1.01) + 10, dtype=np.uint64).astype(np.uint32))
    rng.shuffle(out)
    return out[:n]


def _v4_table(
    hour: npt.NDArray[Any] | int,
    port: npt.NDArray[Any] | int,
    src4: npt.NDArray[Any],
    cc: npt.NDArray[Any] | int,
    packets: npt.NDArray[Any] | int = 1,
    proto: int = 6,
) -> pa.Table:
    """A ``port_hours`` table of IPv4 rows (arrays, or one value for all rows)."""
    n = len(src4)
    cols: dict[str, npt.NDArray[Any]] = {
        "hour": np.broadcast_to(np.asarray(hour, np.int32), n).copy(),
        "proto": np.full(n, proto, np.uint8),
        "dst_port": np.broadcast_to(np.asarray(port, np.uint16), n).copy(),
        "ip_version": np.full(n, 4, np.uint8),
        "src_ip4": np.asarray(src4, np.uint32),
        "src_ip6": np.zeros((n, 16), np.uint8),
        "src_cc": np.broadcast_to(np.asarray(cc, np.uint16), n).copy(),
        "src_asn": np.zeros(n, np.uint32),
        "fp": np.zeros(n, np.uint32),
        "packets": np.broadcast_to(np.asarray(packets, np.int64), n).copy(),
    }
    return to_table(cols, PORT_HOURS)


# --- an independent reading and writing of the registers bytes -------------------


def _decode(blob: bytes) -> Registers:
    """The registers of a stored sketch, read by the byte layout of ``PORT_SKETCHES``
    (strict: a well-formed sketch only)."""
    if len(blob) == SKETCH_DENSE_BYTES:
        dense = {reg: rank for reg, rank in enumerate(blob) if rank}
        assert 3 * len(dense) >= SKETCH_DENSE_BYTES, "dense although sparse is shorter"
        return dense
    assert len(blob) % 3 == 0 and len(blob) < SKETCH_DENSE_BYTES, len(blob)
    regs = [blob[i] | blob[i + 1] << 8 for i in range(0, len(blob), 3)]
    ranks = [blob[i + 2] for i in range(0, len(blob), 3)]
    assert regs == sorted(set(regs)), "sparse registers sorted and distinct"
    assert all(r < SKETCH_REGISTERS for r in regs) and all(k >= 1 for k in ranks)
    return dict(zip(regs, ranks, strict=True))


def _encode(registers: Registers) -> bytes:
    """The bytes a sketch of these registers is stored as: sparse while shorter."""
    if 3 * len(registers) >= SKETCH_DENSE_BYTES:
        dense = bytearray(SKETCH_DENSE_BYTES)
        for reg, rank in registers.items():
            dense[reg] = rank
        return bytes(dense)
    return b"".join(bytes((r & 0xFF, r >> 8, registers[r])) for r in sorted(registers))


def _union(sketches: list[Registers]) -> Registers:
    out: Registers = {}
    for s in sketches:
        for reg, rank in s.items():
            out[reg] = max(out.get(reg, 0), rank)
    return out


def _estimate_of(registers: Registers, packets: float = math.inf) -> int:
    harmonic = sum(2.0**-rank for rank in registers.values())
    return estimate(len(registers), harmonic, packets)
