"""Capture filters: a tcpdump-style expression compiled to classic BPF by the system libpcap.

The passive capture (:mod:`teiten.sensor.capture`) attaches the program to its
AF_PACKET socket with ``SO_ATTACH_FILTER``, so the kernel drops what the
sensor does not want before it reaches the ring. The expression is compiled
by libpcap itself (``libpcap.so.0.8``, Debian package ``libpcap0.8``, loaded
with :mod:`ctypes`): the language is exactly tcpdump's, and a mistake is one
:class:`~teiten.errors.ConfigError` line with libpcap's own message. The
program's final ``ret`` is the snapshot length, which is how the kernel
learns how many bytes of each packet to keep.

Without a ``filter`` the sensor captures what goes to its own ``networks``
(:func:`default_expression`); without networks either, everything
(:func:`accept_all`, built here without libpcap).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from teiten.errors import ConfigError

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
"""Link types of the files written: Ethernet, or bare IP (tun devices)."""
ARPHRD_LINKTYPES = {1: LINKTYPE_ETHERNET, 772: LINKTYPE_ETHERNET, 65534: LINKTYPE_RAW}
"""Interface hardware types (``/sys/class/net/IF/type``) the capture supports."""
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF
BPF_RET_K = 0x06
INSN = struct.Struct("=HBBI")
"""One ``struct sock_filter`` (``struct bpf_insn``): code, jt, jf, k."""
MAX_INSNS = 4096
"""The kernel's ``BPF_MAXINSNS``: longer programs are refused by ``SO_ATTACH_FILTER``."""


class _Insn(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint32),
    ]


class _Program(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_Insn))]


@dataclass(frozen=True)
class Program:
    """A classic BPF program as the kernel takes it: ``struct sock_filter`` records."""

    code: bytes
    expression: str
    """What it was compiled from (empty: built here, accepts every packet)."""

    def __len__(self) -> int:
        return len(self.code) // INSN.size

    def label(self) -> str:
        """What the program keeps, for ``sensor check`` and the capture's log line."""
        return repr(self.expression) if self.expression else "every packet"

    def instructions(self) -> list[tuple[int, int, int, int]]:
        """``(code, jt, jf, k)`` of each instruction, for tests and ``sensor check``."""
        return [INSN.unpack_from(self.code, i) for i in range(0, len(self.code), INSN.size)]


@cache
def libpcap() -> ctypes.CDLL:
    """The system libpcap; ConfigError naming the Debian package when it is missing."""
    names = [n for n in (ctypes.util.find_library("pcap"), "libpcap.so.0.8", "libpcap.so.1") if n]
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.pcap_open_dead.restype = ctypes.c_void_p
        lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.pcap_compile.restype = ctypes.c_int
        lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Program), ctypes.c_char_p,
                                     ctypes.c_int, ctypes.c_uint32]  # fmt: skip
        lib.pcap_geterr.restype = ctypes.c_char_p
        lib.pcap_geterr.argtypes = [ctypes.c_void_p]
        lib.pcap_freecode.argtypes = [ctypes.POINTER(_Program)]
        lib.pcap_close.argtypes = [ctypes.c_void_p]
        return lib
    raise ConfigError(
        "capture.filter: libpcap is not installed (Debian package libpcap0.8); "
        "it compiles the capture filter"
    )


def compile_filter(expression: str, linktype: int, snaplen: int) -> Program:
    """``expression`` (tcpdump syntax) as an optimised BPF program for ``linktype``."""
    if "\x00" in expression:
        raise ConfigError("capture.filter: NUL characters are not allowed")
    lib = libpcap()
    handle = lib.pcap_open_dead(linktype, snaplen)
    if not handle:
        raise ConfigError("capture.filter: libpcap could not start (out of memory)")
    prog = _Program()
    try:
        rc = lib.pcap_compile(handle, ctypes.byref(prog), expression.encode("utf-8"), 1,
                              PCAP_NETMASK_UNKNOWN)  # fmt: skip
        if rc != 0:
            message = (lib.pcap_geterr(handle) or b"syntax error").decode("utf-8", "replace")
            raise ConfigError(f"capture.filter {expression!r}: {message}")
        size = prog.bf_len * INSN.size
        code = ctypes.string_at(prog.bf_insns, size)
        lib.pcap_freecode(ctypes.byref(prog))
    finally:
        lib.pcap_close(handle)
    n = len(code) // INSN.size
    if not 0 < n <= MAX_INSNS:
        raise ConfigError(f"capture.filter {expression!r}: compiles to {n} BPF "
                          f"instructions (the kernel takes 1-{MAX_INSNS})")  # fmt: skip
    return Program(code, expression)


def accept_all(snaplen: int) -> Program:
    """The one-instruction program ``ret #snaplen``: every packet, cut at ``snaplen``."""
    return Program(INSN.pack(BPF_RET_K, 0, 0, snaplen), "")


def default_expression(networks: tuple[str, ...]) -> str:
    """``dst net A or dst net B …`` for the sensor's own networks (empty: none given)."""
    return " or ".join(f"dst net {n}" for n in networks)


def interface_linktype(interface: str) -> int:
    """The link type the capture writes for ``interface``; ConfigError if absent or unsupported."""
    if not interface or "/" in interface or interface in (".", ".."):
        raise ConfigError(f"capture.interface {interface!r}: not an interface name")
    try:
        hw = int((Path("/sys/class/net") / interface / "type").read_text().strip())
    except (OSError, ValueError):
        raise ConfigError(f"capture.interface {interface!r}: no such network interface") from None
    if hw not in ARPHRD_LINKTYPES:
        raise ConfigError(f"capture.interface {interface!r}: hardware type {hw} is not "
                          "supported (Ethernet, loopback and tun devices are)")  # fmt: skip
    return ARPHRD_LINKTYPES[hw]


def program_for(expression: str, networks: tuple[str, ...], linktype: int, snaplen: int) -> Program:
    """The program the capture attaches: the filter, else the default, else accept-all."""
    text = expression.strip() or default_expression(networks)
    return compile_filter(text, linktype, snaplen) if text else accept_all(snaplen)
