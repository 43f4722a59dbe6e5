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

CHUNK = 1_000
"""Sources per statement when many are read at once (the statement lists them)."""

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


def ns_time(ns: Any) -> dt.datetime | None:
    """A stored time (ns since the epoch, UTC) as a naive UTC datetime (µs), like the views'."""
    if ns is None:
        return None
    return dt.datetime.fromtimestamp(int(ns) // 1_000_000_000, dt.UTC).replace(
        microsecond=int(ns) % 1_000_000_000 // 1000, tzinfo=None
    )


def ports_of(
    engine: Engine, keys: list[Source], start: int, end: int
) -> dict[Source, dict[str, int]]:
    """Packets per port of each source, for a bounded list of sources."""
    out: dict[Source, dict[str, int]] = {}
    for i in range(0, len(keys), CHUNK):
        sql = sources.sources_top_ports(
            engine.dialect, keys[i : i + CHUNK], start_ns=start, end_ns=end
        )
        for r in engine.query(sql).to_pylist():
            ports = out.setdefault(Source.from_key(r["a4"], r["a6"]), {})
            ports[str(r["port"])] = int(r["packets"])
    return out


def cves_of(
    engine: Engine, keys: list[Source], start: int, end: int
) -> dict[Source, dict[str, int]]:
    """Sessions per CVE of each source, for a bounded list of sources."""
    out: dict[Source, dict[str, int]] = {}
    for i in range(0, len(keys), CHUNK):
        sql = sources.sources_cves(engine.dialect, keys[i : i + CHUNK], start_ns=start, end_ns=end)
        for r in engine.query(sql).to_pylist():
            counts = out.setdefault(Source.from_key(r["a4"], r["a6"]), {})
            for cve in r["cves"] or ():
                counts[str(cve)] = counts.get(str(cve), 0) + int(r["sessions"])
    return out


def _chunks(engine: Engine, keys: list[Source], build: Any) -> list[dict[str, Any]]:
    """The rows of ``build(dialect, chunk)`` over ``keys`` cut into chunks of :data:`CHUNK`."""
    rows: list[dict[str, Any]] = []
    for i in range(0, len(keys), CHUNK):
        rows += engine.query(build(engine.dialect, keys[i : i + CHUNK])).to_pylist()
    return rows


def batch_evidence(
    engine: Engine, keys: list[Source], fps: list[tuple[int, str]], start: int, end: int
) -> dict[Source, Evidence]:
    """The tag evidence of many sources at once (rollup packets, fingerprints and ports,
    CVEs of their sessions, login attempts), for a bounded list of sources."""
    span = {"start_ns": start, "end_ns": end}
    packets: dict[Source, dict[str, Any]] = {}
    for r in _chunks(engine, keys, lambda d, c: sources.sources_fingerprints(d, c, fps, **span)):
        packets[Source.from_key(r["a4"], r["a6"])] = r
    logins: dict[Source, int] = {}
    for r in _chunks(engine, keys, lambda d, c: sources.sources_logins(d, c, **span)):
        logins[Source.from_key(r["a4"], r["a6"])] = int(r["logins"])
    ports = ports_of(engine, keys, start, end)
    cves = cves_of(engine, keys, start, end)
    out: dict[Source, Evidence] = {}
    for k in keys:
        row = packets.get(k, {})
        fingerprints = {n: int(row[f"fp{b}"]) for b, n in fps if row.get(f"fp{b}")}
        out[k] = Evidence(
            str(k.address()), int(row.get("packets") or 0), fingerprints, ports.get(k, {}),
            cves.get(k, {}), logins=logins.get(k, 0),
        )  # fmt: skip
    return out


def session_source_tags(
    settings: Settings, engine: Engine, kinds: list[str]
) -> dict[str, list[str]]:
    """Session id → the tag names of the source that sent it, for the sessions of ``kinds``
    that named indicators (what a STIX feed cites: ``export.stix``'s ``source_tags``)."""
    rows = engine.query(sources.session_sources(engine.dialect, kinds)).to_pylist()
    keyed = {str(r["id"]): Source.from_key(r["a4"], r["a6"]) for r in rows}
    fps = [(f.bit, f.name) for f in registry.registered()]
    evidence = batch_evidence(engine, sorted(set(keyed.values()), key=repr), fps, 0, 1 << 62)
    scanners = scanner_list(settings)
    names = {k: [t.name for t in tags_for(ev, scanners)] for k, ev in evidence.items()}
    return {sid: names.get(k, []) for sid, k in keyed.items()}


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
    times += [ns_time(r[k]) for r in raw["kinds"] for k in ("first_ns", "last_ns")]
    times += [ns_time(counts["first_ns"]), ns_time(counts["last_ns"])]
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
