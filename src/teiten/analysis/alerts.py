"""Alerts from per-port series: surges (many new sources) and sweeps (one source, many packets).

For each port the detector runs on the ``all``, ``domestic`` and ``foreign``
series of unique sources. One alert is raised per port and rise:

* both domestic and foreign rose → segment ``all``;
* only one of them rose → that segment (the seed's "Telnet from Japan rose,
  from abroad it did not");
* only the sum rose → ``all``.

The evidence lists every segment with its level before and after and whether
it rose. A packet surge on a port whose unique sources did not rise is a
``sweep`` (a few sources sending much more), not a surge.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from teiten.analysis.series_matrix import SEGMENTS, SeriesMatrix
from teiten.analysis.surge import DEFAULT_PARAMS, Surge, SurgeParams, detect
from teiten.store.alerts import AlertRow, read_alert_rows

ONSET_MATCH_DAYS = 3
"""Rises in two segments of a port whose onsets are this close are the same rise; so are
a stored alert and a new detection of the same kind, port and segment."""


@dataclass
class Alert:
    """One detected rise on one port (the fields of ``teiten alerts``)."""

    kind: str
    port: str
    segment: str
    onset: str
    detected: str
    last: str
    ratio: float
    score: float
    baseline: float
    peak: float
    ongoing: bool
    state: str = "new"
    campaign: str | None = None
    id: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _segment_evidence(
    m: SeriesMatrix, port_i: int, surges: dict[str, Surge | None], onset: int, last: int
) -> dict[str, Any]:
    out = {}
    for seg in SEGMENTS:
        row = m.sources[m.row(port_i, seg)]
        before = float(np.median(row[max(0, onset - 28) : onset])) if onset else 0.0
        after = float(np.mean(row[onset : last + 1]))
        out[seg] = {
            "rose": surges.get(seg) is not None,
            "sources_before": round(before, 1),
            "sources_after": round(after, 1),
            "ratio": round((after + 1) / (before + 1), 2),
        }
    return out


def _group(surges: list[Surge], m: SeriesMatrix) -> dict[int, list[dict[str, Surge]]]:
    """Per port, the rises found, each as {segment: surge} with matching onsets."""
    per_port: dict[int, list[dict[str, Surge]]] = {}
    for s in sorted(surges, key=lambda s: (s.row, s.onset)):
        port_i, seg = s.row // len(SEGMENTS), SEGMENTS[s.row % len(SEGMENTS)]
        rises = per_port.setdefault(port_i, [])
        for rise in rises:
            if any(abs(o.onset - s.onset) <= ONSET_MATCH_DAYS for o in rise.values()):
                rise.setdefault(seg, s)
                break
        else:
            rises.append({seg: s})
    return per_port


def _alert(kind: str, m: SeriesMatrix, port_i: int, rise: dict[str, Surge]) -> Alert:
    dom, foreign = rise.get("domestic"), rise.get("foreign")
    segment = (
        "all" if (dom and foreign) or not (dom or foreign) else ("domestic" if dom else "foreign")
    )
    main = rise.get(segment) or next(iter(rise.values()))
    return Alert(
        kind=kind,
        port=str(m.ports[port_i]),
        segment=segment,
        onset=m.day_label(main.onset),
        detected=m.day_label(main.detected),
        last=m.day_label(main.last),
        ratio=round(main.ratio, 2),
        score=round(main.score, 1),
        baseline=round(main.baseline, 1),
        peak=main.peak,
        ongoing=main.ongoing,
        evidence={
            "segments": _segment_evidence(m, port_i, dict(rise), main.onset, main.last),
            "measure": "sources" if kind == "surge" else "packets",
        },
    )


def find_alerts(m: SeriesMatrix, params: SurgeParams = DEFAULT_PARAMS) -> list[Alert]:
    """Surge and sweep alerts of every port in the matrix, ordered by onset then port."""
    by_sources = _group(detect(m.sources, params), m)
    by_packets = _group(detect(m.packets, params), m)
    alerts = [_alert("surge", m, p, rise) for p, rises in by_sources.items() for rise in rises]
    for p, rises in by_packets.items():
        for rise in rises:
            onsets = [s.onset for s in rise.values()]
            known = any(
                abs(s.onset - o) <= ONSET_MATCH_DAYS
                for r in by_sources.get(p, [])
                for s in r.values()
                for o in onsets
            )
            if not known:
                alerts.append(_alert("sweep", m, p, rise))
    return sorted(alerts, key=lambda a: (a.onset, a.port, a.segment))


# --- Alert state: which stored alert a new detection continues ---------------


@dataclass(frozen=True)
class AlertMerge:
    """What storing a detection run changes (see :func:`merge_alerts`)."""

    alerts: tuple[Alert, ...]
    """The found alerts in their order, with the state and id they are stored with
    (``id`` None: a new row)."""
    ended: tuple[int, ...]
    """Ids of stored alerts not found again that end now."""


def _days_apart(a: str, b: str) -> int:
    return abs((dt.date.fromisoformat(a) - dt.date.fromisoformat(b)).days)


def merge_alerts(known: Sequence[Alert], found: Sequence[Alert]) -> AlertMerge:
    """How a detection run's alerts update the stored ones (pure: nothing is changed).

    A found alert continues the first stored alert, not continued yet, of the
    same kind, port and segment whose onset is at most :data:`ONSET_MATCH_DAYS`
    days apart: it takes its id and is ``ongoing`` (``ended`` if no longer
    rising). Any other found alert is ``new`` (``ended`` if no longer rising).
    Stored alerts that no found alert continues and that have not ended, end.
    """
    continued: set[int] = set()
    out = []
    for a in found:
        old = next(
            (
                k
                for k in known
                if k.id is not None
                and k.id not in continued
                and (k.kind, k.port, k.segment) == (a.kind, a.port, a.segment)
                and _days_apart(k.onset, a.onset) <= ONSET_MATCH_DAYS
            ),
            None,
        )
        if old is None or old.id is None:
            out.append(dataclasses.replace(a, id=None, state="new" if a.ongoing else "ended"))
        else:
            continued.add(old.id)
            out.append(dataclasses.replace(a, id=old.id, state="ongoing" if a.ongoing else "ended"))
    ended = tuple(
        k.id for k in known if k.id is not None and k.id not in continued and k.state != "ended"
    )
    return AlertMerge(tuple(out), ended)


def alert_to_row(a: Alert) -> AlertRow:
    """The stored row of an alert (``updated`` is set by the store)."""
    row: AlertRow = {f.name: getattr(a, f.name) for f in dataclasses.fields(a)}
    row["evidence"] = json.dumps(a.evidence, sort_keys=True)
    row["updated"] = None
    return row


def alert_from_row(row: AlertRow) -> Alert:
    """The alert of a stored row."""
    names = {f.name for f in dataclasses.fields(Alert)}
    values = {k: v for k, v in row.items() if k in names}
    values["ongoing"] = bool(values["ongoing"])
    values["evidence"] = json.loads(values["evidence"])
    return Alert(**values)


def read_stored_alerts(path: Path) -> list[Alert]:
    """Every alert stored in the catalog at ``path``, read without writing."""
    return [alert_from_row(r) for r in read_alert_rows(path)]
