"""Classify finished sessions — captured, from the sensor's events or from a honeypot's log.

One :class:`SessionClassifier` serves every source: a session with a
:class:`~teiten.session.Shell` (a honeypot logged its commands) goes through
:func:`~teiten.classify.classifier.classify_shell`, every other one through
:func:`~teiten.classify.classifier.classify` on its client bytes. Bots send the
same bytes to every address, so verdicts of small byte-identical sessions are
cached together with their typed evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from teiten.classify.classifier import Classification, classify, classify_shell
from teiten.classify.evidence import classification_evidence, session_evidence
from teiten.classify.signatures import SignatureSet, load_signatures
from teiten.session import Session

CACHE_ENTRIES = 50_000
"""Verdicts kept; the cache is emptied when it is full."""
CACHE_MAX_BYTES = 8 << 10
"""Sessions with more client + server bytes than this are not cached."""


@dataclass(frozen=True)
class Verdict:
    """A session's classification and its typed evidence columns (see ``schema.SESSIONS``)."""

    classification: Classification
    evidence: dict[str, Any]
    """``notes``, ``requests``, ``telnet`` and ``honeypot``, bounded by their declared limits."""
    cut: int
    """Evidence values the limits shortened or left out (the ``evidence_cut`` column)."""


class SessionClassifier:
    """Classifies sessions with one signature set, caching repeated bytes."""

    def __init__(self, signatures: SignatureSet | None = None) -> None:
        self.signatures = signatures if signatures is not None else load_signatures()
        self._cache: dict[tuple[bytes, int, bytes], tuple[Classification, dict[str, Any], int]]
        self._cache = {}

    def _classified(self, s: Session) -> tuple[Classification, dict[str, Any], int]:
        if s.shell is not None:
            c = classify_shell(s.shell, dst_port=s.server_port, signatures=self.signatures)
            return (c, *classification_evidence(c))
        key = (s.client_bytes, s.server_port, s.server_bytes)
        small = len(s.client_bytes) + len(s.server_bytes) <= CACHE_MAX_BYTES
        hit = self._cache.get(key) if small else None
        if hit is not None:
            return hit
        c = classify(
            s.client_bytes,
            dst_port=s.server_port,
            server_bytes=s.server_bytes or None,
            signatures=self.signatures,
        )
        verdict = (c, *classification_evidence(c))
        if small:
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            self._cache[key] = verdict
        return verdict

    def __call__(self, s: Session) -> Verdict:
        """The verdict on one session."""
        c, evidence, cut = self._classified(s)
        own, own_cut = session_evidence(s, c)
        return Verdict(c, {**evidence, **own}, cut + own_cut)
