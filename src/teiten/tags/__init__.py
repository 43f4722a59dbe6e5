"""Tags for source addresses, the way a researcher tells a research scanner from a bot.

A tag names one thing known about a source, with the evidence it rests on and
where it came from: the shipped list of research scanners and operators' own
lists (:mod:`teiten.tags.scanners`), or evidence in the store — fingerprints,
exploit sessions, login attempts (:mod:`teiten.tags.derive`). From its tags a
source is classified ``benign``, ``malicious`` or ``unknown``
(:func:`~teiten.tags.derive.classify`; the rule is in docs/tags.md).

Everything here is pure: it takes numbers and lists, never an engine or settings.
"""

from __future__ import annotations

from teiten.tags.derive import Verdict, classify, classify_many, tags_for
from teiten.tags.model import CLASSES, Evidence, Tag
from teiten.tags.scanners import Scanner, ScannerList, load_scanners, shipped_scanners

__all__ = [
    "CLASSES",
    "Evidence",
    "Scanner",
    "ScannerList",
    "Tag",
    "Verdict",
    "classify",
    "classify_many",
    "load_scanners",
    "shipped_scanners",
    "tags_for",
]
