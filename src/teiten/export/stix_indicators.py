"""``teiten indicators --format stix``: the store's indicators as a STIX 2.1 bundle."""

from __future__ import annotations

from teiten.analysis.payloads import list_indicators, sensor_addresses
from teiten.config import Settings
from teiten.store.engine import open_engine

EVERY = 1 << 62
"""No limit on the listing: ``limit`` applies to the indicators the feed keeps."""


def stix_export(settings: Settings, *, limit: int = 1000) -> str:
    """A STIX 2.1 bundle (JSON text) of the indicators, marked with the ``stix_tlp`` level.

    Only indicators seen in sessions classified as exploitation or malware
    delivery are exported, the ``limit`` most frequent of them; sensor addresses
    never appear (see ``export.stix``).
    """
    from teiten.export.stix import MALICIOUS_KINDS, stix_bundle

    kinds = ", ".join(f"'{k}'" for k in MALICIOUS_KINDS)
    with open_engine(settings) as engine:
        addresses = sensor_addresses(engine)
        sessions = engine.query(
            "SELECT id, kind, dst, ts_first, ts_last, signatures, cves, jvn, indicators"
            f" FROM sessions WHERE len(indicators) > 0 AND kind IN ({kinds})"
        ).to_pylist()
    named = {str(v) for row in sessions for v in row["indicators"]}
    listed = list_indicators(settings, limit=EVERY)
    indicators = [r for r in listed if str(r["value"]) in named][:limit]
    return stix_bundle(
        indicators,
        sessions,
        sensor_addresses=addresses,
        sensor_networks=tuple(settings.sensor_networks),
        tlp=str(settings.stix_tlp),
    )
