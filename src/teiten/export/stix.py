"""Build a STIX 2.1 bundle of teiten's indicators, with the malware and CVEs they point to.

:func:`stix_bundle` takes rows of the ``indicators`` view (``type``, ``value``,
``first_seen``, ``last_seen``, ``sessions``, ``signatures``) and rows of the
``sessions`` view (``signatures``, ``cves``, ``jvn``, ``indicators``,
``ts_first``, ``ts_last``, ``dst``) and returns the bundle as JSON text, built
and validated by the ``stix2`` library. It holds:

* one Identity, the producer (every object's ``created_by_ref``);
* one Indicator per indicator row, its pattern made from the exact value
  (``[url:value = '…']``, ``domain-name``, ``ipv4-addr``/``ipv6-addr``,
  ``network-traffic`` for ``ip_port``, ``file:name``, ``file:hashes``), with a
  Sighting (``count`` = sessions, ``first_seen``, ``last_seen``) by the producer;
* a Malware family where a matched signature's id or title names one (Mirai,
  Satori…), which the indicator ``indicates``;
* a Vulnerability per CVE of the indicator's signatures or sessions (JVN ids as
  further external references), which the indicator is ``related-to`` (STIX
  defines no closer Indicator→Vulnerability type) and a family ``exploits``
  when one session shows both.

Ids are UUIDv5 of the object's content and every timestamp comes from the
data, so the same rows give the same bundle byte for byte. **The sensor's own
addresses never appear**: an indicator that is, contains or points into one of
them (dotted, integer or hex forms) or ``sensor_networks`` is left out, and
every session's ``dst`` counts as a sensor address too.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import stix2

from teiten.classify.indicators import defang
from teiten.classify.signatures import SignatureSet, load_signatures
from teiten.enrich.network import NetworkSet

NAMESPACE = uuid.UUID("bf262d30-7bc9-428d-b370-c2ff2e56f65b")
"""UUIDv5 namespace of teiten's STIX ids (fixed: changing it changes every id)."""
FAMILIES: tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...] = (
    ("Mirai", (), re.compile(r"\bmirai\b", re.I)),
    ("Satori", ("Okiru",), re.compile(r"\b(?:satori|okiru)\b", re.I)),
    ("TheMoon", (), re.compile(r"\bthe ?moon\b", re.I)),
    ("Hajime", (), re.compile(r"\bhajime\b", re.I)),
    ("Gafgyt", ("Bashlite",), re.compile(r"\b(?:gafgyt|bashlite)\b", re.I)),
    ("Mozi", (), re.compile(r"\bmozi\b", re.I)),
)
"""Malware families (name, aliases, pattern) recognised in a signature's id or title."""
MAX_COUNT = 999_999_999
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LEGACY_V4 = re.compile(r"(?i)[0-9a-fx.]+")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def pattern_text(value: str) -> str:
    """``value`` as a STIX pattern string literal: quoted, ``\\`` and ``'`` escaped.

    >>> pattern_text("it's")
    "'it\\\\'s'"
    """
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def stix_pattern(kind: str, value: str) -> str | None:
    """The STIX pattern matching one indicator, or None for a type STIX has no object for."""
    if not value or (kind == "sha256" and not _SHA256.fullmatch(value)):
        return None
    if kind in ("ip", "ip_port"):
        host, _, port = value.rpartition(":") if kind == "ip_port" else (value, "", "")
        ip = _ip(host.strip("[]"))
        ok_port = port.isascii() and port.isdigit() and int(port) < 65536
        if ip is None or (kind == "ip_port" and not ok_port):
            return None
        addr = f"ipv{ip.version}-addr"
        if kind == "ip":
            return f"[{addr}:value = {pattern_text(str(ip))}]"
        return (f"[network-traffic:dst_ref.type = '{addr}' AND network-traffic:dst_ref.value = "
                f"{pattern_text(str(ip))} AND network-traffic:dst_port = {int(port)}]")  # fmt: skip
    objects = {"url": "url:value", "domain": "domain-name:value", "filename": "file:name",
               "sha256": "file:hashes.'SHA-256'"}  # fmt: skip
    path = objects.get(kind)
    return None if path is None else f"[{path} = {pattern_text(value)}]"


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _LEGACY_V4.fullmatch(text):  # 3221225985, 0xc0000201, 0300.0.2.1 (parsed, not resolved)
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


class SensorFilter:
    """Tells whether an indicator value names one of the sensor's addresses or networks."""

    def __init__(self, addresses: Iterable[str], networks: Iterable[str] = ()) -> None:
        self.ips = {ip for a in addresses if (ip := _ip(str(a).strip())) is not None}
        self.nets = [ipaddress.ip_network(c) for c in NetworkSet(networks).cidrs]
        forms: list[str] = []
        for ip in sorted(self.ips, key=str):
            if ip.version == 6:
                forms += [rf"(?<![0-9a-f:]){re.escape(f)}(?![0-9a-f:])" for f in
                          (str(ip), ip.exploded)]  # fmt: skip
                continue
            forms.append(rf"(?<![0-9]){re.escape(str(ip))}(?![0-9])")
            if int(ip) >= 1 << 24:  # shorter integers would match ordinary numbers
                forms += [rf"(?<![0-9]){int(ip)}(?![0-9])",
                          rf"(?<![0-9a-f]){int(ip):08x}(?![0-9a-f])"]  # fmt: skip
        self.forms = re.compile("|".join(forms)) if forms else None
        """Any written form of a sensor address (dotted, integer, hex; IPv6 short and long)."""

    def names_sensor(self, kind: str, value: str) -> bool:
        """Whether ``value`` is, contains or points at a sensor address."""
        text = value.lower()
        if self.forms is not None and self.forms.search(text):
            return True
        ip = _ip(_host(kind, text))
        return ip is not None and (ip in self.ips or any(ip in n for n in self.nets))


def _host(kind: str, value: str) -> str:
    if kind == "url":
        try:
            return urlsplit(value).hostname or ""
        except ValueError:
            return ""
    if kind == "ip_port":
        return value.rpartition(":")[0].strip("[]")
    return value


def _when(value: Any) -> datetime:
    """A UTC datetime from a datetime (naive is UTC), ns since the epoch or ISO 8601 text."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, int) and not isinstance(value, bool):
        seconds, ns = divmod(value, 10**9)
        return datetime.fromtimestamp(seconds, UTC).replace(microsecond=ns // 1000)
    if isinstance(value, str) and value:
        return _when(datetime.fromisoformat(value.replace("Z", "+00:00")))
    return _EPOCH


def _id(kind: str, *key: str) -> str:
    return f"{kind}--{uuid.uuid5(NAMESPACE, '|'.join((kind, *key)))}"


@dataclass
class _Span:
    """First and last time of something, widened as evidence comes in."""

    first: datetime | None = None
    last: datetime | None = None

    def add(self, first: datetime, last: datetime) -> None:
        self.first = first if self.first is None else min(self.first, first)
        self.last = last if self.last is None else max(self.last, last)

    def times(self) -> dict[str, datetime]:
        first = self.first or _EPOCH
        return {"created": first, "modified": max(first, self.last or first)}


@dataclass
class _Graph:
    """What the bundle will hold, keyed by content, before any STIX object is made."""

    identity: str
    families: dict[str, _Span] = field(default_factory=lambda: defaultdict(_Span))
    cves: dict[str, _Span] = field(default_factory=lambda: defaultdict(_Span))
    links: dict[tuple[str, str, str], _Span] = field(default_factory=lambda: defaultdict(_Span))
    """(source id, relationship type, target id) → when the link was seen."""
    objects: list[Any] = field(default_factory=list)


def _family_of(signature_ids: Iterable[str], sigs: SignatureSet) -> set[str]:
    found = set()
    for sid in signature_ids:
        try:
            title = sigs.get(sid).title
        except KeyError:
            title = ""
        found |= {name for name, _, rx in FAMILIES if rx.search(sid) or rx.search(title)}
    return found


def _cves_of(signature_ids: Iterable[str], sigs: SignatureSet) -> set[str]:
    out: set[str] = set()
    for sid in signature_ids:
        try:
            out |= set(sigs.get(sid).cves)
        except KeyError:
            continue
    return out


def _jvn_by_cve(sessions: Sequence[Mapping[str, Any]], sigs: SignatureSet) -> dict[str, set[str]]:
    """JVN ids per CVE: paired in a signature, or the only CVE of a session that names them."""
    out: dict[str, set[str]] = defaultdict(set)
    for s in sigs.signatures:
        for cve in s.cves:
            out[cve] |= set(s.jvn)
    for row in sessions:
        cves = list(row.get("cves") or ())
        if len(cves) == 1:
            out[cves[0]] |= set(row.get("jvn") or ())
    return out


def _indicator(g: _Graph, row: Mapping[str, Any], pattern: str) -> tuple[str, datetime, datetime]:
    kind, value = str(row["type"]), str(row["value"])
    first, last = _when(row.get("first_seen")), _when(row.get("last_seen"))
    last = max(first, last)
    ind_id = _id("indicator", kind, value)
    sessions = int(row.get("sessions") or 1)
    g.objects.append(stix2.v21.Indicator(
        id=ind_id, created_by_ref=g.identity, created=first, modified=last,
        name=f"{kind} {defang(value)}", indicator_types=["malicious-activity"],
        description=f"Seen in {sessions} session(s) on a darknet sensor or honeypot (teiten).",
        pattern=pattern, pattern_type="stix", valid_from=first,
        labels=sorted({str(s) for s in row.get("signatures") or ()}) or None,
    ))  # fmt: skip
    g.objects.append(stix2.v21.Sighting(
        id=_id("sighting", ind_id), created_by_ref=g.identity, created=first, modified=last,
        sighting_of_ref=ind_id, where_sighted_refs=[g.identity], count=min(sessions, MAX_COUNT),
        first_seen=first, last_seen=last,
    ))  # fmt: skip
    return ind_id, first, last


def _link_indicator(
    g: _Graph, ind: tuple[str, datetime, datetime], signature_ids: set[str],
    cves: set[str], sigs: SignatureSet,
) -> None:  # fmt: skip
    ind_id, first, last = ind
    for name in _family_of(signature_ids, sigs):
        g.families[name].add(first, last)
        g.links[ind_id, "indicates", _id("malware", name)].add(first, last)
    for cve in cves | _cves_of(signature_ids, sigs):
        g.cves[cve].add(first, last)
        g.links[ind_id, "related-to", _id("vulnerability", cve)].add(first, last)


def _link_sessions(g: _Graph, sessions: Sequence[Mapping[str, Any]], sigs: SignatureSet) -> None:
    """``exploits`` from a family to a CVE seen in one session (both already in the bundle)."""
    for row in sessions:
        families = _family_of(row.get("signatures") or (), sigs) & set(g.families)
        cves = {str(c) for c in row.get("cves") or ()} & set(g.cves)
        first, last = _when(row.get("ts_first")), _when(row.get("ts_last"))
        for name in families:
            for cve in cves:
                g.links[_id("malware", name), "exploits", _id("vulnerability", cve)].add(
                    first, max(first, last)
                )


def _domain_objects(g: _Graph, jvn: Mapping[str, set[str]]) -> list[Any]:
    out: list[Any] = []
    for name, aliases, _ in FAMILIES:
        if name in g.families:
            out.append(stix2.v21.Malware(
                id=_id("malware", name), created_by_ref=g.identity, name=name, is_family=True,
                aliases=list(aliases) or None, malware_types=["bot"], **g.families[name].times(),
            ))  # fmt: skip
    for cve in sorted(g.cves):
        refs = [{"source_name": "cve", "external_id": cve}]
        refs += [{"source_name": "jvn", "external_id": j} for j in sorted(jvn.get(cve, ()))]
        out.append(stix2.v21.Vulnerability(
            id=_id("vulnerability", cve), created_by_ref=g.identity, name=cve,
            external_references=refs, **g.cves[cve].times(),
        ))  # fmt: skip
    return out


def _relationships(g: _Graph) -> list[Any]:
    return [stix2.v21.Relationship(
        id=_id("relationship", src, kind, dst), created_by_ref=g.identity,
        relationship_type=kind, source_ref=src, target_ref=dst, **span.times(),
    ) for (src, kind, dst), span in sorted(g.links.items())]  # fmt: skip


def stix_bundle(
    indicators: list[dict[str, Any]],
    sessions: list[dict[str, Any]],
    *,
    identity_name: str = "teiten",
    sensor_addresses: Iterable[str] = frozenset(),
    sensor_networks: Iterable[str] = (),
    signatures: SignatureSet | None = None,
) -> str:
    """The STIX 2.1 bundle of some indicator rows, as pretty JSON (see the module notes)."""
    sigs = signatures if signatures is not None else load_signatures()
    own = SensorFilter([*sensor_addresses, *(str(r["dst"]) for r in sessions if r.get("dst"))],
                       sensor_networks)  # fmt: skip
    in_session: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in sessions:
        for value in row.get("indicators") or ():
            in_session[str(value)].append(row)
    kept = []
    for row in sorted(indicators, key=lambda r: (str(r["type"]), str(r["value"]))):
        pattern = stix_pattern(str(row["type"]), str(row["value"]))
        if pattern is not None and not own.names_sensor(str(row["type"]), str(row["value"])):
            kept.append((row, pattern))
    times = [_when(r.get("first_seen")) for r, _ in kept]
    g = _Graph(_id("identity", identity_name))
    for row, pattern in kept:
        related = in_session.get(str(row["value"]), [])
        sig_ids = {str(s) for r in [row, *related] for s in r.get("signatures") or ()}
        cves = {str(c) for r in related for c in r.get("cves") or ()}
        _link_indicator(g, _indicator(g, row, pattern), sig_ids, cves, sigs)
    _link_sessions(g, sessions, sigs)
    start = min(times, default=_EPOCH)
    identity = stix2.v21.Identity(id=g.identity, name=identity_name, identity_class="system",
                                  created=start, modified=start)  # fmt: skip
    objects = [identity, *_domain_objects(g, _jvn_by_cve(sessions, sigs)), *g.objects,
               *_relationships(g)]  # fmt: skip
    bundle_id = _id("bundle", *sorted(o.id for o in objects))
    return str(stix2.v21.Bundle(objects=objects, id=bundle_id).serialize(pretty=True))
