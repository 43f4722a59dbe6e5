"""One source address as the analyst's source page and ``GET /api/v1/sources/{address}`` show it.

Every statement filters on the stored address columns (``teiten.sql.sources``),
so a profile reads only the row groups that can hold the address. Sources inside
the ``sensor_networks`` setting are the sensor's own and never profiled.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

from teiten.analysis.payloads import zoned
from teiten.app.engine import open_engine
from teiten.config import Settings
from teiten.engine import Engine
from teiten.errors import ConfigError
from teiten.fingerprint import registry
from teiten.secrecy import Secrecy
from teiten.sql import sources
from teiten.sql.sources import Source
from teiten.tags import Evidence, ScannerList, classify, load_scanners, tags_for

PORTS = 100
"""Most ports a profile lists (busiest first); ``port_count`` says how many there were."""
SESSIONS = 20
"""Latest sessions a profile lists."""
LOGINS = 20
"""Latest login attempts a profile lists."""

IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(address: str) -> IP:
    """An IPv4 or IPv6 address, or a ConfigError (one line) saying what was expected."""
    text = str(address).strip()
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        shown = text[:60].encode("ascii", "backslashreplace").decode("ascii")
        raise ConfigError(
            f"not an IP address: {shown!r} (expected e.g. 198.51.100.7 or 2001:db8::7)"
        ) from None


def scanner_list(settings: Settings) -> ScannerList:
    """The shipped scanner list plus the ``tag_files`` setting's files."""
    return load_scanners([Path(p) for p in settings.tag_files])


def _ns_time(ns: Any) -> dt.datetime | None:
    if ns is None:
        return None
    return dt.datetime.fromtimestamp(int(ns) // 1_000_000_000, dt.UTC).replace(
        microsecond=int(ns) % 1_000_000_000 // 1000, tzinfo=None
    )


def _session_part(rows: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, int], int]:
    """CVE → sessions, kind → sessions, and all sessions, from ``source_session_kinds`` rows."""
    cves: dict[str, int] = {}
    kinds: dict[str, int] = {}
    for r in rows:
        n = int(r["sessions"])
        for cve in r["cves"] or ():
            cves[str(cve)] = cves.get(str(cve), 0) + n
        kind = str(r["kind"] or "unclassified")
        kinds[kind] = kinds.get(kind, 0) + n
    return dict(sorted(cves.items())), dict(sorted(kinds.items())), sum(kinds.values())


def _read(engine: Engine, src: Source, names_by_bit: list[tuple[int, str]]) -> dict[str, Any]:
    """Every statement's rows for one source (the profile before it is shaped)."""
    d = engine.dialect
    return {
        "head": engine.query(sources.source_packets(d, src, names_by_bit)).to_pylist()[0],
        "kinds": engine.query(sources.source_session_kinds(d, src)).to_pylist(),
        "logins": engine.query(sources.source_login_counts(d, src)).to_pylist()[0],
        "ports": engine.query(sources.source_ports(d, src, limit=PORTS)).to_pylist(),
        "sessions": engine.query(sources.source_sessions(d, src, limit=SESSIONS)).to_pylist(),
        "attempts": engine.query(sources.source_logins(d, src, limit=LOGINS)).to_pylist(),
    }


def _shape(ip: IP, raw: dict[str, Any], names: dict[int, str]) -> dict[str, Any] | None:
    """The profile's fields (UTC datetimes), or None when the store never saw the source."""
    head, counts = raw["head"], raw["logins"]
    cves, kinds, n_sessions = _session_part(raw["kinds"])
    if not head["packets"] and not n_sessions and not counts["attempts"]:
        return None
    times = [head["first_seen"], head["last_seen"]]
    times += [_ns_time(r[k]) for r in raw["kinds"] for k in ("first_ns", "last_ns")]
    times += [_ns_time(counts["first_ns"]), _ns_time(counts["last_ns"])]
    seen = [t for t in times if t is not None]
    fingerprints = {names[b]: int(head[f"fp{b}"] or 0) for b in names}
    return {
        "address": str(ip),
        "first_seen": min(seen) if seen else None,
        "last_seen": max(seen) if seen else None,
        "packets": int(head["packets"]),
        "country": head["country"],
        "asn": int(head["asn"]) if head["asn"] is not None else None,
        "as_org": head["as_org"],
        "port_count": int(head["ports"] or 0),
        "ports": [
            {
                "port": f"{r['port']}/{r['proto_name']}",
                "packets": int(r["packets"]),
                "first_seen": r["first_seen"],
                "last_seen": r["last_seen"],
            }
            for r in raw["ports"]
        ],
        "fingerprints": {k: v for k, v in fingerprints.items() if v},
        "sessions": {"count": n_sessions, "kinds": kinds, "latest": raw["sessions"]},
        "logins": {
            "count": int(counts["attempts"]),
            "pairs": int(counts["pairs"]),
            "mirai_pairs": int(counts["mirai_pairs"]),
            "latest": raw["attempts"],
        },
        "cves": cves,
    }


def _zoned(profile: dict[str, Any], tz: str) -> dict[str, Any]:
    """The profile with every time as ISO text in ``tz`` (lists of rows included)."""
    out = zoned([profile], tz)[0]
    out["ports"] = zoned(profile["ports"], tz)
    out["sessions"] = {**profile["sessions"], "latest": zoned(profile["sessions"]["latest"], tz)}
    out["logins"] = {**profile["logins"], "latest": zoned(profile["logins"]["latest"], tz)}
    return out


def source_profile(settings: Settings, address: str) -> dict[str, Any] | None:
    """One source: first/last seen, packets, ports, fingerprints, country and AS, sessions,
    logins, CVEs, tags and classification; None when the store never saw it.

    An address that is not an IP address is a ConfigError; one inside the sensor's
    networks, or one that received packets or sessions, is the sensor's own and answered
    as never seen.
    """
    ip = parse_address(address)
    if Secrecy(settings.sensor_networks).is_secret(ip):
        return None
    scanners = scanner_list(settings)
    found = registry.registered()
    names = {f.bit: f.name for f in found}
    src = Source.of(ip)
    with open_engine(settings) as engine:
        received = engine.query(sources.source_received(engine.dialect, src)).column("n")
        if int(received[0].as_py()):
            return None
        raw = _read(engine, src, [(f.bit, f.name) for f in found])
    profile = _shape(ip, raw, names)
    if profile is None:
        return None
    tags = tags_for(Evidence.from_profile(profile), scanners)
    verdict = classify(tags)
    profile["tags"] = [t.as_dict() for t in tags]
    profile["classification"] = verdict.classification
    profile["classification_evidence"] = verdict.evidence
    return _zoned(profile, str(settings.tz))
