"""The numba kernel that walks raw packet records once and fills the decoded columns.

:func:`decode_records` runs in nopython mode with the GIL released, so a
pipeline can decode one chunk while another thread writes the previous one.
It is split into small helpers per header (IPv4, IPv6 and its extension
headers, TCP, UDP, ICMP) that numba compiles into the one kernel; the link
layers are in :mod:`teiten.decode.link`, the compile switches in
:mod:`teiten.decode.jit`. Each helper
reads only bytes inside ``[pos, bound)``, where ``bound`` never exceeds the
record's captured length, and reports problems as a ``DECODE_ERRORS`` code
instead of raising. The helpers are plain Python too (``NUMBA_DISABLE_JIT=1``),
which the tests use to prove that no read goes past a record's end.

The helpers are inlined at numba IR level and numba's reference counting is
switched off (``_nrt=False``): the kernel allocates nothing, and with it on
each helper taking the :class:`Columns` tuple pays an atomic incref/decref per
output array, which cut the speed from ~28 M to ~6 M packets/s.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from teiten.decode.jit import U8, _u16, _u32, helper, kernel
from teiten.decode.link import NET_IP4, NET_IP6, NET_OTHER, NET_SNIFF, _link
from teiten.schema import decode_error_code

U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]

NOT_IP = decode_error_code("not_ip")
TRUNCATED_IP = decode_error_code("truncated_ip")
BAD_IP_HEADER = decode_error_code("bad_ip_header")
TRUNCATED_L4 = decode_error_code("truncated_l4")
BAD_TCP_HEADER = decode_error_code("bad_tcp_header")
TRUNCATED_EXT = decode_error_code("truncated_ext")
FRAGMENT = decode_error_code("fragment")
TRUNCATED_PORTS = decode_error_code("truncated_ports")

MAX_IP6_EXT_HEADERS = 8
MAX_TCP_OPTIONS = 40  # options are at most 40 bytes, each step advances ≥ 1


class Columns(NamedTuple):
    """The preallocated arrays the kernel writes; slot ``i`` belongs to record ``i``."""

    ip_version: U8
    src_ip4: U32
    dst_ip4: U32
    src_ip6: U8
    dst_ip6: U8
    proto: U8
    src_port: U16
    dst_port: U16
    tcp_flags: U8
    tcp_seq: U32
    tcp_ack: U32
    tcp_window: U16
    tcp_options_len: U8
    tcp_mss: U16
    ip_id: U16
    ip_ttl: U8
    ip_len: U16
    ip_frag: U16
    payload_len: U16
    decode_error: U8
    payload_offset: I64
    payload_caplen: U32


@helper
def _payload(out: Columns, i: int, p: int, bound: int, stated_end: int) -> None:
    """Record the payload after the last decoded header, which ends at ``p``."""
    stated = min(max(stated_end - p, 0), 0xFFFF)
    out.payload_len[i] = stated
    if bound > p:
        out.payload_offset[i] = p
        out.payload_caplen[i] = bound - p


@helper
def _tcp_mss(data: U8, p: int, stop: int) -> int:
    """Value of the MSS option among the TCP options in ``[p, stop)``, 0 if absent."""
    for _ in range(MAX_TCP_OPTIONS):
        if p >= stop:
            break
        kind = data[p]
        if kind == 0:
            break
        if kind == 1:
            p += 1
            continue
        if p + 1 >= stop:
            break
        length = int(data[p + 1])
        if length < 2 or p + length > stop:
            break
        if kind == 2 and length == 4:
            return _u16(data, p + 2)
        p += length
    return 0


@helper
def _tcp_partial(data: U8, p: int, avail: int, i: int, out: Columns) -> None:
    """Keep what fits of a TCP header cut short by the capture."""
    if avail >= 4:
        out.src_port[i] = _u16(data, p)
        out.dst_port[i] = _u16(data, p + 2)
    if avail >= 8:
        out.tcp_seq[i] = _u32(data, p + 4)
    if avail >= 12:
        out.tcp_ack[i] = _u32(data, p + 8)
    if avail >= 14:
        out.tcp_flags[i] = data[p + 13]
    if avail >= 16:
        out.tcp_window[i] = _u16(data, p + 14)


@helper
def _tcp(data: U8, p: int, bound: int, stated_end: int, i: int, out: Columns) -> int:
    avail = bound - p
    _tcp_partial(data, p, avail, i, out)
    if avail < 4:
        return TRUNCATED_PORTS
    if avail < 20:
        return TRUNCATED_L4
    header = (int(data[p + 12]) >> 4) * 4
    if header < 20:
        return BAD_TCP_HEADER
    out.tcp_options_len[i] = header - 20
    out.tcp_mss[i] = _tcp_mss(data, p + 20, min(p + header, bound))
    _payload(out, i, p + header, bound, stated_end)
    return TRUNCATED_L4 if header > avail else 0


@helper
def _udp(data: U8, p: int, bound: int, stated_end: int, i: int, out: Columns) -> int:
    avail = bound - p
    if avail < 4:
        return TRUNCATED_PORTS
    out.src_port[i] = _u16(data, p)
    out.dst_port[i] = _u16(data, p + 2)
    _payload(out, i, p + 8, bound, stated_end)
    return TRUNCATED_L4 if avail < 8 else 0


@helper
def _icmp(data: U8, p: int, bound: int, stated_end: int, i: int, out: Columns) -> int:
    """ICMP and ICMPv6: type into ``src_port``, code into ``dst_port``."""
    avail = bound - p
    if avail >= 2:
        out.src_port[i] = data[p]
        out.dst_port[i] = data[p + 1]
    _payload(out, i, p + 8, bound, stated_end)
    return TRUNCATED_L4 if avail < 8 else 0


@helper
def _l4(data: U8, p: int, bound: int, stated_end: int, proto: int, i: int, out: Columns) -> int:
    if proto == 6:
        return _tcp(data, p, bound, stated_end, i, out)
    if proto == 17:
        return _udp(data, p, bound, stated_end, i, out)
    if proto == 1 or proto == 58:
        return _icmp(data, p, bound, stated_end, i, out)
    _payload(out, i, p, bound, stated_end)
    return 0


@helper
def _ipv4(data: U8, p: int, end: int, i: int, out: Columns) -> int:
    avail = end - p
    if avail < 1:
        return TRUNCATED_IP
    if data[p] >> 4 != 4:
        return BAD_IP_HEADER
    out.ip_version[i] = 4
    if avail < 20:
        return TRUNCATED_IP
    header = (int(data[p]) & 0xF) * 4
    total = _u16(data, p + 2)
    frag = _u16(data, p + 6)
    proto = int(data[p + 9])
    out.ip_len[i] = total
    out.ip_id[i] = _u16(data, p + 4)
    out.ip_frag[i] = frag
    out.ip_ttl[i] = data[p + 8]
    out.proto[i] = proto
    out.src_ip4[i] = _u32(data, p + 12)
    out.dst_ip4[i] = _u32(data, p + 16)
    if total == 0 and header >= 20:  # segmentation offload: the length is the captured one
        total = min(avail, 0xFFFF)
    if header < 20 or total < header:
        return BAD_IP_HEADER
    if avail < header:
        return TRUNCATED_IP
    stated_end = p + total
    bound = min(stated_end, end)
    if frag & 0x1FFF:  # a later fragment: no transport header here
        _payload(out, i, p + header, bound, stated_end)
        return FRAGMENT
    return _l4(data, p + header, bound, stated_end, proto, i, out)


@helper
def _ipv6_fragment(data: U8, p: int, i: int, out: Columns) -> bool:
    """Record a fragment header (as IPv4-style flags+offset); True if it is the first."""
    field = _u16(data, p + 2)
    offset = field >> 3
    out.ip_id[i] = _u16(data, p + 6)  # low 16 bits of the 32-bit identification
    out.ip_frag[i] = offset | (0x2000 if field & 1 else 0)
    return offset == 0


@helper
def _ipv6_ext(
    data: U8, p: int, bound: int, nh: int, i: int, out: Columns
) -> tuple[int, int, bool, int]:
    """Walk extension headers: ``(pos, next header, is first fragment, error)``."""
    for _ in range(MAX_IP6_EXT_HEADERS):
        if nh == 0 or nh == 43 or nh == 60 or nh == 51:  # hop-by-hop, routing, dest opts, AH
            if bound - p < 2:
                return p, nh, True, TRUNCATED_EXT
            size = (int(data[p + 1]) + 2) * 4 if nh == 51 else (int(data[p + 1]) + 1) * 8
        elif nh == 44:  # fragment
            size = 8
        else:
            break
        if bound - p < size:
            return p, nh, True, TRUNCATED_EXT
        if nh == 44 and not _ipv6_fragment(data, p, i, out):
            return p + size, int(data[p]), False, 0
        nh = int(data[p])
        p += size
    return p, nh, True, 0


@helper
def _ipv6_addresses(data: U8, p: int, i: int, out: Columns) -> None:
    for k in range(16):
        out.src_ip6[i, k] = data[p + 8 + k]
        out.dst_ip6[i, k] = data[p + 24 + k]


@helper
def _ipv6(data: U8, p: int, end: int, i: int, out: Columns) -> int:
    avail = end - p
    if avail < 1:
        return TRUNCATED_IP
    if data[p] >> 4 != 6:
        return BAD_IP_HEADER
    out.ip_version[i] = 6
    if avail < 40:
        return TRUNCATED_IP
    length = _u16(data, p + 4)
    out.ip_len[i] = min(length + 40, 0xFFFF)
    out.ip_ttl[i] = data[p + 7]
    _ipv6_addresses(data, p, i, out)
    stated_end = p + 40 + length if length else end  # 0: jumbogram / offload, as captured
    bound = min(stated_end, end)
    q, nh, first, error = _ipv6_ext(data, p + 40, bound, int(data[p + 6]), i, out)
    out.proto[i] = nh
    if error:
        return error
    if not first:
        _payload(out, i, q, bound, stated_end)
        return FRAGMENT
    return _l4(data, q, bound, stated_end, nh, i, out)


@helper
def _record(data: U8, p: int, end: int, linktype: int, i: int, out: Columns) -> int:
    """Decode one record held in ``data[p:end]``; returns its decode-error code."""
    ethertype = _u16(data, p + 12) if linktype == 1 and end - p >= 14 else 0
    if ethertype == 0x0800 or ethertype == 0x86DD:  # untagged Ethernet: no call to _link
        p, net = p + 14, NET_IP4 if ethertype == 0x0800 else NET_IP6
    else:
        p, net, error = _link(data, p, end, linktype)
        if error:
            return error
    if net == NET_SNIFF:
        if p >= end:
            return TRUNCATED_IP
        version = data[p] >> 4
        net = NET_IP4 if version == 4 else NET_IP6 if version == 6 else NET_OTHER
    if net == NET_IP4:
        return _ipv4(data, p, end, i, out)
    if net == NET_IP6:
        return _ipv6(data, p, end, i, out)
    return BAD_IP_HEADER


@kernel
def decode_records(data: U8, offset: I64, caplen: U32, linktype: U16, out: Columns) -> None:
    """Decode every record of a chunk into ``out`` (one pass, no Python objects, no GIL).

    A record whose ``offset``/``caplen`` point outside ``data`` is clipped to it,
    so even a malformed chunk is never read out of bounds.
    """
    size = data.shape[0]
    for i in range(offset.shape[0]):
        start = min(max(int(offset[i]), 0), size)
        end = min(start + int(caplen[i]), size)
        out.decode_error[i] = _record(data, start, end, int(linktype[i]), i, out)
