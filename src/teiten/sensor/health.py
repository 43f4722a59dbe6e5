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

    def state(self) -> dict[str, float | int]:
        """What ``spool/state.json`` keeps for ``teiten sensor status``."""
        return {
            "last_ingest": self.last_ingest, "last_detection": self.last_detection,
            "files_ingested": self.files_ingested, "files_failed": self.files_failed,
            "captures_ingested": self.captures_ingested, "detections": self.detections,
            "detections_failed": self.detections_failed, "alerts_open": self.alerts_open,
        }  # fmt: skip
