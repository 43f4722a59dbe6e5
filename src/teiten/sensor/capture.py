"""Passive capture: every packet to the sensor's addresses, into rotated files in the inbox.

:class:`Capture` ties the pieces together. It is created before privileges are
dropped (the packet socket needs ``CAP_NET_RAW``): the interface's link type
is read, the filter compiled (:mod:`teiten.sensor.bpf`), the walker compiled
and the ring opened (:mod:`teiten.sensor.ring`). :meth:`Capture.start` then
finishes files a crash left (:func:`teiten.sensor.rotation.recover`) and runs
the capture loop in a thread: wait for a retired block, walk it into the
output buffer, give it back, write the buffer to the current file
(:class:`~teiten.sensor.rotation.Rotator`) when it fills or the ring is idle,
and publish the file into ``spool/captures`` by time or size, where the
sensor's ingest rounds take it. The walker and the system calls release the
GIL, so the responders' event loop keeps running beside it.

The kernel's counters (packets, drops, ring freezes) are read every second
and at each rotation into :class:`~teiten.sensor.health.Health`; drops since
the previous file are logged with the file. :meth:`Capture.stop` (SIGTERM)
lets the kernel retire the last partly filled block, writes it, and
publishes the file; nothing half-written ever appears in the inbox.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from teiten.sensor import rotation
from teiten.sensor.bpf import interface_linktype, program_for
from teiten.sensor.config import SensorConfig
from teiten.sensor.health import Health
from teiten.sensor.ring import KernelStats, Layout, Ring, warm_up
from teiten.sensor.rotation import Rotator, pcap_header, recover

Log = Callable[[str], None]
POLL_SECONDS = 0.2
"""Longest wait for a block: how often an idle capture checks rotation and stop."""
FLUSH_BYTES = 8 << 20
"""Records are written to the file once this many wait in the buffer (or the ring is idle)."""
STATS_SECONDS = 1.0
"""Every second the buffer is written out and the kernel's counters read."""
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class Capture:
    """The open capture of one sensor; :meth:`start` runs it, :meth:`stop` ends it."""

    def __init__(
        self, config: SensorConfig, health: Health, log: Log, clock: Callable[[], float] = time.time
    ) -> None:
        cap = config.capture
        assert cap is not None
        self.health, self.log = health, log
        self.folder = config.captures_dir
        linktype = interface_linktype(cap.interface)
        self.program = program_for(cap.filter, config.networks, linktype, cap.snaplen)
        self.layout = Layout.choose(cap.ring_mb, cap.snaplen)
        warm_up()  # the numba functions, while the installation can still be written
        rotation.warm_up()
        self.ring = Ring(cap.interface, self.program, self.layout, linktype)
        prefix = f"{config.name}-{_SAFE.sub('_', cap.interface)}"
        header = pcap_header(cap.snaplen, linktype)
        self.rotator = Rotator(self.folder, prefix, header, cap.rotate_seconds, cap.rotate_bytes,
                               clock)  # fmt: skip
        self.out = np.empty(FLUSH_BYTES + self.layout.block_size, np.uint8)
        self.pos = 0
        self.pending = 0
        """Packets in ``out[:pos]``, not yet in the file."""
        self.drops_logged = 0
        self.error = ""
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.closed = False

    def describe(self) -> str:
        lay = self.layout
        return (f"capture: {self.ring.interface}, {self.program.label()}, ring {lay.block_nr} x "
                f"{lay.block_size >> 10} KiB")  # fmt: skip

    def start(self) -> None:
        """Finish files a crash left, then capture in a thread (after privileges are dropped)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        done, errors = recover(self.folder)
        for path, packets in done:
            self.health.capture_files += 1
            self.log(
                f"{path.name}: finished a capture file a previous run left ({packets} packets)"
            )
        for line in errors:
            self.log(f"capture: cannot finish a file a previous run left: {line}")
        self.health.capture_running = 1
        self.thread = threading.Thread(target=self._run, name="teiten-capture", daemon=True)
        self.thread.start()
        self.log(self.describe())

    def stop(self) -> None:
        """Drain the ring, publish the current file and close the socket (blocks until done)."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join()
        elif not self.closed:  # never started: only the socket to close
            self.ring.close()
            self.closed = True

    def _run(self) -> None:
        try:
            self._loop()
            self._drain()
        except Exception as e:  # a bug or a broken socket ends the capture, never the sensor
            self.log(f"capture stopped: {type(e).__name__}: {e}")
        finally:
            self._flush()
            self._publish(self._guard(self.rotator.close))
            self._read_stats()
            self.health.capture_running = 0
            self.ring.close()
            self.closed = True

    def _loop(self) -> None:
        next_stats = time.monotonic() + STATS_SECONDS
        while not self.stopping.is_set():
            try:
                block = self.ring.wait(POLL_SECONDS)
            except OSError as e:  # the link went down: say so, and go on waiting
                self.log(f"capture: {self.ring.interface}: {e.strerror or e}")
                self.stopping.wait(POLL_SECONDS)
                block = None
            if block is not None:
                self._take(block)
            second = time.monotonic() >= next_stats
            if block is None or self.pos >= FLUSH_BYTES or second:
                self._flush()
            if self.rotator.due():
                self._publish(self._guard(self.rotator.close))
            if second:
                self._read_stats()
                next_stats = time.monotonic() + STATS_SECONDS

    def _drain(self) -> None:
        """Take what the kernel retires in the next few block timeouts (the last block)."""
        deadline = time.monotonic() + 3 * self.layout.retire_ms / 1000 + 0.05
        while time.monotonic() < deadline:
            block = None
            with contextlib.suppress(OSError):
                block = self.ring.wait(0.02)
            if block is not None:
                self._take(block)

    def _take(self, block: int) -> None:
        if self.pos + self.layout.block_size > self.out.size:
            self._flush()
        self.pos, packets, wire = self.ring.walk(block, self.out, self.pos)
        self.ring.release(block)
        self.pending += packets
        self.health.capture_packets += packets
        self.health.capture_bytes += wire

    def _flush(self) -> None:
        """Write the buffered records; a write error discards the file and is counted."""
        if not self.pending:
            self.pos = 0
            return
        size = self.pos
        data = self.out[:size].data
        published = self._guard(lambda: self.rotator.write(data, self.pending))
        self.health.capture_file_bytes += size
        self.pos, self.pending = 0, 0
        self._publish(published)

    def _guard(self, step: Callable[[], Path | None]) -> Path | None:
        """Run a file step; on OSError drop the file (its tail is unknown) and log once."""
        try:
            path = step()
        except OSError as e:
            lost = self.rotator.packets
            self.health.dropped["capture_write_failed"] += lost
            self.rotator.discard()
            text = (
                f"capture: cannot write to {self.folder}: {e.strerror or e} ({lost} packets lost)"
            )
            if text != self.error:
                self.log(text)
            self.error = text
            return None
        self.error = ""
        return path

    def _publish(self, path: Path | None) -> None:
        if path is None:
            return
        self.health.capture_files += 1
        stats = self._read_stats()
        drops, self.drops_logged = stats.drops - self.drops_logged, stats.drops
        note = f", {drops} dropped by the kernel" if drops else ""
        self.log(f"capture: {path.name} ({self.rotator.closed_packets} packets{note})")

    def _read_stats(self) -> KernelStats:
        stats = self.ring.read_stats()
        self.health.capture_kernel_packets = stats.packets
        self.health.capture_kernel_drops = stats.drops
        self.health.capture_freeze_q = stats.freeze_q
        return stats
