"""Tags derived from evidence in the store, and a source's classification from its tags.

The rules (docs/tags.md, "Derived tags"), each a constant below:

* a fingerprint on at least :data:`FINGERPRINT_SHARE` of the source's packets
  tags it with the fingerprint's name — ``mirai`` is malicious (only Mirai and its
  descendants send it), ``masscan``, ``zmap`` and the others are ``unknown``
  (researchers and attackers both use those tools);
* each CVE its sessions were classified to: ``exploit:CVE-…``, malicious;
* at least :data:`BRUTEFORCE_LOGINS` login attempts: ``bruteforce``, malicious;
* at least :data:`FINGERPRINT_SHARE` of its packets to Telnet ports: ``telnet-scanner``,
  unknown (describes, does not judge).

:func:`classify` then says ``malicious`` when any tag is malicious — evidence of an
attack wins over a known-scanner list, which can be stale or abused — else
``benign`` when a tag is benign, else ``unknown``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from teiten.tags.model import Evidence, Tag
from teiten.tags.scanners import ScannerList

FINGERPRINT_SHARE = 0.5
"""Share of a source's packets a fingerprint (or the Telnet ports) must reach to tag it."""
BRUTEFORCE_LOGINS = 10
"""Login attempts that make a source a credential brute-forcer."""
BOT = "mirai"
"""The fingerprint that is malicious on its own: Mirai's sequence number = destination."""
FINGERPRINT_CLASSES: Mapping[str, str] = {BOT: "malicious"}
"""Fingerprints whose tag is not ``unknown``."""
TELNET_PORTS = ("23/tcp", "2323/tcp")
DERIVED = "derived"


def _share(part: int, whole: int) -> str:
    return f"{part:,} of {whole:,} packets ({100.0 * part / whole:.0f} %)"


def fingerprint_tags(ev: Evidence) -> list[Tag]:
    """A tag per fingerprint carried by at least :data:`FINGERPRINT_SHARE` of the packets."""
    out = []
    for name, n in sorted(ev.fingerprints.items()):
        if ev.packets > 0 and n > 0 and n >= FINGERPRINT_SHARE * ev.packets:
            cls = FINGERPRINT_CLASSES.get(name, "unknown")
            text = f"{name} fingerprint on {_share(n, ev.packets)}"
            out.append(Tag(name, cls, text, DERIVED))
    return out


def activity_tags(ev: Evidence) -> list[Tag]:
    """Exploit CVEs, brute force and Telnet scanning."""
    out = [
        Tag(f"exploit:{cve}", "malicious", f"{n:,} session(s) classified to {cve}", DERIVED)
        for cve, n in sorted(ev.cves.items())
        if n > 0
    ]
    if ev.logins >= BRUTEFORCE_LOGINS:
        pairs = (
            f" ({ev.credential_pairs:,} distinct credential pairs)" if ev.credential_pairs else ""
        )
        text = f"{ev.logins:,} login attempts{pairs}, at least {BRUTEFORCE_LOGINS}"
        out.append(Tag("bruteforce", "malicious", text, DERIVED))
    telnet = sum(ev.ports.get(p, 0) for p in TELNET_PORTS)
    if ev.packets > 0 and telnet > 0 and telnet >= FINGERPRINT_SHARE * ev.packets:
        text = f"{_share(telnet, ev.packets)} to {' or '.join(TELNET_PORTS)}"
        out.append(Tag("telnet-scanner", "unknown", text, DERIVED))
    return out


def tags_for(ev: Evidence, scanners: ScannerList | None = None) -> list[Tag]:
    """Every tag of one source: known-scanner lists first, then what the store shows."""
    listed: list[Tag] = []
    if scanners is not None:
        try:
            listed = scanners.tags(ipaddress.ip_address(ev.address))
        except ValueError:
            listed = []
    return [*listed, *fingerprint_tags(ev), *activity_tags(ev)]


@dataclass(frozen=True)
class Verdict:
    """A source's classification and the evidence it rests on (one line)."""

    classification: str
    evidence: str


def classify(tags: Iterable[Tag]) -> Verdict:
    """``malicious`` if any tag is, else ``benign`` if any tag is, else ``unknown``."""
    tags = list(tags)
    bad = [t for t in tags if t.cls == "malicious"]
    good = [t for t in tags if t.cls == "benign"]
    if bad:
        text = "; ".join(f"{t.name}: {t.evidence}" for t in bad)
        if good:
            names = ", ".join(t.name for t in good)
            text += f" (also listed as {names}: attack evidence wins over a scanner list)"
        return Verdict("malicious", text)
    if good:
        return Verdict("benign", "; ".join(f"{t.name}: {t.evidence}" for t in good))
    return Verdict("unknown", "no known-scanner range and no attack evidence")


def malicious_mask(
    packets: npt.ArrayLike, bot_packets: npt.ArrayLike, exploits: npt.ArrayLike,
    logins: npt.ArrayLike,
) -> npt.NDArray[np.bool_]:  # fmt: skip
    """For many sources at once (one array element each): whether any malicious rule holds —
    the Mirai fingerprint's share, a session classified to a CVE, or brute force."""
    p = np.asarray(packets, np.int64)
    bot = np.asarray(bot_packets, np.int64)
    return (
        ((bot > 0) & (bot >= FINGERPRINT_SHARE * p))
        | (np.asarray(exploits, np.int64) > 0)
        | (np.asarray(logins, np.int64) >= BRUTEFORCE_LOGINS)
    )


def classify_many(
    columns: Mapping[str, Sequence[Any] | npt.NDArray[Any]], scanners: ScannerList | None = None
) -> npt.NDArray[np.str_]:
    """The classification of many sources from columns (``packets``, ``bot_packets``,
    ``exploits``, ``logins``; ``a4`` IPv4 addresses as integers, 0 for IPv6), the same
    rule as :func:`classify` over :func:`tags_for` (IPv4 scanner ranges only)."""
    bad = malicious_mask(
        columns["packets"], columns["bot_packets"], columns["exploits"], columns["logins"]
    )
    out = np.full(bad.shape[0], "unknown", dtype="<U9")
    if scanners is not None and "a4" in columns:
        a4 = np.asarray(columns["a4"], np.int64)
        out[scanners.category_mask4(a4, "benign") & (a4 > 0)] = "benign"
        bad |= scanners.category_mask4(a4, "malicious") & (a4 > 0)
    out[bad] = "malicious"
    return out
