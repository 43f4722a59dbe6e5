"""What a tag is, and the evidence about one source that tags are derived from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CLASSES = ("benign", "malicious", "unknown")
"""A tag's class, and a source's overall classification."""


@dataclass(frozen=True)
class Tag:
    """One thing known about a source.

    ``source`` says where it came from: ``data:scanners.toml`` (the shipped list),
    ``file:NAME`` (an operator's list from the ``tag_files`` setting) or ``derived``
    (evidence in the store). ``evidence`` is one line with the numbers it rests on.
    """

    name: str
    cls: str
    evidence: str
    source: str

    def __post_init__(self) -> None:
        if self.cls not in CLASSES:
            raise ValueError(f"tag class must be one of {', '.join(CLASSES)}, not {self.cls!r}")

    def as_dict(self) -> dict[str, str]:
        """The tag as the API and the profile show it (``class``, not ``cls``)."""
        return {
            "name": self.name,
            "class": self.cls,
            "evidence": self.evidence,
            "source": self.source,
        }


@dataclass(frozen=True)
class Evidence:
    """What the store shows about one source, in the units the tag rules use.

    ``packets`` are the packets the fingerprint counts are shares of;
    ``fingerprints`` maps a fingerprint name to its packets; ``ports`` maps
    ``23/tcp`` to packets (may be only the busiest ports); ``cves`` maps a CVE to
    the sessions classified to it; ``logins`` counts login attempts and
    ``credential_pairs`` the distinct username/password pairs among them (0 when
    not known).
    """

    address: str
    packets: int = 0
    fingerprints: Mapping[str, int] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)
    cves: Mapping[str, int] = field(default_factory=dict)
    sessions: int = 0
    logins: int = 0
    credential_pairs: int = 0

    @classmethod
    def from_profile(cls, profile: Mapping[str, Any]) -> Evidence:
        """The evidence in a source profile (``teiten.app.sources.source_profile``'s dict)."""
        sessions = profile.get("sessions") or {}
        logins = profile.get("logins") or {}
        return cls(
            address=str(profile["address"]),
            packets=int(profile.get("packets") or 0),
            fingerprints={str(k): int(v) for k, v in (profile.get("fingerprints") or {}).items()},
            ports={str(p["port"]): int(p["packets"]) for p in profile.get("ports") or ()},
            cves={str(k): int(v) for k, v in (profile.get("cves") or {}).items()},
            sessions=int(sessions.get("count") or 0),
            logins=int(logins.get("count") or 0),
            credential_pairs=int(logins.get("pairs") or 0),
        )
