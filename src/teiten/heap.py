"""The process heap of a batch command: freed memory kept for reuse, not handed back.

Ingest builds and drops arrays of tens of megabytes for every batch (columns,
hash tables, sort buffers, Arrow pages). By default glibc serves each such
block with a fresh ``mmap`` and returns it with ``munmap`` when freed, and
Arrow's allocator (mimalloc) hands its pages back too. Every block then costs
page faults and zeroing when it is touched again, and, with two threads, each
unmapping interrupts the other core to flush its TLB. On the 2-core benchmark
machine that was a quarter of the CPU time of an ingest with ``--threads 2``
(10 M packets of the realistic mix: 18.8 s → 12.8 s wall with
:func:`keep_freed_memory`, 24.6 → 17.0 CPU-seconds; one thread 18 → 16.4 s).

:func:`keep_freed_memory` asks glibc to serve every block from its one heap
(no per-thread arenas, no ``mmap``) and not to shrink it (below 2 GiB free), and Arrow to
allocate from the same heap. The peak memory is unchanged; it is only not
returned before the process ends, which suits commands that end (``ingest``,
``demo``, ``rollup``, ``pack``, ``enrich``) and not the long-running
``serve`` and ``sensor``. Without glibc (musl, macOS) nothing changes.
"""

from __future__ import annotations

import ctypes

# mallopt(3) parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8

_SETTINGS = (
    (_M_ARENA_MAX, 1),  # one heap for every thread: what one thread frees, another reuses
    (_M_MMAP_MAX, 0),  # no block gets its own mapping
    (_M_TRIM_THRESHOLD, (1 << 31) - 1),  # keep up to 2 GiB free at the heap's top
    (_M_TOP_PAD, 256 << 20),  # grow the heap in steps of 256 MiB
)


def keep_freed_memory() -> bool:
    """Configure this process's heap for a batch command (see the module notes); whether
    it could (False without glibc)."""
    try:
        libc = ctypes.CDLL(None)  # the C library this process already runs on
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    for param, value in _SETTINGS:
        if mallopt(param, value) != 1:
            return False
    import pyarrow as pa  # lazily: the module is imported by commands that never use Arrow

    pa.set_memory_pool(pa.system_memory_pool())
    return True
