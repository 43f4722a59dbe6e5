"""The one secrecy policy for everything teiten publishes: sensor addresses never leave.

A sensor is only useful while attackers do not know its addresses, so every
published output — report (HTML, Markdown, PDF text, chart text), STIX,
indicator listings in every format, webhook bodies — passes through one
:class:`Secrecy`. It knows the sensor's networks and addresses (and,
optionally, hosts to mask, such as attackers' download servers) and finds
every *textual notation* of those addresses:

* IPv4 in every form ``inet_aton`` accepts — dotted decimal with leading
  zeros (``203.000.113.005``, also read as decimal), octal
  (``0313.0.0161.05``), hex (``0xCB007105``), dotted hex
  (``0xcb.0x0.0x71.0x5``), the short ``a.b.c`` and ``a.b`` forms
  (``203.0.28933``, ``203.28933``), a 32-bit integer — plus a bare
  8-hex-digit number (``cb007105``) and dashed forms (``203-0-113-5``);
* IPv6 in any spelling (compressed, expanded, zero-padded, upper case,
  dotted tail), including IPv4 embedded in it: mapped and translated
  (``::ffff:cb00:7105``), compatible (``::203.0.113.5``), NAT64
  (``64:ff9b::/96``, ``64:ff9b:1::/48``), 6to4 and Teredo;
* any of these written with %-escapes (``203%2E0%2E113%2E5``, ``%u002e``),
  HTML character references (``&#46;``, ``&#x2e;``, ``&period;``, also
  ``&amp;#46;``), backslash escapes (``\\x2e``), full-width or other
  compatibility characters, or defanged dots (``203.0.113[.]5``), inside
  URLs, Host headers, brackets and with ports.

Escapes are undone *per character* while a map back to the original text is
kept, so a match replaces exactly the original characters that spell the
address — the whole token, brackets of a bracketed IPv6 included — and
nothing next to it. A number is only ever masked when it maps into a sensor
network or onto a sensor address, so ordinary numbers stay untouched.
"""

from __future__ import annotations

import html.entities
import ipaddress
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from teiten.errors import ConfigError, DependencyError, TeitenError

MASK = "[redacted]"
"""What replaces a sensor address (or a masked host) in published text."""

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Net = ipaddress.IPv4Network | ipaddress.IPv6Network

_ESCAPE = re.compile(
    r"%(?P<pct>[0-9A-Fa-f]{2})"
    r"|%[uU](?P<pctu>[0-9A-Fa-f]{4})"
    r"|\\[xX](?P<bsx>[0-9A-Fa-f]{2})"
    r"|\\u(?P<bsu>[0-9A-Fa-f]{4})"
    r"|&#[xX](?P<hexref>[0-9A-Fa-f]{1,6});?"
    r"|&#(?P<decref>[0-9]{1,7});?"
    r"|&(?P<named>[A-Za-z][A-Za-z0-9]{1,31};?)"
    r"|(?P<defang>\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)|\[:\])"
    r"|(?P<other>[^\x00-\x7f])"
)
"""Every way of writing one character that :func:`_decode` undoes."""
_DOTS = {"\u3002": ".", "\uff61": ".", "\uff0e": "."}
_ROUNDS = 3
"""Escapes are undone this many times over (``%252E`` → ``%2E`` → ``.``)."""
_RUN = re.compile(r"[0-9A-Za-z.:]+")
"""A run of characters an address can be written with (split further below)."""
_DOTTED = re.compile(r"(?<![0-9])[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?![0-9])")
"""Dotted decimal glued to letters (``Host203.0.113.5``), missed by the runs."""
_DASHED = re.compile(r"(?<![0-9])[0-9]{1,3}(?:([-_])[0-9]{1,3})(?:\1[0-9]{1,3}){2}(?![0-9])")
"""``203-0-113-5`` as in reverse-DNS names (``ip-203-0-113-5.example``)."""
_PART = re.compile(r"0[xX][0-9A-Fa-f]*|[0-9]+")
_HEX8 = re.compile(r"[0-9A-Fa-f]{8}")
_URL_HOST = re.compile(
    r"(?i)\b((?:https?|ftp|tftp)://)(?:[^@/\s]*@)?(\[[0-9a-f:.]+\]|[^/\s:'\"<>`;|&()\[\]]+)"
)
_HOSTNAME = re.compile(r"(?i)[0-9a-z_-]+(?:\.[0-9a-z_-]+)+")
"""A host name worth masking: dotted labels (a bare word would mask ordinary text)."""
_LOW_V4 = 1 << 24
"""An address or host below 1.0.0.0 ("this network", or a small number read as an
address) is never masked: it would mask ordinary numbers such as ``0``."""
_EMBEDDING: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (ipaddress.IPv6Network("::ffff:0:0/96"), "mapped"),
    (ipaddress.IPv6Network("::ffff:0:0:0/96"), "translated"),
    (ipaddress.IPv6Network("::/96"), "compatible"),
    (ipaddress.IPv6Network("64:ff9b::/96"), "nat64"),
    (ipaddress.IPv6Network("64:ff9b:1::/48"), "local nat64"),
)
"""IPv6 prefixes whose last 32 bits are an IPv4 address."""
_TEXT_SUFFIXES = (".html", ".md", ".svg", ".json", ".csv", ".txt")
PDF_TIMEOUT = 120
"""Seconds ``pdftotext`` may take to read back one report."""
_MAX_GROUPS = 10
"""Colon-separated pieces an IPv6 address can span (8 groups, ``::`` adds up to 2)."""


class Secrecy:
    """The sensor's addresses and networks, found and masked in any notation.

    >>> s = Secrecy(networks=["203.0.113.0/24"])
    >>> s.redact("GET http://0xcb007105/x.sh Host: 203.000.113.005:80 size 4096")
    'GET http://[redacted]/x.sh Host: [redacted]:80 size 4096'
    >>> s.leaks("[::ffff:cb00:7105]:23 and 64:ff9b::cb00:7105")
    ['[::ffff:cb00:7105]', '64:ff9b::cb00:7105']
    """

    def __init__(
        self,
        networks: Iterable[str] = (),
        addresses: Iterable[str] = (),
        hosts: Iterable[str] = (),
    ) -> None:
        self.networks: list[Net] = []
        for text in networks:
            try:
                self.networks.append(ipaddress.ip_network(str(text).strip(), strict=False))
            except ValueError:
                raise ConfigError(
                    f"not a network: {text!r} (expected a CIDR such as 203.0.113.0/24)"
                ) from None
        self.addresses: set[IP] = set()
        for text in addresses:
            self.addresses |= _real(parse_address(str(text).strip()))
        names: set[str] = set()
        for text in hosts:
            host = str(text).strip().strip("[]")
            ips = _real(parse_address(host))
            if ips:
                self.addresses |= ips
            elif _HOSTNAME.fullmatch(host) and not parse_address(host):
                names.add(host.lower())
        self.hosts = sorted(names, key=len, reverse=True)
        self._hosts = (
            re.compile(
                "|".join(rf"(?<![0-9a-z-]){re.escape(h)}(?![0-9a-z-])" for h in self.hosts),
                re.I,
            )
            if self.hosts
            else None
        )

    def __bool__(self) -> bool:
        return bool(self.networks or self.addresses or self.hosts)

    def is_secret(self, ip: IP) -> bool:
        """Whether ``ip`` is a sensor address (or a masked host), or embeds one."""
        for candidate in (ip, *embedded_ipv4(ip)):
            if candidate in self.addresses:
                return True
            if any(candidate.version == n.version and candidate in n for n in self.networks):
                return True
        return False

    def redact(self, text: str) -> str:
        """``text`` with every token naming a sensor address (or a masked host) as :data:`MASK`."""
        spans = self._spans(text)
        if not spans:
            return text
        out: list[str] = []
        at = 0
        for start, end in spans:
            out += [text[at:start], MASK]
            at = end
        out.append(text[at:])
        return "".join(out)

    def __call__(self, text: str) -> str:
        """A :class:`Secrecy` is also the function ``text → redacted text``."""
        return self.redact(text)

    def leaks(self, text: str) -> list[str]:
        """The tokens of ``text`` that still name a sensor address (or a masked host)."""
        return [text[a:b] for a, b in self._spans(text)]

    def names_sensor(self, text: str) -> bool:
        """Whether a value (indicator, URL, ``ip:port``…) is, contains or points at one."""
        return bool(self._spans(text))

    def redact_data(self, obj: Any) -> Any:
        """``obj`` with every string in it (keys too) redacted, dicts, lists and tuples walked."""
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {self.redact_data(k): self.redact_data(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.redact_data(v) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self.redact_data(v) for v in obj)
        return obj

    def _spans(self, text: str) -> list[tuple[int, int]]:
        """Sorted, merged ``(start, end)`` ranges of ``text`` that must not be published."""
        if not self or not text:
            return []
        decoded, starts, ends = _decode(text)
        found = [
            (starts[a], ends[b - 1]) for a, b in self._matches(decoded) if b > a
        ]  # fmt: skip
        if not found:
            return []
        merged: list[tuple[int, int]] = []
        for start, end in sorted(found):
            if text[start - 1 : start] == "[" and text[end : end + 1] == "]":
                start, end = start - 1, end + 1  # a bracketed IPv6 goes whole
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    def _matches(self, text: str) -> Iterator[tuple[int, int]]:
        """Ranges of the decoded ``text`` that spell a secret address or host."""
        for run in _RUN.finditer(text):
            yield from self._in_run(run.group(), run.start())
        for rx in (_DOTTED, _DASHED):
            for m in rx.finditer(text):
                dotted = re.sub(r"[-_]", ".", m.group())
                if any(self.is_secret(ip) for ip in _ipv4_forms(dotted)):
                    yield m.span()
        if self._hosts is not None:
            for m in self._hosts.finditer(text):
                yield m.span()

    def _in_run(self, run: str, offset: int) -> Iterator[tuple[int, int]]:
        pieces = _split(run, ":", offset)
        if len(pieces) >= 3:
            for i in range(len(pieces)):
                for j in range(i + 2, min(i + _MAX_GROUPS, len(pieces)) + 1):
                    start, end = pieces[i][1], pieces[j - 1][2]
                    if any(
                        self.is_secret(ip) for ip in _ipv6_forms(run[start - offset : end - offset])
                    ):
                        yield start, end
        for piece, start, _ in pieces:
            labels = _split(piece, ".", start)
            for i in range(len(labels)):
                for j in range(i + 1, min(i + 4, len(labels)) + 1):
                    a, b = labels[i][1], labels[j - 1][2]
                    if any(self.is_secret(ip) for ip in _ipv4_forms(piece[a - start : b - start])):
                        yield a, b

    def check_files(self, paths: Iterable[Path]) -> None:
        """Refuse to publish: delete every file (and raise) whose text names a secret.

        HTML, Markdown, SVG, JSON, CSV and text files are read as UTF-8; a PDF's
        text layer is extracted with ``pdftotext`` (poppler-utils) and searched
        both as laid out and with its line breaks removed, so an address the
        layout wrapped over two lines is found too.
        """
        for path in paths:
            if path.suffix == ".pdf":
                text = pdf_text(path)
                found = self.leaks(text) or self.leaks(text.replace("\n", ""))
            elif path.suffix in _TEXT_SUFFIXES:
                found = self.leaks(path.read_text(encoding="utf-8", errors="replace"))
            else:
                continue
            if found:
                path.unlink(missing_ok=True)
                raise TeitenError(f"refusing to publish {path.name}: it names a sensor address")


def pdf_text(path: Path) -> str:
    """The text layer of a PDF, as ``pdftotext`` (poppler-utils) extracts it."""
    tool = shutil.which("pdftotext")
    if tool is None:
        path.unlink(missing_ok=True)
        raise DependencyError(
            f"cannot check {path.name} for sensor addresses: install pdftotext "
            "(Debian: apt install poppler-utils), or publish html/md instead"
        )
    try:
        done = subprocess.run(
            [tool, "-q", "-enc", "UTF-8", str(path), "-"],
            capture_output=True,
            timeout=PDF_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        done = None
    if done is None or done.returncode != 0:
        path.unlink(missing_ok=True)
        raise TeitenError(f"cannot read back {path.name} to check it (pdftotext failed)")
    return done.stdout.decode("utf-8", "replace")


def _real(ips: set[IP]) -> set[IP]:
    """Addresses worth masking: not ``0.x.x.x`` (``0``, ``64`` and ``0x0`` read as such)."""
    return {ip for ip in ips if ip.version == 6 or int(ip) >= _LOW_V4}


def _split(text: str, sep: str, offset: int) -> list[tuple[str, int, int]]:
    """``text`` split at ``sep``, each piece with its start and end (plus ``offset``)."""
    out = []
    at = 0
    for piece in text.split(sep):
        out.append((piece, offset + at, offset + at + len(piece)))
        at += len(piece) + 1
    return out


def parse_address(text: str) -> set[IP]:
    """Every address ``text`` can be read as, in any notation :class:`Secrecy` knows.

    >>> sorted(str(ip) for ip in parse_address("010.0.0.1"))
    ['10.0.0.1', '8.0.0.1']
    """
    text = text.strip().strip("[]")
    return set(_ipv4_forms(text)) | set(_ipv6_forms(text))


def embedded_ipv4(ip: IP) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if ip.version == 4:
        return []
    assert isinstance(ip, ipaddress.IPv6Address)
    out = [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) for net, _ in _EMBEDDING if ip in net]
    if ip.sixtofour is not None:
        out.append(ip.sixtofour)
    if ip.teredo is not None:
        out.append(ip.teredo[1])
    return out


def _ipv4_forms(text: str) -> list[ipaddress.IPv4Address]:
    """``text`` read as ``inet_aton`` reads it, with leading zeros read as decimal, or as
    a bare 8-hex-digit number; empty when it is none of these."""
    if not text or len(text) > 64:
        return []
    parts = text.split(".")
    if len(parts) > 4 or not all(_PART.fullmatch(p) for p in parts):
        return [ipaddress.IPv4Address(int(text, 16))] if _HEX8.fullmatch(text) else []
    out = []
    for octal in (True, False):
        value = _aton([_number(p, octal) for p in parts])
        if value is not None:
            out.append(ipaddress.IPv4Address(value))
    if _HEX8.fullmatch(text):
        out.append(ipaddress.IPv4Address(int(text, 16)))
    return out


def _number(part: str, octal: bool) -> int:
    if part[:2] in ("0x", "0X"):
        return int(part[2:] or "0", 16)
    if octal and len(part) > 1 and part[0] == "0":
        return int(part, 8) if set(part) <= set("01234567") else -1
    return int(part)


def _aton(values: list[int]) -> int | None:
    """The 32-bit address of 1–4 ``inet_aton`` parts (the last one fills the rest)."""
    if any(v < 0 for v in values):
        return None
    *head, last = values
    if any(v > 255 for v in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    value = 0
    for v in head:
        value = value << 8 | v
    return value << (8 * (4 - len(head))) | last


def _ipv6_forms(text: str) -> list[ipaddress.IPv6Address]:
    """``text`` read as IPv6, a dotted tail in any IPv4 notation; empty when it is not."""
    if text.count(":") < 2 or len(text) > 128:
        return []
    head, _, tail = text.rpartition(":")
    tails = [tail]
    if "." in tail:
        tails = [str(ip) for ip in _ipv4_forms(tail)]
    out = []
    for t in tails:
        try:
            out.append(ipaddress.IPv6Address(_unpad(f"{head}:{t}")))
        except ValueError:
            continue
    return out


def _unpad(text: str) -> str:
    """Groups zero-padded beyond four digits (``00064:ff9b::…``) trimmed to what they mean."""
    return re.sub(r"(?<![0-9A-Fa-f.])0+(?=[0-9A-Fa-f]{1,4}(?![0-9A-Fa-f]))", "", text)


def _decode(text: str) -> tuple[str, list[int], list[int]]:
    """``text`` with escapes undone; for each decoded character, its original start and end."""
    current = text
    starts = list(range(len(text)))
    ends = list(range(1, len(text) + 1))
    for _ in range(_ROUNDS):
        step = _decode_once(current)
        if step is None:
            break
        current, s, e = step
        starts = [starts[i] for i in s]
        ends = [ends[i - 1] for i in e]
    return current, starts, ends


def _decode_once(text: str) -> tuple[str, list[int], list[int]] | None:
    """One round of :func:`_decode`; None when nothing in ``text`` changes."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    at = 0
    changed = False
    for m in _ESCAPE.finditer(text):
        a, b = m.span()
        if a > at:
            out.append(text[at:a])
            starts.extend(range(at, a))
            ends.extend(range(at + 1, a + 1))
        char = _unescape(m)
        if char is None:
            char = m.group()
            starts.extend(range(a, b))
            ends.extend(range(a + 1, b + 1))
        else:
            changed = True
            starts.extend([a] * len(char))
            ends.extend([b] * len(char))
        out.append(char)
        at = b
    if not changed:
        return None
    out.append(text[at:])
    starts.extend(range(at, len(text)))
    ends.extend(range(at + 1, len(text) + 1))
    return "".join(out), starts, ends


def _unescape(m: re.Match[str]) -> str | None:
    """What one escape stands for, or None to keep it as written."""
    kind, value = m.lastgroup, m.group(m.lastgroup or 0)
    if kind == "named":
        named = html.entities.html5.get(value)
        return None if named is None else _plain(named)
    if kind == "defang":
        return ":" if ":" in value else "."
    if kind == "other":
        plain = _plain(value)
        return None if plain == value else plain
    code = int(value, 10 if kind == "decref" else 16)
    if code >= 0x110000 or 0xD800 <= code < 0xE000 or (code >= 0x80 and kind in ("pct", "bsx")):
        return None
    return _plain(chr(code))


def _plain(text: str) -> str:
    """``text`` as a reader sees it: compatibility forms folded, invisible characters dropped."""
    out = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
        elif unicodedata.category(ch) != "Cf":
            out.append(_DOTS.get(ch) or unicodedata.normalize("NFKC", ch))
    return "".join(out)


def download_hosts(text: str) -> set[str]:
    """Hosts named in URLs in a payload (the attacker's download servers)."""
    return {m.group(2).strip("[]") for m in _URL_HOST.finditer(text)}
