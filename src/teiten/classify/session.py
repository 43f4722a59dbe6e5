"""Classify finished sessions — captured, from the sensor's events or from a honeypot's log.

One :class:`SessionClassifier` serves every source: a session with a
:class:`~teiten.session.Shell` (a honeypot logged its commands) goes through
:func:`~teiten.classify.classifier.classify_shell`, every other one through
:func:`~teiten.classify.classifier.classify` on its client bytes. Bots send the
same bytes to every address, so verdicts of small byte-identical sessions are
cached together with their typed evidence; and most distinct payloads are
random bytes whose classifications are equal (no application, no indicator),
so those share one classification and one verdict instead of building the
same columns and evidence again.
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
    """A session's classification, the ``sessions`` columns it fills and its typed evidence
    columns (see ``schema.SESSIONS``)."""

    classification: Classification
    columns: dict[str, Any]
    """``app``, ``kind``, ``signatures``, ``cves``, ``jvn``, ``indicator_types``,
    ``indicators``, and the first request's ``method``, ``path`` and ``soap_action``."""
    evidence: dict[str, Any]
    """``notes``, ``requests``, ``telnet`` and ``honeypot``, bounded by their declared limits."""
    cut: int
    """Evidence values the limits shortened or left out (the ``evidence_cut`` column)."""


class SessionClassifier:
    """Classifies sessions with one signature set, caching repeated bytes."""

    def __init__(self, signatures: SignatureSet | None = None) -> None:
        self.signatures = signatures if signatures is not None else load_signatures()
        self._cache: dict[tuple[bytes, int, bytes], Verdict] = {}
        self._alike: dict[int, tuple[Classification, Verdict]] = {}
        self._derived: dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, Any], int]] = {}

    def __call__(self, s: Session) -> Verdict:
        """The verdict on one session; sessions with the same cached bytes share one
        ``evidence`` object (so a batch can convert each distinct one once)."""
        if s.shell is not None:
            c = classify_shell(s.shell, dst_port=s.server_port, signatures=self.signatures)
            return self._own(s, Verdict(c, columns(c), *classification_evidence(c)))
        verdict = self.verdict(s.client_bytes, s.server_port, s.server_bytes)
        return self._own(s, verdict) if s.notes else verdict

    def verdict(self, client_bytes: bytes, server_port: int, server_bytes: bytes) -> Verdict:
        """The verdict on what a session's two sides sent (no reader notes, no shell): the
        one :meth:`__call__` gives such a session; the ingest of one-packet sessions
        (:mod:`teiten.flows.datagram`) calls it once per distinct payload."""
        key = (client_bytes, server_port, server_bytes)
        small = len(client_bytes) + len(server_bytes) <= CACHE_MAX_BYTES
        verdict = self._cache.get(key) if small else None
        if verdict is None:
            c = classify(
                client_bytes,
                dst_port=server_port,
                server_bytes=server_bytes or None,
                signatures=self.signatures,
            )
            verdict = self._of(c)
            if small:
                if len(self._cache) >= CACHE_ENTRIES:
                    self._cache.clear()
                self._cache[key] = verdict
        return verdict

    def _of(self, c: Classification) -> Verdict:
        """The verdict on a classification. :func:`classify` gives unknown-application
        streams with the same indicators and port one classification object, so that
        object shares one verdict (kept by identity, with the object, so no hash of all
        its fields is needed); and its columns and evidence, which do not depend on the
        port, are shared by every port's verdict."""
        if c.requests or c.telnet is not None:
            return Verdict(c, columns(c), *classification_evidence(c))
        entry = self._alike.get(id(c))
        if entry is not None and entry[0] is c:
            return entry[1]
        if len(self._alike) >= CACHE_ENTRIES:
            self._alike.clear()
        derived = self._derived.get(key := _derived_key(c))
        if derived is None:
            if len(self._derived) >= CACHE_ENTRIES:
                self._derived.clear()
            derived = self._derived[key] = (columns(c), *classification_evidence(c))
        verdict = Verdict(c, *derived)
        self._alike[id(c)] = (c, verdict)
        return verdict

    @staticmethod
    def _own(s: Session, v: Verdict) -> Verdict:
        """``v`` with what the reader said of the session (notes, honeypot) in its evidence."""
        evidence, cut = session_evidence(s, v.classification, v.evidence, v.cut)
        return Verdict(v.classification, v.columns, evidence, cut)


def _derived_key(c: Classification) -> tuple[Any, ...]:
    """All that :func:`columns` and :func:`~teiten.classify.evidence.classification_evidence`
    read of a classification without requests or Telnet session (not its port)."""
    return (c.app, c.kind, c.signatures, c.cves, c.jvn, c.indicators, c.notes)


CLASSIFIED = ("app", "kind", "signatures", "cves", "jvn", "indicator_types", "indicators",
              "method", "path", "soap_action")  # fmt: skip
"""The ``sessions`` columns :func:`columns` fills."""


def columns(c: Classification) -> dict[str, Any]:
    """The ``sessions`` columns a classification fills (besides the evidence)."""
    first = c.requests[0] if c.requests else None
    soap = first.soap if first is not None else None
    return {
        "app": c.app, "kind": c.kind or "", "signatures": list(c.signatures),
        "cves": list(c.cves), "jvn": list(c.jvn),
        "indicator_types": [i.type for i in c.indicators],
        "indicators": [i.value for i in c.indicators],
        "method": first.http.method if first is not None else "",
        "path": first.http.path if first is not None else "",
        "soap_action": soap.action if soap is not None and soap.action else "",
    }  # fmt: skip
