"""The numba kernel that walks raw packet records once and fills the decoded columns.

:func:`decode_records` runs in nopython mode with the GIL released, so a
pipeline can decode one chunk while another thread writes the previous one.
It is split into small helpers per header (link, IPv4, IPv6 and its extension
headers, TCP, UDP, ICMP) that numba compiles into the one kernel. Each helper
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

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar, cast

import numpy as np
import numpy.typing as npt
from numba import njit

from teiten.schema import decode_error_code

U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]
F = TypeVar("F", bound=Callable[..., Any])

UNSUPPORTED_LINK = decode_error_code("unsupported_link")
TRUNCATED_LINK = decode_error_code("truncated_link")
NOT_IP = decode_error_code("not_ip")
TRUNCATED_IP = decode_error_code("truncated_ip")
BAD_IP_HEADER = decode_error_code("bad_ip_header")
TRUNCATED_L4 = decode_error_code("truncated_l4")
BAD_TCP_HEADER = decode_error_code("bad_tcp_header")
TRUNCATED_EXT = decode_error_code("truncated_ext")
FRAGMENT = decode_error_code("fragment")
TRUNCATED_PORTS = decode_error_code("truncated_ports")

# What the link layer says comes next.
NET_IP4 = 4
NET_IP6 = 6
NET_SNIFF = 1  # raw IP: the version nibble decides
NET_OTHER = 0
NET_MPLS = 2  # an MPLS label stack follows (PPP protocol 0x0281)

MAX_LINK_STEPS = 8  # VLAN tags, LLC/SNAP, MPLS, PPPoE headers walked before giving up
MAX_MPLS_LABELS = 16
MAX_IP6_EXT_HEADERS = 8
MAX_TCP_OPTIONS = 40  # options are at most 40 bytes, each step advances ≥ 1


# numba's (private) switch for reference counting; see the module docstring.
NO_REFCOUNT: dict[str, Any] = {"_nrt": False}


def kernel(func: F) -> F:
    """``@njit(cache=True, nogil=True)`` without reference counting, typed for mypy."""
    return cast(F, njit(cache=True, nogil=True, **NO_REFCOUNT)(func))


def helper(func: F) -> F:
    """Like :func:`kernel`, for the helpers numba inlines into the kernel (``inline="always"``)."""
    return cast(F, njit(cache=True, nogil=True, inline="always", **NO_REFCOUNT)(func))


def called(func: F) -> F:
    """Like :func:`kernel`, for link-layer helpers that stay separate functions.

    They take only the record bytes and positions (no :class:`Columns`), so a
    call costs little; inlining them into every caller made the kernel take
    minutes and gigabytes to compile.
    """
    return cast(F, njit(cache=True, nogil=True, **NO_REFCOUNT)(func))


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
def _u16(data: U8, p: int) -> int:
    return (int(data[p]) << 8) | int(data[p + 1])


@helper
def _u32(data: U8, p: int) -> int:
    return (_u16(data, p) << 16) | _u16(data, p + 2)


@helper
def _ethertype_net(ethertype: int) -> int:
    if ethertype == 0x0800:
        return NET_IP4
    if ethertype == 0x86DD:
        return NET_IP6
    return NET_OTHER


@helper
def _family_net(family: int) -> int:
    """BSD address family (NULL / LOOP link types) → what comes next."""
    if family == 2:
        return NET_IP4
    if family == 24 or family == 28 or family == 30:
        return NET_IP6
    return NET_OTHER


@helper
def _ppp_net(protocol: int) -> int:
    """PPP protocol number → what comes next (0x0021 IPv4, 0x0057 IPv6, 0x0281 MPLS)."""
    if protocol == 0x0021:
        return NET_IP4
    if protocol == 0x0057:
        return NET_IP6
    if protocol == 0x0281 or protocol == 0x0283:
        return NET_MPLS
    return NET_OTHER


@helper
def _found(p: int, net: int) -> tuple[int, int, int]:
    """``(pos, net, error)`` once the link layer named what follows."""
    return p, net, NOT_IP if net == NET_OTHER else 0


@called
def _ppp_next(data: U8, p: int, end: int, protocol: int) -> tuple[int, int, int]:
    """What follows a PPP protocol field that ends at ``p``."""
    net = _ppp_net(protocol)
    if net == NET_MPLS:
        return _mpls(data, p, end)
    return _found(p, net)


@called
def _mpls(data: U8, p: int, end: int) -> tuple[int, int, int]:
    """Skip an MPLS label stack; the first nibble after it tells IPv4 from IPv6."""
    for _ in range(MAX_MPLS_LABELS):
        if end - p < 4:
            return p, NET_OTHER, TRUNCATED_LINK
        bottom = data[p + 2] & 1
        p += 4
        if bottom:
            if p >= end:
                return p, NET_OTHER, TRUNCATED_LINK
            version = data[p] >> 4
            return _found(p, NET_IP4 if version == 4 else NET_IP6 if version == 6 else NET_OTHER)
    return p, NET_OTHER, NOT_IP


@called
def _ethertype(data: U8, p: int, end: int, ethertype: int) -> tuple[int, int, int]:
    """Follow an EtherType through VLAN tags, LLC/SNAP, MPLS and PPPoE: ``(pos, net, error)``."""
    for _ in range(MAX_LINK_STEPS):
        if ethertype == 0x8100 or ethertype == 0x88A8 or ethertype == 0x9100:  # 802.1Q/ad, QinQ
            if end - p < 4:
                return p, NET_OTHER, TRUNCATED_LINK
            ethertype = _u16(data, p + 2)
            p += 4
        elif ethertype < 0x0600:  # 802.3 length: IP only behind LLC/SNAP with a zero OUI
            if end - p < 8:
                return p, NET_OTHER, TRUNCATED_LINK
            snap = data[p] == 0xAA and data[p + 1] == 0xAA and data[p + 2] == 0x03
            if not snap or data[p + 3] != 0 or data[p + 4] != 0 or data[p + 5] != 0:
                return p, NET_OTHER, NOT_IP
            ethertype = _u16(data, p + 6)
            p += 8
        elif ethertype == 0x8847 or ethertype == 0x8848:  # MPLS unicast / multicast
            return _mpls(data, p, end)
        elif ethertype == 0x8864:  # PPPoE session: 6-byte header, then the PPP protocol
            if end - p < 8:
                return p, NET_OTHER, TRUNCATED_LINK
            return _ppp_next(data, p + 8, end, _u16(data, p + 6))
        elif ethertype == 0x88E5:  # MACsec: readable only when neither encrypted nor changed
            if end - p < 8:
                return p, NET_OTHER, TRUNCATED_LINK
            tag = 14 if data[p] & 0x20 else 6  # SecTAG, with the SCI when the SC bit is set
            if end - p < tag + 2:
                return p, NET_OTHER, TRUNCATED_LINK
            if data[p] & 0x0C:
                return p, NET_OTHER, NOT_IP
            ethertype = _u16(data, p + tag)
            p += tag + 2
        elif ethertype == 0x8926:  # VN-Tag: 4 bytes, then the EtherType
            if end - p < 6:
                return p, NET_OTHER, TRUNCATED_LINK
            ethertype = _u16(data, p + 4)
            p += 6
        elif ethertype == 0x8903:  # Cisco FabricPath: FTag/TTL, then the inner Ethernet header
            if end - p < 16:
                return p, NET_OTHER, TRUNCATED_LINK
            ethertype = _u16(data, p + 14)
            p += 16
        elif ethertype == 0x894F:  # NSH: length in 4-byte words, next protocol in byte 3
            if end - p < 8:
                return p, NET_OTHER, TRUNCATED_LINK
            size = (int(data[p + 1]) & 0x3F) * 4
            following = int(data[p + 3])
            if size < 8 or end - p < size:
                return p, NET_OTHER, TRUNCATED_LINK if size >= 8 else NOT_IP
            p += size
            if following == 1:
                return _found(p, NET_IP4)
            if following == 2:
                return _found(p, NET_IP6)
            if following == 5:
                return _mpls(data, p, end)
            if following != 3 or end - p < 14:
                return p, NET_OTHER, NOT_IP if following != 3 else TRUNCATED_LINK
            ethertype = _u16(data, p + 12)
            p += 14
        else:
            return _found(p, _ethertype_net(ethertype))
    return p, NET_OTHER, NOT_IP


@called
def _ppp(data: U8, p: int, end: int) -> tuple[int, int, int]:
    """PPP with or without the HDLC address/control bytes ``ff 03``; protocol maybe 1 byte."""
    if end - p >= 2 and data[p] == 0xFF and data[p + 1] == 0x03:
        p += 2
    if end - p < 1:
        return p, NET_OTHER, TRUNCATED_LINK
    if data[p] & 1:  # protocol field compressed to one byte
        return _ppp_next(data, p + 1, end, int(data[p]))
    if end - p < 2:
        return p, NET_OTHER, TRUNCATED_LINK
    return _ppp_next(data, p + 2, end, _u16(data, p))


@called
def _nflog(data: U8, p: int, end: int) -> tuple[int, int, int]:
    """Linux NFLOG: family byte, version, resource id, then TLVs; the payload is TLV type 9.

    TLV length and type are in the capturing host's byte order: little endian
    unless the first TLV only makes sense big endian.
    """
    if end - p < 4:
        return p, NET_OTHER, TRUNCATED_LINK
    family = int(data[p])
    net = NET_IP4 if family == 2 else NET_IP6 if family == 10 else NET_OTHER
    q = p + 4
    little = True
    if end - q >= 4:
        length_le = int(data[q]) | (int(data[q + 1]) << 8)
        little = 4 <= length_le <= end - q
    for _ in range(64):  # NFLOG has fewer than 20 TLV types
        if end - q < 4:
            return q, NET_OTHER, NOT_IP
        if little:
            length = int(data[q]) | (int(data[q + 1]) << 8)
            kind = int(data[q + 2]) | (int(data[q + 3]) << 8)
        else:
            length = _u16(data, q)
            kind = _u16(data, q + 2)
        if length < 4:
            return q, NET_OTHER, NOT_IP
        if (kind & 0x7FFF) == 9:
            return _found(q + 4, net)
        q += (length + 3) & ~3
    return q, NET_OTHER, NOT_IP


@called
def _link(data: U8, p: int, end: int, linktype: int) -> tuple[int, int, int]:
    """Decode the link header: ``(pos of the network header, net, error)``.

    docs/decoding.md has the table of link types this covers.
    """
    if linktype == 1:  # Ethernet
        if end - p < 14:
            return p, NET_OTHER, TRUNCATED_LINK
        return _ethertype(data, p + 14, end, _u16(data, p + 12))
    if linktype == 12 or linktype == 14 or linktype == 101:  # raw IP
        return p, NET_SNIFF, 0
    if linktype == 228:
        return p, NET_IP4, 0
    if linktype == 229:
        return p, NET_IP6, 0
    if linktype == 113:  # Linux SLL: protocol at bytes 14-15
        if end - p < 16:
            return p, NET_OTHER, TRUNCATED_LINK
        return _ethertype(data, p + 16, end, _u16(data, p + 14))
    if linktype == 276:  # Linux SLL2: protocol at bytes 0-1, 20-byte header
        if end - p < 20:
            return p, NET_OTHER, TRUNCATED_LINK
        return _ethertype(data, p + 20, end, _u16(data, p))
    if linktype == 0 or linktype == 108:  # BSD NULL (host order) / LOOP (network order)
        if end - p < 4:
            return p, NET_OTHER, TRUNCATED_LINK
        family = _u32(data, p)
        if linktype == 0 and family > 0xFFFF:  # written little-endian
            family = ((family & 0xFF) << 24) | ((family & 0xFF00) << 8) | (family >> 24)
        return _found(p + 4, _family_net(family))
    if linktype == 9 or linktype == 50:  # PPP, PPP in HDLC-like framing
        if linktype == 50 and end - p >= 1 and (data[p] == 0x0F or data[p] == 0x8F):
            return _chdlc(data, p, end)  # libpcap also writes Cisco HDLC as 50
        return _ppp(data, p, end)
    if linktype == 104:  # Cisco HDLC
        return _chdlc(data, p, end)
    if linktype == 51:  # PPPoE without Ethernet: 6-byte PPPoE header, then PPP protocol
        if end - p < 8:
            return p, NET_OTHER, TRUNCATED_LINK
        return _ppp_next(data, p + 8, end, _u16(data, p + 6))
    if linktype == 239:
        return _nflog(data, p, end)
    return _other_link(data, p, end, linktype)


@called
def _other_link(data: U8, p: int, end: int, linktype: int) -> tuple[int, int, int]:
    """The rarer link types tshark decodes: FDDI, Token Ring, 802.11, ARCNET, Frame Relay…"""
    if linktype == 10:  # FDDI: frame control, two addresses, then LLC
        if end - p < 13:
            return p, NET_OTHER, TRUNCATED_LINK
        return _ethertype(data, p + 13, end, 0)
    if linktype == 6:  # Token Ring: AC, FC, two addresses, source routing, then LLC
        if end - p < 15:
            return p, NET_OTHER, TRUNCATED_LINK
        q = p + 14
        if data[p + 8] & 0x80:
            q += int(data[q]) & 0x1F
        return _ethertype(data, q, end, 0)
    if linktype == 105:
        return _wlan(data, p, end)
    if linktype == 7 or linktype == 129:  # ARCNET (Linux adds a 2-byte offset)
        q = p + (4 if linktype == 129 else 2)
        if end - q < 1:
            return p, NET_OTHER, TRUNCATED_LINK
        protocol = int(data[q])
        q += 1 if protocol == 240 or protocol == 241 else 4  # RFC 1051 / RFC 1201 header
        if protocol == 212 or protocol == 240:
            return q, NET_IP4, 0
        if protocol == 196:
            return q, NET_IP6, 0
        return q, NET_OTHER, NOT_IP
    if linktype == 107:
        return _frame_relay(data, p, end)
    if linktype == 226:  # Solaris ipnet: 24-byte header, address family in byte 1
        if end - p < 24:
            return p, NET_OTHER, TRUNCATED_LINK
        family = int(data[p + 1])
        return _found(p + 24, NET_IP4 if family == 2 else NET_IP6 if family == 26 else NET_OTHER)
    if linktype == 149 or linktype == 258:  # Apple PKTAP: little-endian header length, DLT
        if end - p < 8:
            return p, NET_OTHER, TRUNCATED_LINK
        size = int(data[p]) | (int(data[p + 1]) << 8) | (int(data[p + 2]) << 16)
        inner = int(data[p + 4]) | (int(data[p + 5]) << 8)
        if size < 8 or end - p < size + 14 or inner != 1 or data[p + 3] or data[p + 6]:
            return p, NET_OTHER, NOT_IP
        return _ethertype(data, p + size + 14, end, _u16(data, p + size + 12))
    return p, NET_OTHER, UNSUPPORTED_LINK


@called
def _wlan(data: U8, p: int, end: int) -> tuple[int, int, int]:
    """IEEE 802.11 data frames (unprotected) with LLC/SNAP; any other frame is not IP."""
    if end - p < 24:
        return p, NET_OTHER, TRUNCATED_LINK
    control, flags = int(data[p]), int(data[p + 1])
    if (control >> 2) & 3 != 2 or control & 0x40 or flags & 0x40:  # not data, null, protected
        return p, NET_OTHER, NOT_IP
    size = 24
    if flags & 3 == 3:  # four addresses
        size += 6
    if control & 0x80:  # QoS control, and HT control when the order bit is set
        size += 2 + (4 if flags & 0x80 else 0)
    return _ethertype(data, p + size, end, 0)


@called
def _frame_relay(data: U8, p: int, end: int) -> tuple[int, int, int]:
    """Frame Relay: 2-byte address, then RFC 2427 (UI 0x03, NLPID) or a Cisco EtherType."""
    if end - p < 4:
        return p, NET_OTHER, TRUNCATED_LINK
    q = p + 2
    if data[q] != 0x03:
        return _ethertype(data, q + 2, end, _u16(data, q))
    q += 1
    if data[q] == 0x00:  # padding before the NLPID
        q += 1
    if q >= end:
        return p, NET_OTHER, TRUNCATED_LINK
    nlpid = int(data[q])
    if nlpid == 0xCC:
        return q + 1, NET_IP4, 0
    if nlpid == 0x8E:
        return q + 1, NET_IP6, 0
    snap = nlpid == 0x80 and end - q >= 6  # SNAP: zero OUI, then an EtherType
    if snap and data[q + 1] == 0 and data[q + 2] == 0 and data[q + 3] == 0:
        return _ethertype(data, q + 6, end, _u16(data, q + 4))
    return p, NET_OTHER, NOT_IP


@called
def _chdlc(data: U8, p: int, end: int) -> tuple[int, int, int]:
    """Cisco HDLC: address, control, then an EtherType."""
    if end - p < 4:
        return p, NET_OTHER, TRUNCATED_LINK
    return _ethertype(data, p + 4, end, _u16(data, p + 2))


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
