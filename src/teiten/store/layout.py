"""How the logical packet columns are laid out in Parquet, declared as data.

The decoder and the views speak in the logical columns of
:data:`teiten.schema.PACKETS`. On disk they are stored more compactly, because
the Parquet writer's cost grows with the number of columns and its size with
their entropy:

* **packed** — several few-valued fields share one int64 column (``shape``:
  protocol, flags, TTL, …; ``lens``: the length fields and the source's
  country code), which the writer dictionary-encodes as a whole;
* **residuals** — a column XORed with the value a known scanner derives it
  from (``tcp_seq`` ^ ``dst_ip4`` is 0 for Mirai probes; ``ip_id`` ^ the Masscan
  formula is 0 for Masscan probes), so a fingerprinted scanner's fields cost
  nearly nothing and any other value stays as random as it was;
* **split** — ``ts`` (ns) as ``ts_us`` (delta-encoded µs) plus ``ts_ns``
  (the remainder, 0 for µs captures);
* **from the path** — ``sensor`` and ``input_id`` are constant per file and
  live in its path: ``packets/sensor=S/date=D/inNNNNNN-PPP.parquet``.

:func:`to_physical` applies the layout to a batch;
:func:`teiten.sql.views.logical_columns` gives the SQL expressions that undo
it, per engine dialect, from these same declarations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from teiten.schema import PACKETS


@dataclass(frozen=True)
class Packed:
    """Several logical columns stored as bit fields of one int64, from bit 62 down.

    Bit 63 stays clear so the value is a non-negative int64 in every engine
    (Spark has no unsigned types).
    """

    name: str
    fields: tuple[tuple[str, int], ...]

    def shifts(self) -> list[tuple[str, int, int]]:
        """``(column, shift, bits)`` for each field."""
        out, top = [], 63
        for column, bits in self.fields:
            top -= bits
            out.append((column, top, bits))
        return out


PACKED: tuple[Packed, ...] = (
    Packed(
        "shape",
        (
            ("proto", 8),
            ("tcp_flags", 8),
            ("ip_ttl", 8),
            ("tcp_options_len", 8),
            ("ip_version", 4),
            ("decode_error", 4),
            ("is_outbound", 1),
            ("ip_frag", 16),
        ),
    ),
    Packed("lens", (("ip_len", 16), ("payload_len", 16), ("tcp_mss", 16), ("src_cc", 10))),
)

# stored column → the *stored* columns whose XOR (masked to the column's width)
# it is stored against, applied in this order.
RESIDUALS: dict[str, tuple[str, ...]] = {
    # Mirai: seq == destination address, so the stored value is 0.
    "tcp_seq": ("dst_ip4",),
    # Masscan: ip_id == (dst ^ dport ^ seq) & 0xffff == (dport ^ stored seq) & 0xffff.
    "ip_id": ("dst_port", "tcp_seq"),
}

FROM_PATH: tuple[str, ...] = ("sensor", "input_id")
SPLIT_TS = ("ts_us", "ts_ns")

_PACKED_COLUMNS = {c for p in PACKED for c, _ in p.fields}


ENCODINGS: dict[str, str] = {
    # sorted within a row group (store/order.py)
    "src_ip4": "delta",
    # mostly 0 or one value per source and shape: plain pages that zstd squeezes
    # better than split bytes (measured on the three benchmark mixes, 2 M packets:
    # −0.06 to −0.19 bytes a packet each)
    "tcp_ack": "plain",
    "tcp_window": "plain",
    # few values (a few hundred ports or fingerprint sets a row group): a dictionary
    "dst_port": "dict",
    "fp": "dict",
}
"""Parquet encoding of the plain integer columns that differ from the default,
byte-stream-split (whose high bytes zstd then squeezes: addresses, random sequence
numbers and ids)."""


@dataclass(frozen=True)
class Stored:
    """One physical column: name, numpy dtype, Parquet encoding (``dict``, ``delta``,
    ``split`` or ``plain``)."""

    name: str
    dtype: str
    encoding: str
    nullable: bool = False


def stored_columns() -> tuple[Stored, ...]:
    """The physical columns, in file order (derived from the schema and the layout)."""
    out = [Stored("ts_us", "int64", "delta"), Stored("ts_ns", "uint16", "dict")]
    for c in PACKETS:
        if c.name in _PACKED_COLUMNS or c.name in FROM_PATH or c.name == "ts":
            continue
        if c.dtype in ("bytes16", "str"):
            out.append(Stored(c.name, c.dtype, "dict", c.nullable))
        else:
            encoding = ENCODINGS.get(c.name, "split")
            out.append(Stored(c.name, c.dtype, encoding, c.nullable))
    out += [Stored(p.name, "int64", "dict") for p in PACKED]
    return tuple(out)


def _residual_key(stored: dict[str, npt.NDArray[Any]], name: str) -> npt.NDArray[Any]:
    dtype = stored[name].dtype
    key = np.zeros(stored[name].shape[0], dtype)
    for other in RESIDUALS[name]:
        key ^= stored[other].astype(dtype)  # truncates to the column's width
    return key


def to_physical(columns: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    """The stored columns of a batch of logical columns (sensor and input_id dropped)."""
    ts = columns["ts"]
    out: dict[str, npt.NDArray[Any]] = {
        "ts_us": ts // 1000,
        "ts_ns": (ts % 1000).astype(np.uint16),
    }
    n = ts.shape[0]
    for s in stored_columns()[2:]:
        if s.name in columns:
            out[s.name] = columns[s.name]
        elif s.dtype not in ("bytes16",) and s.name not in {p.name for p in PACKED}:
            out[s.name] = np.zeros(n, np.int32 if s.dtype == "str" else s.dtype)
    for name in RESIDUALS:
        out[name] = columns[name] ^ _residual_key(out, name)
    for p in PACKED:
        word = np.zeros(ts.shape[0], np.int64)
        for column, shift, _bits in p.shifts():
            word |= columns[column].astype(np.int64) << np.int64(shift)
        out[p.name] = word
    return out


def _packed_field(name: str) -> tuple[Packed, int, int] | None:
    for p in PACKED:
        for column, shift, bits in p.shifts():
            if column == name:
                return p, shift, bits
    return None


def from_physical(
    stored: dict[str, npt.NDArray[Any]], names: Sequence[str]
) -> dict[str, npt.NDArray[Any]]:
    """The logical columns ``names`` of stored columns.

    The numpy form of :func:`teiten.sql.views.logical_columns`.

    Packed fields come out as int64 (``src_cc``: its country code), residuals
    XORed back, ``ts`` joined. ``str`` columns stored as text, and ``sensor``
    and ``input_id`` (in the path), cannot be read this way.
    """
    out: dict[str, npt.NDArray[Any]] = {}
    for name in names:
        packed = _packed_field(name)
        if name == "ts":
            out[name] = stored["ts_us"].astype(np.int64) * 1000 + stored["ts_ns"]
        elif packed is not None:
            p, shift, bits = packed
            out[name] = (stored[p.name].astype(np.int64) >> np.int64(shift)) & ((1 << bits) - 1)
        elif name in RESIDUALS:
            out[name] = stored[name] ^ _residual_key(stored, name)
        elif name in FROM_PATH or name not in stored:
            raise ValueError(f"packets.{name} cannot be read from the stored columns")
        else:
            out[name] = stored[name]
    return out


def replace_physical(
    stored: dict[str, npt.NDArray[Any]], new: dict[str, npt.NDArray[Any]]
) -> dict[str, npt.NDArray[Any]]:
    """The stored columns that change when the logical columns ``new`` replace theirs.

    ``stored`` holds the stored columns of the rows (all the residuals and
    their keys when a residual or one of its keys is replaced). Packed fields
    are replaced inside their word (bits of the other fields kept); residuals
    are re-derived. ``ts``, ``sensor`` and ``input_id`` cannot be replaced.
    """
    out: dict[str, npt.NDArray[Any]] = {}
    keys = {k for ks in RESIDUALS.values() for k in ks} | set(RESIDUALS)
    residuals = keys & set(new)
    before = from_physical(stored, list(RESIDUALS)) if residuals else {}
    for name, values in new.items():
        packed = _packed_field(name)
        if name in ("ts", *FROM_PATH):
            raise ValueError(f"packets.{name} cannot be replaced")
        if packed is not None:
            p, shift, bits = packed
            word = out.get(p.name, stored[p.name]).astype(np.int64)
            mask = np.int64(((1 << bits) - 1) << shift)
            field = (values.astype(np.int64) & ((1 << bits) - 1)) << np.int64(shift)
            out[p.name] = (word & ~mask) | field
        elif name not in RESIDUALS:
            out[name] = values
    if residuals:
        merged = {**stored, **out}
        logical = {**before, **{k: v for k, v in new.items() if k in RESIDUALS}}
        for name in RESIDUALS:  # in order: ip_id's key uses the stored tcp_seq
            value = logical[name].astype(stored[name].dtype)
            merged[name] = out[name] = value ^ _residual_key(merged, name)
    return out


def stored_inputs(names: Sequence[str]) -> set[str]:
    """The stored columns :func:`from_physical` reads for the logical columns ``names``."""
    out: set[str] = set()
    for name in names:
        packed = _packed_field(name)
        if name == "ts":
            out |= set(SPLIT_TS)
        elif packed is not None:
            out.add(packed[0].name)
        elif name in RESIDUALS:
            out |= {name, *RESIDUALS[name]}
        else:
            out.add(name)
    return out
