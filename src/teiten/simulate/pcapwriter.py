"""Write Ethernet/IPv4 packets held as numpy columns to a classic pcap file.

Generators describe packets as :class:`PacketColumns`: one array per header
field plus a ragged "tail" per packet (TCP options followed by the transport
payload, or an ICMP error's quoted header). :func:`write_pcap` assembles the
byte records for a whole chunk at once: each protocol's fixed headers are
filled as a numpy structured array, the tails are spliced in with a boolean
mask, and the IPv4 and TCP/UDP/ICMP checksums are computed from the columns,
so no Python code runs per packet.

ICMP packets reuse two columns: ``sport``/``dport`` hold the ICMP type and
code, and ``seq`` holds the four "rest of header" bytes (echo id and sequence).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from teiten.store.order import ragged_index

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

TCP, UDP, ICMP = 6, 17, 1
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
DF = 0x4000
PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
LINKTYPE_ETHERNET = 1
SNAPLEN = 65535
SENSOR_MAC = np.frombuffer(bytes.fromhex("020000113a01"), np.uint8)
"""The sensor's interface (locally administered address)."""
GATEWAY_MAC = np.frombuffer(bytes.fromhex("020000113a02"), np.uint8)
"""The upstream router every inbound frame comes from."""

_REC = [("ts_sec", "<u4"), ("ts_frac", "<u4"), ("incl", "<u4"), ("orig", "<u4")]
_ETH = [("eth_dst", "u1", (6,)), ("eth_src", "u1", (6,)), ("eth_type", ">u2")]
_IP = [
    ("vihl", "u1"), ("tos", "u1"), ("ip_len", ">u2"), ("ip_id", ">u2"), ("frag", ">u2"),
    ("ttl", "u1"), ("proto", "u1"), ("ip_sum", ">u2"), ("src", ">u4"), ("dst", ">u4"),
]  # fmt: skip
_L4: dict[int, list[tuple[str, str]]] = {
    TCP: [
        ("sport", ">u2"), ("dport", ">u2"), ("seq", ">u4"), ("ack", ">u4"), ("off", "u1"),
        ("flags", "u1"), ("win", ">u2"), ("l4_sum", ">u2"), ("urp", ">u2"),
    ],
    UDP: [("sport", ">u2"), ("dport", ">u2"), ("udp_len", ">u2"), ("l4_sum", ">u2")],
    ICMP: [("sport", "u1"), ("dport", "u1"), ("l4_sum", ">u2"), ("seq", ">u4")],
}  # fmt: skip
_HEADS = {p: np.dtype(_REC + _ETH + _IP + l4) for p, l4 in _L4.items()}
_HEAD_MAX = max(d.itemsize for d in _HEADS.values())
_L4_HDR = {TCP: 20, UDP: 8, ICMP: 8}
_DTYPES = {
    "ts": np.int64, "src": np.uint32, "dst": np.uint32, "proto": np.uint8, "ttl": np.uint8,
    "ip_id": np.uint16, "frag": np.uint16, "sport": np.uint16, "dport": np.uint16,
    "seq": np.uint32, "ack": np.uint32, "flags": np.uint8, "win": np.uint16,
    "optlen": np.uint8, "tail_len": np.uint32, "label": np.uint8,
}  # fmt: skip


@dataclass
class PacketColumns:
    """Packets as columns; ``tail`` is the concatenation of every packet's tail bytes.

    ``label`` is not written: it records which mechanism made the packet, for
    the ground truth.
    """

    ts: I64
    src: npt.NDArray[np.uint32]
    dst: npt.NDArray[np.uint32]
    proto: U8
    ttl: U8
    ip_id: npt.NDArray[np.uint16]
    frag: npt.NDArray[np.uint16]
    sport: npt.NDArray[np.uint16]
    dport: npt.NDArray[np.uint16]
    seq: npt.NDArray[np.uint32]
    ack: npt.NDArray[np.uint32]
    flags: U8
    win: npt.NDArray[np.uint16]
    optlen: U8
    tail_len: npt.NDArray[np.uint32]
    label: U8
    tail: U8

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @property
    def tail_off(self) -> I64:
        """Start of each packet's tail within :attr:`tail`."""
        lens = self.tail_len.astype(np.int64)
        return np.cumsum(lens) - lens

    def columns(self) -> dict[str, npt.NDArray[Any]]:
        """The fixed-width columns by name (everything but ``tail``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "tail"}

    def take(self, index: I64) -> PacketColumns:
        """The packets at ``index``, in that order (tails follow their packets)."""
        cols = {k: v[index] for k, v in self.columns().items()}
        tail = self.tail[ragged_index(self.tail_off[index], cols["tail_len"])]
        return PacketColumns(**cols, tail=tail)

    def sorted_by_time(self) -> PacketColumns:
        """The packets in time order; ties keep their current order."""
        return self.take(np.argsort(self.ts, kind="stable"))


def make_packets(n: int, tail: U8 | None = None, **cols: Any) -> PacketColumns:
    """Packets from column values (arrays of length ``n`` or scalars broadcast to it).

    Missing columns are zero, except ``frag`` (DF set) and ``proto`` (TCP).
    ``tail_len`` defaults to ``optlen``; ``tail`` must hold ``sum(tail_len)`` bytes.
    """
    unknown = set(cols) - set(_DTYPES)
    if unknown:
        raise TypeError(f"unknown packet columns: {sorted(unknown)}")
    cols.setdefault("frag", DF)
    cols.setdefault("proto", TCP)
    cols.setdefault("tail_len", cols.get("optlen", 0))
    out = {}
    for name, dtype in _DTYPES.items():
        value = np.asarray(cols.get(name, 0))
        out[name] = np.broadcast_to(value, (n,)).astype(dtype)
    body = np.zeros(0, np.uint8) if tail is None else np.asarray(tail, np.uint8)
    if body.shape[0] != int(out["tail_len"].sum(dtype=np.int64)):
        raise ValueError("tail bytes do not match tail_len")
    return PacketColumns(**out, tail=body)


def concat(parts: Sequence[PacketColumns]) -> PacketColumns:
    """The packets of every part, one after another."""
    names = [f.name for f in fields(PacketColumns)]
    return PacketColumns(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in names})


def templates_tail(templates: Sequence[bytes], which: npt.ArrayLike) -> tuple[U8, I64]:
    """Tail bytes and lengths when packet ``i`` carries ``templates[which[i]]``."""
    idx = np.asarray(which, np.int64)
    lens = np.array([len(t) for t in templates], np.int64)
    starts = np.cumsum(lens) - lens
    pool = np.frombuffer(b"".join(templates), np.uint8)
    return pool[ragged_index(starts[idx], lens[idx])], lens[idx]


def fold(total: npt.NDArray[Any]) -> npt.NDArray[np.uint16]:
    """Internet checksum of 16-bit word sums: fold the carries, then complement."""
    s = total.astype(np.int64)
    for _ in range(3):
        s = (s & 0xFFFF) + (s >> 16)
    return (~s & 0xFFFF).astype(np.uint16)


def words32(value: npt.NDArray[Any]) -> I64:
    """Sum of the two 16-bit halves of 32-bit values."""
    v = value.astype(np.int64)
    return (v >> 16) + (v & 0xFFFF)


def _tail_sums(tail: U8, lens: npt.NDArray[np.uint32]) -> I64:
    """Per packet, the sum of its tail read as big-endian 16-bit words (odd byte padded)."""
    n = len(lens)
    sums = np.zeros(n, np.int64)
    nonzero = np.flatnonzero(lens)
    if nonzero.size == 0:
        return sums
    starts = np.cumsum(lens.astype(np.int64)) - lens
    rel = np.arange(tail.shape[0], dtype=np.int64) - np.repeat(starts, lens)
    weighted = tail.astype(np.int64) << (8 * (1 - (rel & 1)))
    sums[nonzero] = np.add.reduceat(weighted, starts[nonzero])
    return sums


def _checksums(p: PacketColumns, l4_len: I64) -> tuple[npt.NDArray[np.uint16], I64]:
    """IPv4 header checksums, and the sum for the transport checksum before folding."""
    ip_len = 20 + l4_len
    ip_sum = (
        0x4500 + ip_len + p.ip_id + p.frag.astype(np.int64)
        + (p.ttl.astype(np.int64) << 8) + p.proto + words32(p.src) + words32(p.dst)
    )  # fmt: skip
    tcp = p.proto == TCP
    udp = p.proto == UDP
    header = np.where(
        p.proto == ICMP,
        (p.sport.astype(np.int64) << 8) + p.dport + words32(p.seq),
        p.sport.astype(np.int64) + p.dport,
    )
    header += np.where(
        tcp,
        words32(p.seq) + words32(p.ack) + (((5 + p.optlen // 4).astype(np.int64)) << 12)
        + p.flags + p.win,
        0,
    )  # fmt: skip
    header += np.where(udp, l4_len, 0)
    pseudo = np.where(tcp | udp, words32(p.src) + words32(p.dst) + p.proto + l4_len, 0)
    return fold(ip_sum), header + pseudo + _tail_sums(p.tail, p.tail_len)


def _heads(p: PacketColumns, outbound: npt.NDArray[np.bool_], nanosecond: bool) -> tuple[U8, I64]:
    """The fixed headers (record, Ethernet, IPv4, transport) as an ``(n, 70)`` byte matrix."""
    n = len(p)
    l4_hdr = np.select([p.proto == TCP], [20], 8).astype(np.int64)
    l4_len = l4_hdr + p.tail_len
    ip_sum, l4_total = _checksums(p, l4_len)
    l4_sum = fold(l4_total)
    l4_sum[(p.proto == UDP) & (l4_sum == 0)] = 0xFFFF
    frac = (p.ts % 1_000_000_000) // (1 if nanosecond else 1000)
    matrix = np.zeros((n, _HEAD_MAX), np.uint8)
    for proto, dtype in _HEADS.items():
        idx = np.flatnonzero(p.proto == proto)
        rec = np.zeros(idx.size, dtype)
        rec["ts_sec"] = p.ts[idx] // 1_000_000_000
        rec["ts_frac"] = frac[idx]
        rec["incl"] = rec["orig"] = 34 + l4_len[idx]
        rec["eth_dst"] = np.where(outbound[idx, None], GATEWAY_MAC, SENSOR_MAC)
        rec["eth_src"] = np.where(outbound[idx, None], SENSOR_MAC, GATEWAY_MAC)
        rec["eth_type"], rec["vihl"], rec["ip_len"] = 0x0800, 0x45, 20 + l4_len[idx]
        for name in ("ip_id", "frag", "ttl", "proto", "src", "dst", "sport", "dport"):
            rec[name] = getattr(p, name)[idx]
        rec["ip_sum"], rec["l4_sum"] = ip_sum[idx], l4_sum[idx]
        if proto == TCP:
            for name in ("seq", "ack", "flags", "win"):
                rec[name] = getattr(p, name)[idx]
            rec["off"] = (5 + p.optlen[idx] // 4) << 4
        elif proto == UDP:
            rec["udp_len"] = l4_len[idx]
        else:
            rec["seq"] = p.seq[idx]
        matrix[idx, : dtype.itemsize] = rec.view(np.uint8).reshape(idx.size, dtype.itemsize)
    return matrix, 16 + 34 + l4_hdr


def _records(p: PacketColumns, outbound: npt.NDArray[np.bool_], nanosecond: bool) -> U8:
    """The pcap records of ``p`` as one byte array."""
    matrix, head_len = _heads(p, outbound, nanosecond)
    heads = matrix[np.arange(_HEAD_MAX)[None, :] < head_len[:, None]]
    rec_len = head_len + p.tail_len
    total = int(rec_len.sum())
    tail_start = np.cumsum(rec_len) - rec_len + head_len
    delta = np.bincount(tail_start, minlength=total + 1) - np.bincount(
        tail_start + p.tail_len, minlength=total + 1
    )
    in_tail = np.cumsum(delta[:total]) > 0
    out = np.empty(total, np.uint8)
    out[~in_tail] = heads
    out[in_tail] = p.tail
    return out


def _chunk(p: PacketColumns, off: I64, lo: int, hi: int) -> PacketColumns:
    """Packets ``lo:hi`` of ``p``, whose tail offsets are ``off``."""
    t_lo = int(off[lo])
    t_hi = int(off[hi - 1] + p.tail_len[hi - 1])
    cols = {k: v[lo:hi] for k, v in p.columns().items()}
    return PacketColumns(**cols, tail=p.tail[t_lo:t_hi])


def global_header(nanosecond: bool = False) -> bytes:
    """The 24-byte pcap file header (little-endian, Ethernet, snaplen 65535)."""
    magic = PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US
    head = np.array([(magic, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)], _GLOBAL)
    return head.tobytes()


_GLOBAL = np.dtype(
    [("magic", "<u4"), ("major", "<u2"), ("minor", "<u2"), ("zone", "<i4"),
     ("sigfigs", "<u4"), ("snaplen", "<u4"), ("linktype", "<u4")]
)  # fmt: skip


def write_pcap(
    path: Path,
    packets: PacketColumns,
    local_networks: Sequence[str],
    *,
    nanosecond: bool = False,
    chunk: int = 1 << 18,
) -> int:
    """Write ``packets`` (already in time order) to ``path``; return the packet count.

    Frames whose source lies in ``local_networks`` go from the sensor to the
    gateway; all others come from the gateway to the sensor.
    """
    outbound = np.zeros(len(packets), bool)
    for net in local_networks:
        network = ipaddress.IPv4Network(net)
        mask = np.uint32(int(network.netmask))
        outbound |= (packets.src & mask) == np.uint32(int(network.network_address))
    off = packets.tail_off
    with path.open("wb") as fh:
        fh.write(global_header(nanosecond))
        for lo in range(0, len(packets), chunk):
            hi = min(lo + chunk, len(packets))
            part = _chunk(packets, off, lo, hi)
            fh.write(_records(part, outbound[lo:hi], nanosecond).data)
    return len(packets)
