"""Notification feeds for network owners: per AS or per prefix, the infected-looking sources.

What a national CERT sends ISPs. A source is listed when it is classified
``malicious`` (``teiten.tags``: the Mirai fingerprint on most of its packets, a
session classified to a CVE, or credential brute force); each entry carries
the evidence and counts its classification rests on. The suspects are found in
the hourly rollups, the sessions and the logins (``teiten.sql.sources``), so a
feed never scans the packets; their packet counts are packets to captured
TCP/UDP ports, and first/last seen are exact for sessions and logins and to the
hour for packets.

The sensor's own addresses are never listed: a suspect inside the
``sensor_networks`` setting, or any address that received packets or sessions,
is dropped, and every string of the feed is passed through the one secrecy policy.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from teiten.analysis.payloads import zoned
from teiten.analysis.window import Window, parse_date
from teiten.app.engine import open_engine
from teiten.app.sources import cves_of, ns_time, ports_of, scanner_list
from teiten.config import Settings
from teiten.csvcell import csv_text
from teiten.engine import Engine
from teiten.errors import ConfigError
from teiten.fingerprint import registry
from teiten.secrecy import Secrecy
from teiten.sql import sources
from teiten.sql.sources import Network, Source, Suspicion
from teiten.tags import Evidence, ScannerList, classify, tags_for
from teiten.tags.derive import BOT, BRUTEFORCE_LOGINS, FINGERPRINT_SHARE, malicious_mask

BY = ("asn", "prefix")
"""How sources are grouped: by the AS announcing them, or by /24 (IPv4) and /48 (IPv6)."""
PREFIX_LENGTH = {4: 24, 6: 48}
MAX_SUSPECTS = 100_000
"""Most suspect sources one feed reads; more are reported as ``truncated``."""
MAX_PER_NETWORK = 1_000
"""Most sources listed per network (busiest first); the counts cover all of them."""
TOP_PORTS = 10
"""Ports given as evidence per source, busiest first."""
_log = logging.getLogger(__name__)
_ASN = re.compile(r"(?i)(?:AS)?([0-9]{1,10})")
_EPOCH_END = 1 << 62


def _span(settings: Settings, first: str | None, last: str | None) -> tuple[int, int]:
    """``[start_ns, end_ns)`` of local dates ``first``..``last`` (open-ended when not given)."""
    if not first and not last:
        return 0, _EPOCH_END
    a = parse_date(first or "1970-01-02")
    b = parse_date(last or "2999-12-31")
    if b < a:
        raise ConfigError(f"--to {b} is before --from {a}")
    w = Window.from_dates(a, b, str(settings.tz))
    return w.start_ns, w.end_ns


def parse_network(by: str, text: str) -> Network:
    """The ``network`` filter: ``AS4713``/``4713`` (by asn) or a CIDR or address (by prefix)."""
    text = str(text).strip()
    if by == "asn":
        m = _ASN.fullmatch(text)
        if not m or int(m.group(1)) >= 1 << 32:
            raise ConfigError(f"not an AS number: {text[:40]!r} (expected e.g. AS4713 or 4713)")
        return Network(asn=int(m.group(1)))
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConfigError(
            f"not a network: {text[:60]!r} (expected e.g. 198.51.100.0/24 or 2001:db8:1::/48)"
        ) from None
    if net.prefixlen == net.max_prefixlen:
        net = net.supernet(new_prefix=PREFIX_LENGTH[net.version])
    try:
        return Network.prefix(net)
    except ValueError as e:
        raise ConfigError(f"network {net}: {e}") from None


def network_of(by: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, asn: int | None) -> str:
    """The network a source is listed under: ``AS4713``, ``198.51.100.0/24``, ``2001:db8:1::/48``;
    '' when grouping by AS and its AS is unknown."""
    if by == "asn":
        return f"AS{asn}" if asn else ""
    return str(ipaddress.ip_network(f"{ip}/{PREFIX_LENGTH[ip.version]}", strict=False))


def _suspects(
    engine: Engine, network: Network, start: int, end: int, fps: list[tuple[int, str]]
) -> list[dict[str, Any]]:
    """The rows of ``suspect_sources`` that the tag rules classify malicious (columnar check)."""
    bot = next((b for b, n in fps if n == BOT), None)
    rule = Suspicion(bot if bot is not None else -1, FINGERPRINT_SHARE, BRUTEFORCE_LOGINS)
    sql = sources.suspect_sources(
        engine.dialect, fps, rule, start_ns=start, end_ns=end, network=network,
        limit=MAX_SUSPECTS + 1,
    )  # fmt: skip
    table = engine.query(sql)
    if table.num_rows == 0:
        return []
    zero = [0] * table.num_rows
    mask = malicious_mask(
        table.column("packets").to_numpy(zero_copy_only=False),
        table.column(f"fp{bot}").to_numpy(zero_copy_only=False) if bot is not None else zero,
        table.column("exploits").to_numpy(zero_copy_only=False),
        table.column("logins").to_numpy(zero_copy_only=False),
    )
    return [r for r, keep in zip(table.to_pylist(), mask.tolist(), strict=True) if keep]


def _sensor(engine: Engine, settings: Settings) -> tuple[Secrecy, set[Source]]:
    rows = engine.query(sources.sensor_keys(engine.dialect)).to_pylist()
    keys = {Source.from_key(r["a4"], r["a6"]) for r in rows}
    texts = [str(k.address()) for k in keys if k.ip4 or k.ip6_hex]
    return Secrecy(settings.sensor_networks, texts), keys


def _entry(
    row: dict[str, Any], key: Source, ports: dict[str, int], cves: dict[str, int],
    fps: list[tuple[int, str]], scanners: ScannerList,
) -> dict[str, Any]:  # fmt: skip
    """One listed source: address, times, counts, evidence, tags and classification."""
    ip = key.address()
    fingerprints = {n: int(row[f"fp{b}"]) for b, n in fps if row[f"fp{b}"]}
    ev = Evidence(
        str(ip), int(row["packets"]), fingerprints, ports, cves, int(row["sessions"]),
        int(row["logins"]),
    )  # fmt: skip
    tags = tags_for(ev, scanners)
    verdict = classify(tags)
    top = sorted(ports.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_PORTS]
    return {
        "address": str(ip),
        "first_seen": ns_time(row["first_ns"]),
        "last_seen": ns_time(row["last_ns"]),
        "country": row["country"],
        "asn": int(row["asn"]) if row["asn"] else None,
        "classification": verdict.classification,
        "evidence": {
            "summary": verdict.evidence,
            "fingerprints": fingerprints,
            "cves": sorted(cves),
            "ports": [p for p, _ in top],
        },
        "tags": [t.as_dict() for t in tags],
        "packets": int(row["packets"]),
        "ports": int(row["ports"]),
        "sessions": int(row["sessions"]),
        "exploit_sessions": int(row["exploits"]),
        "logins": int(row["logins"]),
    }


def _group(by: str, entries: Iterable[dict[str, Any]], tz: str) -> list[dict[str, Any]]:
    """Entries grouped per network, busiest sources first, each network's list bounded."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        name = network_of(by, ipaddress.ip_address(e["address"]), e["asn"])
        if name:
            groups.setdefault(name, []).append(e)
    out: list[dict[str, Any]] = []
    for name, listed in groups.items():
        listed.sort(key=lambda e: (-e["packets"], -e["sessions"], e["address"]))
        out.append({
            "network": name,
            "by": by,
            "counts": {
                "sources": len(listed),
                "packets": sum(e["packets"] for e in listed),
                "sessions": sum(e["sessions"] for e in listed),
                "exploit_sessions": sum(e["exploit_sessions"] for e in listed),
                "logins": sum(e["logins"] for e in listed),
            },
            "listed": min(len(listed), MAX_PER_NETWORK),
            "sources": zoned(listed[:MAX_PER_NETWORK], tz),
        })  # fmt: skip
    out.sort(key=lambda g: (-g["counts"]["sources"], -g["counts"]["packets"], g["network"]))
    return out


def notify_feed(
    settings: Settings,
    by: str,
    *,
    first: str | None = None,
    last: str | None = None,
    network: str | None = None,
) -> list[dict[str, Any]]:
    """One entry per network (AS or /24 and /48 prefix) with its malicious-looking sources.

    ``first``/``last`` are local dates (default: all data); ``network`` keeps one
    network (``AS4713`` or a CIDR). Grouping by AS needs AS numbers in the store
    (the ``asn_source`` setting): without it this is a ConfigError saying so.
    """
    return _feed(settings, by, first, last, network)[0]


def _feed(
    settings: Settings, by: str, first: str | None, last: str | None, network: str | None
) -> tuple[list[dict[str, Any]], Secrecy]:
    """The feed (redacted) and the secrecy policy it was redacted with."""
    if by not in BY:
        raise ConfigError(f"--by must be one of {', '.join(BY)}, not {str(by)[:20]!r}")
    if by == "asn" and str(settings.asn_source) == "none":
        raise ConfigError(
            'notify --by asn needs AS numbers: set asn_source = "mmdb:FILE" (an ASN mmdb such'
            " as GeoLite2-ASN), run teiten enrich, or use --by prefix"
        )
    start, end = _span(settings, first, last)
    filt = parse_network(by, network) if network else Network()
    scanners = scanner_list(settings)
    fps = [(f.bit, f.name) for f in registry.registered()]
    with open_engine(settings) as engine:
        secrecy, sensor_keys = _sensor(engine, settings)
        rows = _suspects(engine, filt, start, end, fps)
        if len(rows) > MAX_SUSPECTS:
            _log.warning(
                "notify: more than %d suspect sources; the feed lists the first", MAX_SUSPECTS
            )
            rows = rows[:MAX_SUSPECTS]
        keyed = [(Source.from_key(r["a4"], r["a6"]), r) for r in rows]
        keyed = [
            (k, r) for k, r in keyed if k not in sensor_keys and not secrecy.is_secret(k.address())
        ]
        ports = ports_of(engine, [k for k, _ in keyed], start, end)
        cves = cves_of(engine, [k for k, r in keyed if r["exploits"]], start, end)
    entries = [_entry(r, k, ports.get(k, {}), cves.get(k, {}), fps, scanners) for k, r in keyed]
    entries = [e for e in entries if e["classification"] == "malicious"]
    feed: list[dict[str, Any]] = secrecy.redact_data(_group(by, entries, str(settings.tz)))
    return feed, secrecy


FORMATS = ("csv", "json")
COLUMNS = ("network", "address", "first_seen", "last_seen", "country", "asn", "classification",
           "fingerprints", "cves", "ports", "packets", "sessions", "exploit_sessions", "logins",
           "evidence")  # fmt: skip
"""The columns of a CSV feed file: one row per source."""
INDEX_COLUMNS = ("network", "file", "sources", "listed", "packets", "sessions")


def file_name(network: str, fmt: str) -> str:
    """A network's file name: only letters, digits, '.', '_' and '-' (``198.51.100.0_24.csv``)."""
    stem = re.sub(r"[^A-Za-z0-9.-]", "_", network).strip("._") or "network"
    return f"{stem[:100]}.{fmt}"


def _flat(group: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    ev = source["evidence"]
    fps = ",".join(f"{k}:{v}" for k, v in sorted(ev["fingerprints"].items()))
    values = {**source, "network": group["network"], "fingerprints": fps, "cves": ev["cves"],
              "ports": ev["ports"], "evidence": ev["summary"]}  # fmt: skip
    return {c: values.get(c) for c in COLUMNS}


def write_feed(
    settings: Settings,
    out: Path,
    by: str,
    fmt: str,
    *,
    first: str | None = None,
    last: str | None = None,
    network: str | None = None,
) -> list[Path]:
    """``teiten notify``: one file per network in ``out`` plus ``index.<fmt>``; the paths.

    Every file is read back and checked for sensor addresses before it is kept
    (``Secrecy.check_files``).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not {str(fmt)[:20]!r}")
    feed, secrecy = _feed(settings, by, first, last, network)
    out.mkdir(exist_ok=True)
    paths: list[Path] = []
    index: list[dict[str, Any]] = []
    for group in feed:
        path = out / file_name(str(group["network"]), fmt)
        if fmt == "json":
            text = json.dumps(group, ensure_ascii=True, indent=1)
        else:
            text = csv_text([_flat(group, s) for s in group["sources"]], COLUMNS) + "\n"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
        counts = group["counts"]
        values = (group["network"], path.name, counts["sources"], group["listed"],
                  counts["packets"], counts["sessions"])  # fmt: skip
        index.append(dict(zip(INDEX_COLUMNS, values, strict=True)))
    index_path = out / f"index.{fmt}"
    if fmt == "json":
        index_path.write_text(json.dumps(index, ensure_ascii=True, indent=1), encoding="utf-8")
    else:
        index_path.write_text(csv_text(index, INDEX_COLUMNS) + "\n", encoding="utf-8")
    paths.append(index_path)
    secrecy.check_files(paths)
    return paths
