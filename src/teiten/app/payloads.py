"""``teiten payloads`` and ``teiten indicators``: what the sessions carried, as stored."""

from __future__ import annotations

from typing import Any

from teiten.analysis import payloads
from teiten.analysis.payloads import Page, zoned
from teiten.app.engine import open_engine
from teiten.config import Settings
from teiten.secrecy import Secrecy
from teiten.sql import sessions


def payload_page(
    settings: Settings,
    *,
    signature: str | None = None,
    cve: str | None = None,
    first: str | None = None,
    last: str | None = None,
    limit: int = 100,
) -> Page:
    """``teiten payloads``: the first ``limit`` matching sessions and how many match in all."""
    tz = str(settings.tz)
    f = payloads.session_filter(tz, signature=signature, cve=cve, first=first, last=last)
    with open_engine(settings) as engine:
        page = payloads.payload_page(engine, f, limit=limit)
    return Page(zoned(page.rows, tz), page.total)


def list_payloads(settings: Settings, **options: Any) -> list[dict[str, Any]]:
    """The rows of :func:`payload_page` (same options)."""
    return payload_page(settings, **options).rows


def show_payload(settings: Settings, session_id: str) -> dict[str, Any]:
    """``teiten payloads --show ID``: one session with its bytes."""
    with open_engine(settings) as engine:
        row = payloads.session_by_id(engine, session_id)
    return zoned([row], str(settings.tz))[0]


def sensor_addresses(settings: Settings) -> set[str]:
    """Every address that received traffic: the sensor's (a scan of the store, so callers
    that publish often keep the answer)."""
    with open_engine(settings) as engine:
        return payloads.sensor_addresses(engine)


def sensor_secrecy(settings: Settings, addresses: set[str] | None = None) -> Secrecy:
    """The secrecy policy of the store: the ``sensor_networks`` setting and the sensor's
    addresses (``addresses``, else read from the store)."""
    if addresses is None:
        addresses = sensor_addresses(settings)
    return Secrecy(settings.sensor_networks, addresses)


def indicator_page(
    settings: Settings, *, limit: int = 1000, secrecy: Secrecy | None = None
) -> Page:
    """``teiten indicators``: the first ``limit`` indicators and how many are listed in all.

    Indicators that name the sensor are left out; ``secrecy``: the store's policy
    (:func:`sensor_secrecy`), when the caller already holds it.
    """
    with open_engine(settings) as engine:  # one engine: the scan and the listing
        if secrecy is None:
            secrecy = Secrecy(settings.sensor_networks, payloads.sensor_addresses(engine))
        rows = payloads.indicators(engine, secrecy)
    return Page(zoned(rows[:limit], str(settings.tz)), len(rows))


def list_indicators(settings: Settings, *, limit: int = 1000) -> list[dict[str, Any]]:
    """The rows of :func:`indicator_page`."""
    return indicator_page(settings, limit=limit).rows


def stix_export(settings: Settings, *, limit: int = 1000, addresses: set[str] | None = None) -> str:
    """A STIX 2.1 bundle (JSON text) of the indicators, marked with the ``stix_tlp`` level.

    Only indicators seen in sessions classified as exploitation or malware
    delivery are exported, the ``limit`` most frequent of them, labelled with the
    tags of the sources that sent them (docs/tags.md); sensor addresses never
    appear (see ``export.stix``).
    """
    from teiten.app.sources import session_source_tags
    from teiten.export.stix import MALICIOUS_KINDS, stix_bundle  # stix2 loads slowly

    with open_engine(settings) as engine:
        if addresses is None:
            addresses = payloads.sensor_addresses(engine)
        cited = engine.query(
            sessions.malicious_sessions(engine.dialect, sorted(MALICIOUS_KINDS))
        ).to_pylist()
        listed = payloads.indicators(engine, Secrecy(settings.sensor_networks, addresses))
        tags = session_source_tags(settings, engine, sorted(MALICIOUS_KINDS))
    named = {str(v) for row in cited for v in row["indicators"]}
    indicators = zoned([r for r in listed if str(r["value"]) in named][:limit], str(settings.tz))
    return stix_bundle(
        indicators,
        cited,
        sensor_addresses=addresses,
        sensor_networks=tuple(settings.sensor_networks),
        tlp=str(settings.stix_tlp),
        source_tags=tags,
    )
