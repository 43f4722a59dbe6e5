"""Build a STIX 2.1 bundle of what attackers used against the sensor, fit to share.

:func:`stix_bundle` takes rows of the ``indicators`` view (``type``,
``value``) and rows of the ``sessions`` view (``kind``, ``signatures``,
``cves``, ``jvn``, ``indicators``, ``ts_first``, ``ts_last``, ``dst``) and
returns the bundle as JSON text, built and validated by the ``stix2`` library.

**Only evidence of an attack becomes an indicator**: an indicator is exported
when at least one session naming it is classified as exploitation or malware
delivery (kind ``exploit`` or ``bot``, see :data:`MALICIOUS_KINDS`); its times
and count come from those sessions alone. A URL from a crawler's User-Agent or
an ad tracker in an unclassified, scanner or benign session is never called
``malicious-activity``.

The bundle holds, every object marked with the chosen TLP 2.0
marking-definition (``object_marking_refs``, the ``stix_tlp`` setting,
default TLP:AMBER) and created by the producer:

* the official TLP 2.0 marking-definition (:mod:`teiten.export.tlp`) and one
  Identity, the producer;
* one Indicator per kept row (``labels``: the signatures matched, then
  ``source-tag:NAME`` for each tag of the sources that sent those sessions, when
  the caller passes them — tags name behaviour, never an address), its pattern
  made from the exact value (``[url:value = '…']``, ``domain-name``, ``ipv4-addr``/``ipv6-addr``,
  ``network-traffic`` for ``ip_port``, ``file:name``, ``file:hashes``), with a
  Sighting (``count`` = sessions, ``first_seen``, ``last_seen``) by the producer;
* an Infrastructure (``hosting-malware``) per download host named by a URL,
  domain, IP or IP:port indicator;
* an Attack Pattern per exploit signature matched, a Malware family per family
  a matched signature names (its ``family`` key), and a Vulnerability per CVE of
  those signatures (JVN ids as further external references);
* relationships only of the types STIX 2.1 defines for their source and target
  (:data:`RELATIONSHIPS`): indicator ``indicates`` malware, attack-pattern and
  infrastructure; attack-pattern ``targets`` vulnerability and ``delivers``
  malware; infrastructure ``delivers`` malware; malware ``exploits``
  vulnerability — each from what one session showed together.

Ids are UUIDv5 of the object's content and every timestamp comes from the
data, so the same rows give the same bundle byte for byte. **The sensor's own
addresses never appear**: an indicator that is, contains or points at one of
them in any notation (:class:`teiten.secrecy.Secrecy`; every session's ``dst``
counts as one) is left out, and the finished bundle is searched again.
"""

from __future__ import annotations

import ipaddress
import json
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
from teiten.classify.signatures import KINDS, SignatureSet, load_signatures
from teiten.errors import TeitenError
from teiten.export.tlp import DEFAULT, marking_definition
from teiten.secrecy import Secrecy

NAMESPACE = uuid.UUID("bf262d30-7bc9-428d-b370-c2ff2e56f65b")
"""UUIDv5 namespace of teiten's STIX ids (fixed: changing it changes every id)."""
MALICIOUS_KINDS = ("exploit", "bot")
"""Session kinds that are exploitation or malware delivery: only they yield indicators."""
ALIASES = {"Satori": ("Okiru",), "Gafgyt": ("Bashlite",)}
"""Other names of malware families, given as the family's ``aliases``."""
RELATIONSHIPS: dict[tuple[str, str], frozenset[str]] = {
    ("indicator", "indicates"): frozenset({"attack-pattern", "campaign", "infrastructure",
                                           "intrusion-set", "malware", "threat-actor", "tool"}),
    ("attack-pattern", "delivers"): frozenset({"malware"}),
    ("attack-pattern", "targets"): frozenset({"identity", "location", "vulnerability"}),
    ("infrastructure", "delivers"): frozenset({"malware"}),
    ("malware", "exploits"): frozenset({"vulnerability"}),
}  # fmt: skip
"""(source type, relationship type) → allowed target types, from the STIX 2.1
relationship tables of each object (only those this module uses)."""
SOURCE_TAG = "source-tag:"
"""Prefix of an indicator label naming a tag of the sources that used it (``source-tag:mirai``)."""
HOST_KINDS = ("url", "domain", "ip", "ip_port")
"""Indicator types that name a host: each such host becomes an Infrastructure."""

MAX_COUNT = 999_999_999
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LEGACY_V4 = re.compile(r"(?i)[0-9a-fx.]+")
_NOT_TEXT = ("id", "type", "spec_version", "created", "modified", "valid_from", "first_seen",
             "last_seen", "pattern_type")  # fmt: skip
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
    marking: str
    families: dict[str, _Span] = field(default_factory=lambda: defaultdict(_Span))
    patterns: dict[str, _Span] = field(default_factory=lambda: defaultdict(_Span))
    """Exploit signature id → when it was seen."""
    hosts: dict[str, _Span] = field(default_factory=lambda: defaultdict(_Span))
    cves: dict[str, _Span] = field(default_factory=lambda: defaultdict(_Span))
    links: dict[tuple[str, str, str], _Span] = field(default_factory=lambda: defaultdict(_Span))
    """(source id, relationship type, target id) → when the link was seen."""
    objects: list[Any] = field(default_factory=list)

    def common(self) -> dict[str, Any]:
        """Properties every object the producer makes carries."""
        return {"created_by_ref": self.identity, "object_marking_refs": [self.marking]}

    def link(self, source: str, kind: str, target: str, first: datetime, last: datetime) -> None:
        allowed = RELATIONSHIPS.get((source.split("--")[0], kind), frozenset())
        if target.split("--")[0] not in allowed:
            raise ValueError(f"STIX 2.1 defines no {source} {kind} {target} relationship")
        self.links[source, kind, target].add(first, last)


def session_kind(row: Mapping[str, Any], sigs: SignatureSet) -> str | None:
    """A session's kind: as stored, else the strongest kind among its signatures."""
    if row.get("kind"):
        return str(row["kind"])
    kinds = set()
    for sid in row.get("signatures") or ():
        try:
            kinds.add(sigs.get(str(sid)).kind)
        except KeyError:
            continue
    return next((k for k in KINDS if k in kinds), None)


def _evidence(
    sessions: Sequence[Mapping[str, Any]], sigs: SignatureSet
) -> dict[str, list[Mapping[str, Any]]]:
    """Indicator value → the sessions classified as exploitation or delivery that name it."""
    out: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in sessions:
        if session_kind(row, sigs) in MALICIOUS_KINDS:
            for value in row.get("indicators") or ():
                out[str(value)].append(row)
    return out


def _signature_facts(
    signature_ids: Iterable[str], sigs: SignatureSet
) -> tuple[set[str], set[str], set[str]]:
    """Families named, exploit signatures and their CVEs among some signature ids."""
    families: set[str] = set()
    exploits: set[str] = set()
    cves: set[str] = set()
    for sid in signature_ids:
        try:
            s = sigs.get(sid)
        except KeyError:
            continue
        families |= {s.family} if s.family else set()
        if s.kind == "exploit":
            exploits.add(s.id)
            cves |= set(s.cves)
    return families, exploits, cves


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


def _source_labels(
    evidence: Sequence[Mapping[str, Any]], source_tags: Mapping[str, Sequence[str]], own: Secrecy
) -> list[str]:
    """``source-tag:NAME`` for each tag of the sources that sent the sessions (by session id);
    a tag that names a sensor address is left out."""
    names = {str(t) for r in evidence for t in source_tags.get(str(r.get("id")), ())}
    return [f"{SOURCE_TAG}{n}" for n in sorted(names) if n and not own.names_sensor(n)]


def _indicator(
    g: _Graph, row: Mapping[str, Any], pattern: str, evidence: Sequence[Mapping[str, Any]],
    sigs: SignatureSet, source_labels: Sequence[str] = (),
) -> None:  # fmt: skip
    """One Indicator, its Sighting, and what each session naming it shows it indicates."""
    kind, value = str(row["type"]), str(row["value"])
    first = min(_when(r.get("ts_first")) for r in evidence)
    last = max(first, *(_when(r.get("ts_last")) for r in evidence))
    ind_id = _id("indicator", kind, value)
    count = len(evidence)
    signatures = sorted({str(s) for r in evidence for s in r.get("signatures") or ()})
    g.objects.append(stix2.v21.Indicator(
        id=ind_id, created=first, modified=last,
        name=f"{kind} {defang(value)}", indicator_types=["malicious-activity"],
        description=f"Seen in {count} session(s) classified as exploitation or malware "
                    "delivery on a darknet sensor or honeypot (teiten).",
        pattern=pattern, pattern_type="stix", valid_from=first,
        labels=[*signatures, *source_labels] or None,
        **g.common(),
    ))  # fmt: skip
    g.objects.append(stix2.v21.Sighting(
        id=_id("sighting", ind_id), created=first, modified=last, sighting_of_ref=ind_id,
        where_sighted_refs=[g.identity], count=min(count, MAX_COUNT), first_seen=first,
        last_seen=last, **g.common(),
    ))  # fmt: skip
    for r in evidence:
        families, exploits, _ = _signature_facts(r.get("signatures") or (), sigs)
        one, two = _when(r.get("ts_first")), _when(r.get("ts_last"))
        two = max(one, two)
        for name in families:
            g.families[name].add(one, two)
            g.link(ind_id, "indicates", _id("malware", name), one, two)
        for sid in exploits:
            g.patterns[sid].add(one, two)
            g.link(ind_id, "indicates", _id("attack-pattern", sid), one, two)
        host = _host(kind, value.lower()).strip("[]") if kind in HOST_KINDS else ""
        if host:
            g.hosts[host].add(one, two)
            g.link(ind_id, "indicates", _id("infrastructure", host), one, two)
            for name in families:
                g.link(_id("infrastructure", host), "delivers", _id("malware", name), one, two)


def _link_sessions(g: _Graph, sessions: Iterable[Mapping[str, Any]], sigs: SignatureSet) -> None:
    """What one session shows together: the exploit's target and payload, a family's exploit."""
    for row in sessions:
        one, two = _when(row.get("ts_first")), _when(row.get("ts_last"))
        two = max(one, two)
        families, exploits, _ = _signature_facts(row.get("signatures") or (), sigs)
        for sid in exploits:
            pattern = _id("attack-pattern", sid)
            for cve in sigs.get(sid).cves:
                g.cves[cve].add(one, two)
                g.link(pattern, "targets", _id("vulnerability", cve), one, two)
                for name in families:
                    g.link(_id("malware", name), "exploits", _id("vulnerability", cve), one, two)
            for name in families:
                g.link(pattern, "delivers", _id("malware", name), one, two)


def _domain_objects(g: _Graph, jvn: Mapping[str, set[str]], sigs: SignatureSet) -> list[Any]:
    out: list[Any] = []
    for name in sorted(g.families):
        out.append(stix2.v21.Malware(
            id=_id("malware", name), name=name, is_family=True,
            aliases=list(ALIASES.get(name, ())) or None, malware_types=["bot"],
            **g.families[name].times(), **g.common(),
        ))  # fmt: skip
    for sid in sorted(g.patterns):
        s = sigs.get(sid)
        refs = [{"source_name": "teiten", "external_id": s.id}]
        refs += [{"source_name": "cve", "external_id": c} for c in s.cves]
        out.append(stix2.v21.AttackPattern(
            id=_id("attack-pattern", sid), name=s.title, external_references=refs,
            **g.patterns[sid].times(), **g.common(),
        ))  # fmt: skip
    for host in sorted(g.hosts):
        out.append(stix2.v21.Infrastructure(
            id=_id("infrastructure", host), name=f"download server {defang(host)}",
            infrastructure_types=["hosting-malware"], first_seen=g.hosts[host].first,
            last_seen=g.hosts[host].last, **g.hosts[host].times(), **g.common(),
        ))  # fmt: skip
    for cve in sorted(g.cves):
        refs = [{"source_name": "cve", "external_id": cve}]
        refs += [{"source_name": "jvn", "external_id": j} for j in sorted(jvn.get(cve, ()))]
        out.append(stix2.v21.Vulnerability(
            id=_id("vulnerability", cve), name=cve, external_references=refs,
            **g.cves[cve].times(), **g.common(),
        ))  # fmt: skip
    return out


def _relationships(g: _Graph) -> list[Any]:
    return [stix2.v21.Relationship(
        id=_id("relationship", src, kind, dst), relationship_type=kind, source_ref=src,
        target_ref=dst, **span.times(), **g.common(),
    ) for (src, kind, dst), span in sorted(g.links.items())]  # fmt: skip


def _texts(obj: Any, key: str = "") -> Iterable[str]:
    """The strings of a STIX object that carry content (not ids, refs, types or times)."""
    if isinstance(obj, str):
        if key not in _NOT_TEXT and not key.endswith(("_ref", "_refs")):
            yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _texts(v, k)
    elif isinstance(obj, list):
        for v in obj:
            yield from _texts(v, key)


def stix_bundle(
    indicators: list[dict[str, Any]],
    sessions: list[dict[str, Any]],
    *,
    identity_name: str = "teiten",
    sensor_addresses: Iterable[str] = frozenset(),
    sensor_networks: Iterable[str] = (),
    signatures: SignatureSet | None = None,
    tlp: str = DEFAULT,
    source_tags: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """The STIX 2.1 bundle of some indicator rows, as pretty JSON (see the module notes).

    ``source_tags`` maps a session id to the tag names of the source that sent it
    (``teiten.tags``); an indicator's ``labels`` then carry ``source-tag:NAME`` for the
    tags of the sources of the sessions naming it, after its signatures.

    Raises :class:`~teiten.errors.TeitenError` if the finished bundle still names
    a sensor address (it never should: such indicators are left out first).
    """
    sigs = signatures if signatures is not None else load_signatures()
    dsts = [str(r["dst"]) for r in sessions if r.get("dst")]
    own = Secrecy(sensor_networks, [*sensor_addresses, *dsts])
    evidence = _evidence(sessions, sigs)
    marking = stix2.parse(marking_definition(tlp), allow_custom=False)
    g = _Graph(_id("identity", identity_name), marking.id)
    used: dict[int, Mapping[str, Any]] = {}
    for row in sorted(indicators, key=lambda r: (str(r["type"]), str(r["value"]))):
        kind, value = str(row["type"]), str(row["value"])
        pattern = stix_pattern(kind, value)
        rows = evidence.get(value, [])
        if pattern is None or not rows or own.names_sensor(value):
            continue
        _indicator(g, row, pattern, rows, sigs, _source_labels(rows, source_tags or {}, own))
        used.update((id(r), r) for r in rows)
    _link_sessions(g, used.values(), sigs)
    start = min((o.created for o in g.objects), default=_EPOCH)
    identity = stix2.v21.Identity(
        id=g.identity, name=identity_name, identity_class="system", created=start,
        modified=start, object_marking_refs=[marking.id],
    )  # fmt: skip
    objects = [marking, identity, *_domain_objects(g, _jvn_by_cve(sessions, sigs), sigs),
               *g.objects, *_relationships(g)]  # fmt: skip
    bundle_id = _id("bundle", *sorted(o.id for o in objects))
    text = str(stix2.v21.Bundle(objects=objects, id=bundle_id).serialize(pretty=True))
    for value in _texts(json.loads(text)):
        if own.leaks(value):
            raise TeitenError("refusing to publish the STIX bundle: it names a sensor address")
    return text
