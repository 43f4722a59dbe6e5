"""Compute a simulation's ground truth (``truth.json``) from the packets it wrote.

Counts come from the very columns that were written, so they are exact: a
reader that decodes the pcap and applies the same rules gets the same
numbers. Rules: a packet is *inbound* when its source lies outside the
sensor network; its day is its UTC date; its key is ``<dst port>/tcp`` or
``/udp`` for the scenario's tracked ports, else ``other/tcp``, ``other/udp``,
or ``icmp``; its segment is ``domestic`` when iptocc allocates the source to
the home country, ``foreign`` for any other country, ``unknown`` for none.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import iptocc
import numpy as np
import numpy.typing as npt

from teiten.simulate.pcapwriter import ICMP, TCP, UDP, PacketColumns
from teiten.simulate.traffic import LABELS, NS_PER_DAY, SPOOFED

if TYPE_CHECKING:
    from teiten.simulate.scenario import Context, Scenario

SEGMENTS: tuple[str, ...] = ("domestic", "foreign", "unknown")
FINGERPRINTS: tuple[str, ...] = ("mirai", "zmap", "masscan", "nmap_syn", "backscatter")
TRUTH_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _dotted(addrs: npt.NDArray[Any]) -> list[str]:
    return [f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}" for a in addrs.tolist()]


def distinct(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The sorted distinct values (sort-and-compare: faster than ``np.unique``'s hashing)."""
    ordered = np.sort(values)
    keep = np.ones(ordered.shape[0], bool)
    keep[1:] = ordered[1:] != ordered[:-1]
    return ordered[keep]


def source_segments(src: npt.NDArray[np.uint32], home: str) -> tuple[
        npt.NDArray[np.int64], dict[str, int]]:  # fmt: skip
    """Segment index (into :data:`SEGMENTS`) of each source, and sources per country."""
    uniq = distinct(src)
    inverse = np.searchsorted(uniq, src)
    cc = [c or "" for c in iptocc.country_code(_dotted(uniq))]
    seg = np.array([0 if c == home else 1 if c else 2 for c in cc], np.int64)
    countries: dict[str, int] = {}
    for c in cc:
        countries[c or "??"] = countries.get(c or "??", 0) + 1
    return seg[inverse], dict(sorted(countries.items()))


def key_names(tracked: tuple[str, ...]) -> list[str]:
    """Series keys: the tracked ``port/proto`` keys, then the catch-all keys."""
    return [*tracked, "other/tcp", "other/udp", "icmp"]


def packet_keys(p: PacketColumns, tracked: tuple[str, ...]) -> npt.NDArray[np.int64]:
    """Index into :func:`key_names` of every packet."""
    table = np.full(2 * 65536, -1, np.int64)
    for i, key in enumerate(tracked):
        port, proto = key.split("/")
        table[int(port) * 2 + ("tcp", "udp").index(proto)] = i
    tracked_key = table[p.dport.astype(np.int64) * 2 + (p.proto == UDP)]
    n = len(tracked)
    other = np.select([p.proto == TCP, p.proto == UDP, p.proto == ICMP], [n, n + 1, n + 2], n)
    is_port = ((p.proto == TCP) | (p.proto == UDP)) & (tracked_key >= 0)
    return np.where(is_port, tracked_key, other)


def _series(ctx: Context, p: PacketColumns, keys: list[str], key: npt.NDArray[np.int64],
            seg: npt.NDArray[np.int64]) -> list[dict[str, Any]]:  # fmt: skip
    """Inbound packets and unique sources per day × key × segment (non-zero rows only)."""
    day = (p.ts - ctx.start_ns) // NS_PER_DAY
    group = (day * len(keys) + key) * len(SEGMENTS) + seg
    packets = np.bincount(group)
    pairs = distinct((group.astype(np.uint64) << np.uint64(32)) | p.src.astype(np.uint64))
    sources = np.bincount((pairs >> np.uint64(32)).astype(np.int64), minlength=packets.size)
    rows = []
    for g in np.flatnonzero(packets).tolist():
        d, rest = divmod(g, len(keys) * len(SEGMENTS))
        k, s = divmod(rest, len(SEGMENTS))
        rows.append({
            "date": (ctx.first_day + timedelta(days=d)).isoformat(), "port": keys[k],
            "segment": SEGMENTS[s], "packets": int(packets[g]), "sources": int(sources[g]),
        })  # fmt: skip
    return rows


def _fingerprints(p: PacketColumns) -> dict[str, dict[str, int]]:
    out = {}
    for name in (*FINGERPRINTS, "spoofed"):
        mask = p.label == LABELS.index(name)
        out[name] = {"packets": int(mask.sum()), "sources": int(distinct(p.src[mask]).size)}
    return out


def _sessions(sessions: list[dict[str, Any]], home: str) -> list[dict[str, Any]]:
    srcs = [s["src"] for s in sessions]
    ccs = iptocc.country_code(srcs) if srcs else []
    out = []
    for s, cc in zip(sessions, ccs, strict=True):
        start = _EPOCH + timedelta(microseconds=s["start_ns"] // 1000)
        segment = "domestic" if cc == home else "foreign" if cc else "unknown"
        head = {k: s[k] for k in ("kind", "src", "sport", "dst", "dport", "start_ns")}
        out.append({**head, "start": start.isoformat().replace("+00:00", "Z"),
                    "country": cc or "", "segment": segment, **s})  # fmt: skip
    return sorted(out, key=lambda s: (s["start_ns"], s["src"]))


def _columns_only(p: PacketColumns, mask: npt.NDArray[np.bool_]) -> PacketColumns:
    """The rows of ``p`` where ``mask`` holds, without their tails (counting needs none)."""
    cols = {k: v[mask] for k, v in p.columns().items()}
    cols["tail_len"] = np.zeros(int(mask.sum()), np.uint32)
    cols["optlen"] = np.zeros_like(cols["tail_len"], np.uint8)
    return PacketColumns(**cols, tail=np.zeros(0, np.uint8))


def build_truth(scenario: Scenario, ctx: Context, packets: PacketColumns,
                sessions: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """The ground-truth document for ``packets`` (already written, in time order)."""
    from teiten.simulate.scenario import period

    mask = np.uint32(int(ctx.network.netmask))
    inbound = (packets.src & mask) != np.uint32(int(ctx.network.network_address))
    inb = _columns_only(packets, inbound)
    seg, countries = source_segments(inb.src, scenario.home_country)
    keys = key_names(scenario.tracked)
    first, last = period(scenario)
    spoofed = distinct(packets.src[packets.label == SPOOFED])
    return {
        "truth_version": TRUTH_VERSION,
        "scenario": scenario.name, "summary": scenario.summary,
        "seed": ctx.seed, "scale": ctx.scale,
        "period": {"start": first, "end": last, "days": scenario.days},
        "sensor_networks": [scenario.sensor_network], "home_country": scenario.home_country,
        "packets": {"total": len(packets), "inbound": len(inb),
                    "outbound": len(packets) - len(inb)},
        "onsets": dict(scenario.onsets), "onset_segment": scenario.onset_segment,
        "no_surge": [{"port": k, "segment": s} for k, s in scenario.no_surge],
        "fingerprints": _fingerprints(packets),
        "spoofed_sources": _dotted(spoofed),
        "sources": {"by_segment": {s: int(distinct(inb.src[seg == i]).size)
                                   for i, s in enumerate(SEGMENTS)},
                    "by_country": countries},
        "keys": keys,
        "series": _series(ctx, inb, keys, packet_keys(inb, scenario.tracked), seg),
        "sessions": _sessions(sessions, scenario.home_country),
    }  # fmt: skip
