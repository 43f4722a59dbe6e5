"""Link layers: from a record's first byte to the start of its outer IP header.

:func:`_link` walks Ethernet (VLAN, QinQ, LLC/SNAP, MPLS, PPPoE, MACsec, …),
PPP, Cisco HDLC, NFLOG, 802.11 data frames, Frame Relay and the other link
types of docs/decoding.md, and says what comes next (``NET_*``) or why it
cannot go on (a ``DECODE_ERRORS`` code). Each function reads only bytes inside
``[p, end)`` and stays a separate compiled function (``called``): inlining
them into the kernel made it take minutes and gigabytes to compile.
"""

from __future__ import annotations

from teiten.decode.jit import U8, _u16, _u32, called, helper
from teiten.schema import decode_error_code

UNSUPPORTED_LINK = decode_error_code("unsupported_link")
TRUNCATED_LINK = decode_error_code("truncated_link")
NOT_IP = decode_error_code("not_ip")

# What the link layer says comes next.
NET_IP4 = 4
NET_IP6 = 6
NET_SNIFF = 1  # raw IP: the version nibble decides
NET_OTHER = 0
NET_MPLS = 2  # an MPLS label stack follows (PPP protocol 0x0281)

MAX_LINK_STEPS = 8  # VLAN tags, LLC/SNAP, MPLS, PPPoE headers walked before giving up
MAX_MPLS_LABELS = 16


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
