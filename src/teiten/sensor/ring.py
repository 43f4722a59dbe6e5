"""A Linux AF_PACKET socket with a TPACKET_V3 receive ring, walked one block at a time.

The kernel writes packets into blocks of a ring shared with this process
(``mmap``); when a block is full, or ``retire_ms`` after its first packet, it
hands the block over (``block_status`` gets ``TP_STATUS_USER``). :func:`walk_block`
(numba, no Python object per packet, GIL released) turns every packet of one
retired block into a pcap record (nanosecond timestamps) in an output buffer;
then :meth:`Ring.release` gives the block back. The per-packet layout is
``struct tpacket3_hdr`` (``linux/if_packet.h``): next offset, seconds,
nanoseconds, captured and wire length, status, MAC offset; a VLAN tag the
NIC stripped (``TP_STATUS_VLAN_VALID``) is put back after the two MAC
addresses, as libpcap does.

The socket is opened with protocol 0 (it receives nothing), gets its filter,
version and ring, and only then is bound to the interface for every protocol:
no packet ever bypasses the filter. Opening needs ``CAP_NET_RAW``; the open
socket keeps working after privileges are dropped. On the loopback device
every packet would be seen twice (leaving and arriving); outgoing copies are
ignored there (``PACKET_IGNORE_OUTGOING``, and in the walker for older kernels).
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import select
import socket
import struct
from dataclasses import dataclass

import numpy as np

from teiten.capture.compressed import jit
from teiten.capture.pcap import u32
from teiten.capture.source import U8
from teiten.errors import ConfigError
from teiten.sensor.bpf import LINKTYPE_ETHERNET, Program

SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_IGNORE_OUTGOING = 23
TPACKET_V3 = 2
SO_ATTACH_FILTER = 26
ETH_P_ALL = 0x0003
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
PACKET_OUTGOING = 4
BLOCK_HEADER = 48
"""``struct tpacket_block_desc``: status at 8, packet count at 12, first packet's offset at 16."""
PACKET_HEADER = 48
"""``TPACKET_ALIGN(sizeof(struct tpacket3_hdr))``; ``struct sockaddr_ll`` follows it."""
RECORD_HEADER = 16
VLAN_BYTES = 4
MIN_BLOCK = 1 << 20
REQ3 = struct.Struct("=7I")
STATS3 = struct.Struct("=3I")


@dataclass(frozen=True)
class Layout:
    """Sizes of the ring (``struct tpacket_req3``), chosen from ``ring_mb`` and ``snaplen``."""

    block_size: int
    block_nr: int
    frame_size: int
    retire_ms: int

    @classmethod
    def choose(cls, ring_mb: int, snaplen: int, retire_ms: int = 100) -> Layout:
        """Blocks of ≥ 1 MiB (a power of two holding the largest packet), ``ring_mb`` in all."""
        frame = (PACKET_HEADER + 32 + 16 + snaplen + 15) & ~15
        block = MIN_BLOCK
        while block < frame:
            block <<= 1
        return cls(block, max(2, (ring_mb << 20) // block), frame, retire_ms)

    @property
    def frame_nr(self) -> int:
        return (self.block_size // self.frame_size) * self.block_nr

    def request(self) -> bytes:
        """``struct tpacket_req3``: block size and count, frame size and count, retire timeout."""
        return REQ3.pack(self.block_size, self.block_nr, self.frame_size, self.frame_nr,
                         self.retire_ms, 0, 0)  # fmt: skip


@jit
def _u16(buf: U8, i: int) -> int:
    return int(np.int64(buf[i]) | (np.int64(buf[i + 1]) << 8))


@jit
def _put32(out: U8, i: int, v: int) -> None:
    out[i] = v & 0xFF
    out[i + 1] = (v >> 8) & 0xFF
    out[i + 2] = (v >> 16) & 0xFF
    out[i + 3] = (v >> 24) & 0xFF


@jit
def walk_block(
    ring: U8, start: int, size: int, out: U8, pos: int, ether: bool, skip_outgoing: bool
) -> tuple[int, int, int]:
    """Append a pcap record for each packet of the block at ``ring[start:start+size]``.

    Returns ``(pos, packets, wire_bytes)``: the new end of ``out`` and what was
    written. ``out`` needs ``size`` free bytes (a record header is smaller than
    a packet's ring header, even with a VLAN tag put back). A packet whose
    offsets fall outside the block ends the walk (the kernel never writes one).
    """
    count = u32(ring, start + 12, False)
    off = u32(ring, start + 16, False)
    packets = 0
    wire = 0
    for _ in range(count):
        if off < BLOCK_HEADER or off + PACKET_HEADER > size:
            break
        p = start + off
        snap = u32(ring, p + 12, False)
        mac = _u16(ring, p + 24)
        if mac + snap > size - off:
            break
        status = u32(ring, p + 20, False)
        if not (skip_outgoing and ring[p + PACKET_HEADER + 10] == PACKET_OUTGOING):
            vlan = ether and (status & TP_STATUS_VLAN_VALID) != 0 and snap >= 12
            extra = VLAN_BYTES if vlan else 0
            _put32(out, pos, u32(ring, p + 4, False))
            _put32(out, pos + 4, u32(ring, p + 8, False))
            _put32(out, pos + 8, snap + extra)
            _put32(out, pos + 12, u32(ring, p + 16, False) + extra)
            q = pos + RECORD_HEADER
            src = p + mac
            if vlan:
                out[q : q + 12] = ring[src : src + 12]
                tpid = _u16(ring, p + 36) if status & TP_STATUS_VLAN_TPID_VALID else 0x8100
                tci = u32(ring, p + 32, False)
                out[q + 12] = (tpid >> 8) & 0xFF
                out[q + 13] = tpid & 0xFF
                out[q + 14] = (tci >> 8) & 0xFF
                out[q + 15] = tci & 0xFF
                out[q + 16 : q + 16 + snap - 12] = ring[src + 12 : src + snap]
            else:
                out[q : q + snap] = ring[src : src + snap]
            pos = q + snap + extra
            packets += 1
            wire += u32(ring, p + 16, False)
        step = u32(ring, p, False)
        if step == 0:
            break
        off += step
    return pos, packets, wire


@dataclass
class KernelStats:
    """The socket's counters since it was opened (the kernel resets them on every read)."""

    packets: int = 0
    """Packets that passed the filter, dropped ones included."""
    drops: int = 0
    """Packets the kernel dropped because the ring was full."""
    freeze_q: int = 0
    """Times the ring was frozen (``tp_freeze_q_cnt``)."""


class Ring:
    """An open capture socket and its mapped ring on one interface."""

    def __init__(self, interface: str, program: Program, layout: Layout, linktype: int) -> None:
        self.interface, self.layout = interface, layout
        self.ether = linktype == LINKTYPE_ETHERNET
        self.skip_outgoing = interface == "lo"
        self.stats = KernelStats()
        self.next = 0
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise ConfigError(
                "capture: opening a packet socket needs CAP_NET_RAW (root, or the capability; "
                'docs/sensor.md, "Passive capture")'
            ) from None
        try:
            self._setup(program)
        except OSError as e:
            self.sock.close()
            raise ConfigError(f"capture on {interface}: {e.strerror or e}") from None

    def _setup(self, program: Program) -> None:
        s, lay = self.sock, self.layout
        code = ctypes.create_string_buffer(program.code, len(program.code))
        fprog = struct.pack("HL", len(program), ctypes.addressof(code))  # struct sock_fprog
        s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        if self.skip_outgoing:
            with contextlib.suppress(OSError):  # before Linux 4.20: the walker skips them
                s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        s.setsockopt(SOL_PACKET, PACKET_RX_RING, lay.request())
        self.map = mmap.mmap(s.fileno(), lay.block_size * lay.block_nr, mmap.MAP_SHARED,
                             mmap.PROT_READ | mmap.PROT_WRITE)  # fmt: skip
        self.view: U8 = np.frombuffer(self.map, np.uint8)
        self.status = np.frombuffer(self.map, np.uint32)[2 :: lay.block_size // 4]
        """``block_status`` of every block."""
        s.bind((self.interface, ETH_P_ALL))
        self.poller = select.poll()
        self.poller.register(s.fileno(), select.POLLIN | select.POLLERR)

    def wait(self, timeout: float) -> int | None:
        """The index of the next retired block, waiting up to ``timeout`` s; None if none.

        A socket error (the interface went down or away) is raised as OSError once,
        after which the socket waits as before: a link that comes back is captured again.
        """
        if not self.status[self.next] & TP_STATUS_USER:
            events = self.poller.poll(int(timeout * 1000))
            if any(e & select.POLLERR for _, e in events):
                err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)  # and clears it
                if err:
                    raise OSError(err, os.strerror(err))
            if not self.status[self.next] & TP_STATUS_USER:
                return None
        return self.next

    def walk(self, block: int, out: U8, pos: int) -> tuple[int, int, int]:
        """:func:`walk_block` over retired ``block``, appending to ``out`` at ``pos``."""
        size = self.layout.block_size
        return walk_block(self.view, block * size, size, out, pos, self.ether, self.skip_outgoing)

    def release(self, block: int) -> None:
        """Hand ``block`` back to the kernel and move on to the next one."""
        self.status[block] = TP_STATUS_KERNEL
        self.next = (block + 1) % self.layout.block_nr

    def read_stats(self) -> KernelStats:
        """Add the kernel's counters since the last read (``PACKET_STATISTICS``) and return all."""
        raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, STATS3.size)
        packets, drops, freeze = STATS3.unpack(raw)
        self.stats.packets += packets
        self.stats.drops += drops
        self.stats.freeze_q += freeze
        return self.stats

    def close(self) -> None:
        """Unmap the ring and close the socket (the views must not be used afterwards)."""
        del self.view, self.status
        with contextlib.suppress(BufferError):  # a view still exported: it goes with the socket
            self.map.close()
        self.sock.close()


def warm_up() -> None:
    """Compile :func:`walk_block` now (before privileges are dropped; numba caches it)."""
    block = np.zeros(BLOCK_HEADER + PACKET_HEADER + 32, np.uint8)
    out = np.zeros(block.size, np.uint8)
    walk_block(block, 0, block.size, out, 0, True, False)
