"""What the running sensor counted: connections, events, drops by reason, ingested files."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Health:
    """What the sensor did (printed at the end of ``teiten sensor run``, served at ``/metrics``)."""

    connections: int = 0
    events: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    ended: Counter[str] = field(default_factory=Counter)
    client_bytes: int = 0
    files_ingested: int = 0
    files_failed: int = 0
    captures_ingested: int = 0
    """Of :attr:`files_ingested`, capture files from the inbox (``spool/captures``)."""
    detections: int = 0
    detections_failed: int = 0
    alerts_open: int = 0
    """Stored alerts not resolved after the last detection run."""
    last_ingest: float = 0.0
    """Unix time of the last ingest round that stored something (0: none yet)."""
    last_detection: float = 0.0
    """Unix time of the last detection run that finished (0: none yet)."""
    capture_running: int = 0
    """1 while the passive capture runs (``[capture]``), else 0."""
    capture_packets: int = 0
    """Packets the capture took from the kernel's ring."""
    capture_bytes: int = 0
    """Their length on the wire."""
    capture_file_bytes: int = 0
    """Bytes written to capture files (pcap record headers and captured bytes)."""
    capture_files: int = 0
    """Capture files published into the inbox (``spool/captures``)."""
    capture_kernel_packets: int = 0
    """Packets the kernel passed through the filter to the ring, dropped ones included."""
    capture_kernel_drops: int = 0
    """Packets the kernel dropped because the ring was full."""
    capture_freeze_q: int = 0
    """Times the kernel froze the ring queue (``tp_freeze_q_cnt``)."""
    ingested_removed: int = 0
    """Ingested files removed from the spool by ``keep_ingested_days``/``keep_ingested_gb``."""
    ingested_removed_bytes: int = 0

    def state(self) -> dict[str, float | int]:
        """What ``spool/state.json`` keeps for ``teiten sensor status``."""
        return {
            "last_ingest": self.last_ingest, "last_detection": self.last_detection,
            "files_ingested": self.files_ingested, "files_failed": self.files_failed,
            "captures_ingested": self.captures_ingested, "detections": self.detections,
            "detections_failed": self.detections_failed, "alerts_open": self.alerts_open,
            **{k: getattr(self, k) for k in CAPTURE_STATE},
        }  # fmt: skip


CAPTURE_STATE = (
    "capture_packets", "capture_bytes", "capture_files", "capture_kernel_packets",
    "capture_kernel_drops", "capture_freeze_q", "ingested_removed", "ingested_removed_bytes",
)  # fmt: skip
"""Capture and retention counters kept in ``spool/state.json`` (this run's, for status)."""
