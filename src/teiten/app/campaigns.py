"""Campaigns as the dashboard and the API show them: cut from the report of all data.

A campaign page shows what the report's section on it says (linked ports, rises,
the masked sample, indicators, back-check findings, matching advisories), so the
two never disagree: both are :func:`teiten.report.model.assemble_report`'s
output. Alert groups that do not pass the report's headline rule are listed
too, with their rises and no section.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from teiten.errors import NotFoundError
from teiten.report.model import Report


def list_campaigns(report: Report) -> list[dict[str, Any]]:
    """Every alert group of the report, headline sections and other rises, by onset."""
    out = []
    for s in report.sections:
        out.append(
            {
                "id": s.id,
                "headline": True,
                "ports": list(dict.fromkeys(s.ports)),
                "onset": s.onset,
                "last": s.last,
                "ongoing": any(r.ongoing for r in s.rises),
                "cves": list(s.sample["cves"]) if s.sample else [],
                "advisories": len(s.advisories),
            }
        )
    lone: dict[str, list[Any]] = {}
    for r in report.others:
        lone.setdefault(r.group, []).append(r)
    for key, rises in lone.items():
        out.append(
            {
                "id": key,
                "headline": False,
                "ports": list(dict.fromkeys(r.port for r in rises)),
                "onset": min(r.onset for r in rises),
                "last": max(r.last for r in rises),
                "ongoing": any(r.ongoing for r in rises),
                "cves": [],
                "advisories": 0,
            }
        )
    return sorted(out, key=lambda c: (c["onset"], c["id"]))


def campaign_detail(report: Report, campaign_id: str) -> dict[str, Any]:
    """One campaign: its report section (or its rises when it is not a headline)."""
    window = {"first": report.first, "last": report.last, "tz": report.tz}
    for s in report.sections:
        if s.id == campaign_id:
            return {"id": s.id, "headline": True, "window": window, "section": asdict(s)}
    rises = [asdict(r) for r in report.others if r.group == campaign_id]
    if not rises:
        raise NotFoundError(f"no campaign {campaign_id}")
    return {"id": campaign_id, "headline": False, "window": window, "rises": rises}
