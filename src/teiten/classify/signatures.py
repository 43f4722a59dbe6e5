"""Load payload signatures from TOML, validate them, and match them against parsed requests.

A signature file holds one or more ``[[signature]]`` tables (the format is in
``docs/signatures.md``). Every file is validated when loaded: unknown keys,
missing fields, wrong types and bad regular expressions raise
:class:`~teiten.errors.ConfigError` naming the file, the line and the key.
Regexes are compiled once, and each signature's conditions are ordered cheap
first, so matching is a handful of short-circuiting tests per signature.
Matching is port-agnostic: ``ports`` is informational.

>>> sigs = load_signatures()
>>> f = Fields("http", method="POST", targets=("/picdesc.xml",),
...            soap_actions=("AddPortMapping",), soap_args=(("NewInternalClient", "`id`"),))
>>> [s.id for s in sigs.match(f)]
['sig.realtek-miniigd-soap-cve-2014-8361']
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from operator import attrgetter
from pathlib import Path
from typing import Any

from teiten.classify.literals import required_text
from teiten.errors import ConfigError

KINDS = ("exploit", "bot", "scanner", "benign")
"""Signature kinds, strongest first: a request's kind is the first one among its matches."""
SEVERITIES = ("info", "low", "medium", "high", "critical")
PROTOCOLS = ("http", "telnet")
CONDITIONS = ("method", "path", "header", "soap_action", "body_contains", "soap_arg", "body",
              "command")  # fmt: skip
"""Condition keys, in the order they are tested (cheap first)."""
_PROTOCOL_CONDITIONS = {"http": frozenset(CONDITIONS) - {"command"}, "telnet": {"command"}}
_REQUIRED = ("id", "title", "kind", "protocol", "severity", "source", "match")
_OPTIONAL = (
    "cves",
    "jvn",
    "references",
    "ports",
    "description",
    "any",
    "none",
    "title_ja",
    "family",
)
_ID = re.compile(r"sig\.[a-z0-9][a-z0-9.-]{2,80}")
_CVE = re.compile(r"CVE-\d{4}-\d{4,7}")
_JVN = re.compile(r"JVN(?:DB-\d{4}-\d{6}|VU#\d{8}|#\d{8})")
_URL = re.compile(r"https?://\S+")
_EVIDENCE = 160

Evidence = str | None
"""What a condition matched (the text shown by ``teiten signatures test``), or None."""


@dataclass(frozen=True)
class Fields:
    """The parsed fields of one request or session that conditions look at."""

    protocol: str
    method: str = ""
    targets: tuple[str, ...] = ()
    """The request target as sent, and URL-decoded if that differs."""
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Lower-case header name → its values in order."""
    bodies: tuple[str, ...] = ()
    """The body as text, and URL-decoded if that differs."""
    soap_actions: tuple[str, ...] = ()
    soap_args: tuple[tuple[str, str], ...] = ()
    commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class Condition:
    """One compiled test: its key, a readable form, and the function returning evidence."""

    key: str
    text: str
    test: Callable[[Fields], Evidence]


@dataclass(frozen=True)
class Signature:
    """One validated signature with its compiled conditions."""

    id: str
    title: str
    kind: str
    protocol: str
    severity: str
    source: str
    file: str
    match_all: tuple[Condition, ...]
    any_of: tuple[tuple[Condition, ...], ...] = ()
    none_of: tuple[tuple[Condition, ...], ...] = ()
    cves: tuple[str, ...] = ()
    jvn: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    description: str = ""
    title_ja: str = ""
    """The title in Japanese, for Japanese reports (falls back to ``title``)."""
    family: str = ""
    """The malware family the signature names (Mirai, TheMoon…), for STIX malware objects."""

    def title_in(self, lang: str) -> str:
        """The title in ``lang`` (``ja`` or ``en``)."""
        return (self.title_ja or self.title) if lang == "ja" else self.title

    def matches(self, f: Fields) -> bool:
        """Whether every ``match`` condition, one ``any`` group and no ``none`` group hold."""
        for c in self.match_all:
            if c.test(f) is None:
                return False
        if self.any_of and not any(_holds(g, f) for g in self.any_of):
            return False
        return not (self.none_of and any(_holds(g, f) for g in self.none_of))


def _holds(group: tuple[Condition, ...], f: Fields) -> bool:
    return all(c.test(f) is not None for c in group)


@dataclass(frozen=True)
class SignatureSet:
    """Loaded signatures, grouped by protocol for matching."""

    signatures: tuple[Signature, ...]

    @cached_property
    def _by_protocol(self) -> dict[str, tuple[Signature, ...]]:
        return {p: tuple(s for s in self.signatures if s.protocol == p) for p in PROTOCOLS}

    def for_protocol(self, protocol: str) -> tuple[Signature, ...]:
        """The signatures that apply to ``protocol`` (``http`` or ``telnet``)."""
        return self._by_protocol.get(protocol, ())

    def match(self, f: Fields) -> tuple[Signature, ...]:
        """The signatures of ``f``'s protocol that match it, in load order."""
        return tuple(s for s in self._by_protocol.get(f.protocol, ()) if s.matches(f))

    def get(self, signature_id: str) -> Signature:
        """The signature with this id (KeyError if there is none)."""
        return {s.id: s for s in self.signatures}[signature_id]


def load_signatures(paths: Sequence[Path] = (), *, builtin: bool = True) -> SignatureSet:
    """The shipped signatures (unless ``builtin`` is false) plus those in ``paths``.

    A path is a ``.toml`` file or a directory of them. Raises
    :class:`~teiten.errors.ConfigError` for a bad file or a duplicate id.
    """
    if not paths and builtin:
        return _builtin_set()
    loaded = list(_builtin()) if builtin else []
    for path in paths:
        files = sorted(Path(path).glob("*.toml")) if Path(path).is_dir() else [Path(path)]
        for f in files:
            try:
                text = f.read_text(encoding="utf-8")
            except (OSError, UnicodeError) as e:
                raise ConfigError(f"{f}: cannot read signature file: {e}") from None
            loaded += parse_signature_file(text, str(f))
    seen: dict[str, str] = {}
    for s in loaded:
        if s.id in seen:
            raise ConfigError(f"{s.file}: signature id {s.id} is also defined in {seen[s.id]}")
        seen[s.id] = s.file
    return SignatureSet(tuple(loaded))


@cache
def _builtin_set() -> SignatureSet:
    return SignatureSet(_builtin())


@cache
def _builtin() -> tuple[Signature, ...]:
    out: list[Signature] = []
    folder = resources.files("teiten.classify") / "signatures"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            out += parse_signature_file(entry.read_text(encoding="utf-8"), entry.name)
    return tuple(out)


class _Bad(Exception):
    """A semantic error in one signature: the key path and what is wrong."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


def parse_signature_file(text: str, name: str) -> list[Signature]:
    """The signatures in one TOML document; ``name`` is used in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{name}: TOML syntax error: {e}") from None
    unknown = sorted(set(doc) - {"signature"})
    entries = doc.get("signature")
    if unknown or not isinstance(entries, list) or not entries:
        what = f"unknown top-level key {unknown[0]!r}" if unknown else "no [[signature]] tables"
        raise ConfigError(f"{name}:1: {what}")
    out = []
    for i, entry in enumerate(entries):
        try:
            out.append(_signature(entry, name))
        except _Bad as e:
            line = _line_of(text, i, e.key)
            raise ConfigError(f"{name}:{line}: signature {i + 1}: {e}") from None
    return out


def _line_of(text: str, index: int, key: str) -> int:
    """The line of ``key`` (e.g. ``match.soap_arg.value``) in the ``index``-th signature table."""
    lines = text.splitlines()
    headers = [n for n, line in enumerate(lines) if line.replace(" ", "") == "[[signature]]"]
    if index >= len(headers):
        return 1
    at, stop = headers[index], [*headers, len(lines)][index + 1]
    for part in re.findall(r"[A-Za-z_]+", key):
        wanted = re.compile(rf"(?<![\w-]){re.escape(part)}\s*[=\].]")
        at = next((n for n in range(at, stop) if wanted.search(lines[n])), at)
    return at + 1


def _signature(entry: Any, file: str) -> Signature:
    if not isinstance(entry, dict):
        raise _Bad("signature", "must be a table")
    for key in entry:
        if key not in _REQUIRED and key not in _OPTIONAL:
            raise _Bad(key, "unknown key")
    for key in _REQUIRED:
        if key not in entry:
            raise _Bad(key, "missing")
    sid, protocol = _string(entry, "id"), _string(entry, "protocol", PROTOCOLS)
    if not _ID.fullmatch(sid):
        raise _Bad("id", f"{sid!r} is not of the form sig.lower-case-words")
    return Signature(
        id=sid, title=_string(entry, "title"), kind=_string(entry, "kind", KINDS),
        protocol=protocol, severity=_string(entry, "severity", SEVERITIES),
        source=_string(entry, "source"), file=file,
        match_all=_conditions(entry["match"], "match", protocol),
        any_of=_groups(entry.get("any", []), "any", protocol),
        none_of=_groups(entry.get("none", []), "none", protocol),
        cves=_list(entry, "cves", _matcher(_CVE), "a CVE id (CVE-YYYY-NNNN)"),
        jvn=_list(entry, "jvn", _matcher(_JVN), "a JVN id (JVNDB-YYYY-NNNNNN, JVN#NNNNNNNN)"),
        references=_list(entry, "references", _matcher(_URL), "an http(s) URL"),
        ports=_list(entry, "ports", _is_port, "a port number (1-65535)"),
        description=str(entry.get("description", "")),
        title_ja=_string(entry, "title_ja") if "title_ja" in entry else "",
        family=_string(entry, "family") if "family" in entry else "",
    )  # fmt: skip


def _string(entry: dict[str, Any], key: str, choices: tuple[str, ...] = ()) -> str:
    value = entry[key]
    if not isinstance(value, str) or not value.strip():
        raise _Bad(key, "must be a non-empty string")
    if choices and value not in choices:
        raise _Bad(key, f"{value!r} is not one of {', '.join(choices)}")
    return value


def _matcher(form: re.Pattern[str]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and form.fullmatch(v) is not None


def _is_port(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 < v < 65536


def _list(entry: dict[str, Any], key: str, ok: Callable[[Any], bool], form: str) -> tuple[Any, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list):
        raise _Bad(key, "must be a list")
    for v in value:
        if not ok(v):
            raise _Bad(key, f"{v!r} is not {form}")
    return tuple(value)


def _groups(value: Any, key: str, protocol: str) -> tuple[tuple[Condition, ...], ...]:
    if not isinstance(value, list):
        raise _Bad(key, "must be a list of condition tables ([[signature.any]])")
    return tuple(_conditions(v, f"{key}[{i}]", protocol) for i, v in enumerate(value))


def _conditions(table: Any, where: str, protocol: str) -> tuple[Condition, ...]:
    if not isinstance(table, dict) or not table:
        raise _Bad(where, "must be a non-empty table of conditions")
    for key in table:
        if key not in CONDITIONS:
            raise _Bad(f"{where}.{key}", "unknown condition")
        if key not in _PROTOCOL_CONDITIONS[protocol]:
            raise _Bad(f"{where}.{key}", f"not a condition for protocol {protocol}")
    out: list[Condition] = []
    for key in CONDITIONS:
        if key in table:
            out += _compile(key, table[key], f"{where}.{key}")
    return tuple(out)


def _compile(key: str, value: Any, where: str) -> list[Condition]:
    if key == "method":
        methods = [value] if isinstance(value, str) else value
        if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
            raise _Bad(where, "must be a string or a list of strings")
        wanted = frozenset(m.upper() for m in methods)
        return [Condition(key, f"method is {'/'.join(sorted(wanted))}",
                          lambda f: f.method if f.method.upper() in wanted else None)]  # fmt: skip
    if key in ("header", "soap_arg"):
        tables = [value] if isinstance(value, dict) else value
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise _Bad(where, "must be a table or a list of tables")
        build = _header if key == "header" else _soap_arg
        many = len(tables) > 1
        return [build(t, f"{where}[{i}]" if many else where) for i, t in enumerate(tables)]
    if key == "body_contains":
        needles = [value] if isinstance(value, str) else value
        if not isinstance(needles, list) or not all(isinstance(n, str) and n for n in needles):
            raise _Bad(where, "must be a non-empty string or a list of them")
        return [Condition(key, f"body contains {n!r}", _contains_in("bodies", n)) for n in needles]
    field_name = {"path": "targets", "body": "bodies", "soap_action": "soap_actions",
                  "command": "commands"}[key]  # fmt: skip
    pattern = _regex(value, where)
    return [Condition(key, f"{key} ~ /{pattern.pattern}/", _search_in(field_name, pattern))]


def _regex(value: Any, where: str) -> re.Pattern[str]:
    if not isinstance(value, str) or not value:
        raise _Bad(where, "must be a non-empty regular expression string")
    try:
        return re.compile(value)
    except re.error as e:
        raise _Bad(where, f"bad regular expression: {e}") from None


def _cut(text: str) -> str:
    return text if len(text) <= _EVIDENCE else text[:_EVIDENCE] + "…"


def _search_in(name: str, pattern: re.Pattern[str]) -> Callable[[Fields], Evidence]:
    texts, search, whole = attrgetter(name), pattern.search, name != "bodies"
    needle = required_text(pattern)  # no match without it: a C search skips most texts

    def test(f: Fields) -> Evidence:
        for text in texts(f):
            m = search(text) if needle in text else None
            if m:
                return _cut(text if whole else m[0])
        return None

    return test


def _contains_in(name: str, needle: str) -> Callable[[Fields], Evidence]:
    texts = attrgetter(name)

    def test(f: Fields) -> Evidence:
        return needle if any(needle in text for text in texts(f)) else None

    return test


def _only(table: dict[str, Any], keys: Iterable[str], where: str) -> None:
    if unknown := next((k for k in table if k not in keys), None):
        raise _Bad(f"{where}.{unknown}", "unknown key")


def _header(table: dict[str, Any], where: str) -> Condition:
    _only(table, ("name", "contains", "regex"), where)
    name = table.get("name")
    if not isinstance(name, str) or not name:
        raise _Bad(f"{where}.name", "missing header name")
    contains = table.get("contains", "")
    if not isinstance(contains, str):
        raise _Bad(f"{where}.contains", "must be a string")
    pattern = _regex(table["regex"], f"{where}.regex") if "regex" in table else None
    text = f"header {name}" + (f" contains {contains!r}" if contains else "")
    text += f" ~ /{pattern.pattern}/" if pattern else "" if contains else " is present"
    lower = name.lower()

    def test(f: Fields) -> Evidence:
        for v in f.headers.get(lower, ()):
            if contains in v and (pattern is None or pattern.search(v)):
                return _cut(f"{name}: {v}")
        return None

    return Condition("header", text, test)


def _soap_arg(table: dict[str, Any], where: str) -> Condition:
    _only(table, ("name", "value"), where)
    if not table:
        raise _Bad(where, "needs name and/or value")
    name = _regex(table["name"], f"{where}.name") if "name" in table else None
    value = _regex(table["value"], f"{where}.value") if "value" in table else None
    text = f"SOAP argument {'/' + name.pattern + '/' if name else 'any'}"
    text += f" ~ /{value.pattern}/" if value else " is present"

    def test(f: Fields) -> Evidence:
        for n, v in f.soap_args:
            if (name is None or name.fullmatch(n)) and (value is None or value.search(v)):
                return _cut(f"{n}={v}")
        return None

    return Condition("soap_arg", text, test)
