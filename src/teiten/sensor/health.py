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
