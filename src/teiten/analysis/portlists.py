"""The port page's lists from the day tables, when they can answer.

Over a window of whole local days of the store's day zone with more
``port_hours`` rows than the scope counts exactly (:func:`teiten.analysis.sketches.sketched`),
the fingerprint mix, the countries, the ASNs and the busiest sources of one
port come from the day tables (``teiten.store.sketch``, ``teiten.store.portlists``)
instead of the per-source rows: packets exact, sources estimated (standard error
1.6 %), the ASNs a day did not keep by name counted as *others*, and the busiest
sources' packets lower bounds, each at most ``floor`` below what the source sent.
The lists have the columns and order of the exact statements of
``teiten.sql.portview``; :func:`port_lists` says how far they may be off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from teiten.analysis.sketches import sketched
from teiten.analysis.window import Window
from teiten.engine import Engine
from teiten.enrich.country import COUNTRIES
from teiten.schema.daytables import PORT_ASNS_KEPT, PORT_TOPS_KEPT
from teiten.sql import portview, traffic
from teiten.store.portlists import DIM_ASN, DIM_FINGERPRINT, DIM_NONE, OTHER_ASN, expand
from teiten.store.registers import STANDARD_ERROR, merge


def _merged(rows: pa.Table, key: Any, keep: Any = None) -> list[tuple[int, int, int]]:
    """``(key, packets, sources)`` of ``rows`` (those of the ``keep`` mask) merged per
    ``key`` (one integer per row)."""
    if keep is not None:
        rows, key = rows.filter(pa.array(keep)), key[keep]
    m = merge(key, rows.column("packets").to_numpy(), rows.column("registers"))
    return list(zip(m.group.tolist(), m.packets.tolist(), m.sources.tolist(), strict=True))


def _ranked(rows: list[dict[str, Any]], name: str, limit: int) -> list[dict[str, Any]]:
    """Most sources first, then packets, then ``name`` (the exact statements' order)."""
    return sorted(rows, key=lambda r: (-r["sources"], -r["packets"], r[name]))[:limit]


def _mix(
    sketches: pa.Table, groups: pa.Table, dim: Any, fingerprints: Sequence[tuple[int, str]]
) -> list[dict[str, Any]]:
    """``all``, each fingerprint of ``fingerprints`` (bit, name) and ``none``."""
    everything = _merged(sketches, np.zeros(sketches.num_rows, np.int64))
    _, packets, sources = everything[0] if everything else (0, 0, 0)
    out = [{"name": "all", "packets": packets, "sources": sources}]
    key = groups.column("key").to_numpy().astype(np.int64)
    bits = {k: (p, s) for k, p, s in _merged(groups, key, dim == DIM_FINGERPRINT)}
    none = _merged(groups, key, dim == DIM_NONE)
    for bit, name in fingerprints:
        p, s = bits.get(bit, (0, 0))
        out.append({"name": name, "packets": p, "sources": s})
    _, p, s = none[0] if none else (0, 0, 0)
    return [*out, {"name": "none", "packets": p, "sources": s}]


def _filled(groups: pa.Table) -> pa.Table:
    """The rows with the registers stored empty put back, list by list (``expand``)."""
    if groups.num_rows == 0:
        return groups
    lists = pc.binary_join_element_wise(
        groups.column("sensor"),
        groups.column("file"),
        pc.cast(groups.column("busy"), pa.string()),
        "/",
    )
    codes = pc.dictionary_encode(lists).combine_chunks().indices.to_numpy()
    return expand(groups, codes.astype(np.int64))


def _busiest(rows: pa.Table, top: int) -> tuple[list[dict[str, Any]], int]:
    """The ``top`` sources with most listed packets (the columns and order of
    ``portview.port_sources``) and the sum of the floors of the lists they came from."""
    if rows.num_rows == 0:
        return [], 0
    lists = rows.group_by(["sensor", "file", "day", "busy"]).aggregate([("floor", "max")])
    floor = int(pc.sum(lists.column("floor_max")).as_py() or 0)
    keys = ["ip_version", "src_ip4", "src_ip6"]
    summed = rows.group_by(keys).aggregate(
        [("packets", "sum"), ("src", "max"), ("src_cc", "max"), ("src_asn", "max")]
    )
    order = [("packets_sum", "descending"), *((k, "ascending") for k in keys)]
    best = summed.sort_by(order).slice(0, top)
    names = {"src_max": "src", "packets_sum": "packets", "src_cc_max": "src_cc",
             "src_asn_max": "src_asn"}  # fmt: skip
    return [{names[k]: r[k] for k in names} for r in best.to_pylist()], floor


def port_lists(
    engine: Engine,
    window: Window,
    proto: str,
    port: int,
    *,
    top: int,
    fingerprints: Sequence[tuple[int, str]],
) -> dict[str, Any] | None:
    """``fingerprints``, ``sources``, ``countries`` and ``asns`` of a port over ``window``
    from the day tables, and ``estimate``: how far they may be off (``sources_error``, the
    relative standard error of a source count; ``floor``, packets a listed source may lack;
    ``other_asns``, packets and sources of the ASNs not kept by name; ``asns_kept`` and
    ``sources_kept`` a day). None when the day tables cannot answer for ``window``."""
    if not sketched(engine, window, by_day=False):
        return None
    d, days = engine.dialect, traffic.sketch_days(window)
    sketches = engine.query(traffic.sketch_rows(d, days, [(proto, port)]))
    groups = _filled(engine.query(portview.port_group_rows(d, days, proto, port)))
    dim = groups.column("dim").to_numpy().astype(np.int64)
    key = groups.column("key").to_numpy().astype(np.int64)
    cc = sketches.column("src_cc_code").to_numpy().astype(np.int64)
    countries = [
        {"src_cc": COUNTRIES[c], "sources": s, "packets": p} for c, p, s in _merged(sketches, cc)
    ]
    asns = [
        {"src_asn": a, "sources": s, "packets": p}
        for a, p, s in _merged(groups, key, dim == DIM_ASN)
    ]
    other = next((r for r in asns if r["src_asn"] == OTHER_ASN), None)
    busiest, floor = _busiest(engine.query(portview.port_top_rows(d, days, proto, port)), top)
    return {
        "fingerprints": _mix(sketches, groups, dim, fingerprints),
        "sources": busiest,
        "countries": _ranked(countries, "src_cc", top),
        "asns": _ranked([r for r in asns if r is not other], "src_asn", top),
        "estimate": {
            "sources_error": round(STANDARD_ERROR, 4),
            "floor": floor,
            "sources_kept": PORT_TOPS_KEPT,
            "asns_kept": PORT_ASNS_KEPT,
            "other_asns": (
                {"packets": other["packets"], "sources": other["sources"]} if other else None
            ),
        },
    }
