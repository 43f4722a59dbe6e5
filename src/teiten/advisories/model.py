"""Advisory data files: the dataclasses, and loading, validating and writing their TOML.

One advisory per file, ``<id>.toml``, in the format of docs/advisories.md. A mistake
in a file raises ConfigError naming the file and the key (``products[2].fixed``).
"""

from __future__ import annotations

import json
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, NoReturn

from teiten.advisories.versions import (
    Range,
    Version,
    any_contains,
    default_affected,
    parse_range,
    parse_version,
)
from teiten.errors import ConfigError

MAX_FILE_BYTES = 1 << 20
LANGS = ("ja", "en")
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", re.ASCII)
CVE_PATTERN = re.compile(r"CVE-[0-9]{4}-[0-9]{4,}", re.ASCII)
JVN_PATTERN = re.compile(r"JVN(?:DB-[0-9]{4}-[0-9]{6}|[A-Z]{0,2}#[0-9]{8})", re.ASCII)
_SEPARATORS = re.compile(r"[\s\-/_.・‐‑‒–—―−ー]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def model_key(name: str) -> str:
    """A model name for matching: NFKC, upper case, every run of separators one ``-``.

    >>> model_key("lan w300n/r"), model_key("ＬＡＮ－Ｗ３００Ｎ／Ｒ")
    ('LAN-W300N-R', 'LAN-W300N-R')
    """
    text = unicodedata.normalize("NFKC", name[:200]).upper()
    return _SEPARATORS.sub("-", text).strip("-")


@dataclass(frozen=True)
class Text:
    """A text in Japanese and/or English; ``get`` falls back to the other language."""

    ja: str = ""
    en: str = ""

    def get(self, lang: str) -> str:
        return (self.ja or self.en) if lang == "ja" else (self.en or self.ja)


@dataclass(frozen=True)
class Texts:
    """A list of texts (one per recommended action) in Japanese and/or English."""

    ja: tuple[str, ...] = ()
    en: tuple[str, ...] = ()

    def get(self, lang: str) -> tuple[str, ...]:
        return (self.ja or self.en) if lang == "ja" else (self.en or self.ja)


@dataclass(frozen=True)
class Reference:
    """A URL kept as text (teiten never fetches it) and what it is."""

    url: str
    title: str = ""
    title_ja: str = ""
    """The title in Japanese (a Japanese report falls back to ``title``)."""

    def title_in(self, lang: str) -> str:
        return (self.title_ja or self.title) if lang == "ja" else self.title


@dataclass(frozen=True)
class Product:
    """One model in an advisory: which of its firmware versions are affected, which fixed."""

    model: str
    fixed: Version | None = None
    fixed_date: date | None = None
    affected: tuple[Range, ...] = (Range(),)
    not_affected: tuple[Range, ...] = ()
    family: bool = False

    @property
    def key(self) -> str:
        return model_key(self.model)

    def matches(self, key: str) -> bool:
        """Whether a normalised model name is this model (or, for a family, a member of it)."""
        if key == self.key:
            return True
        return self.family and re.fullmatch(re.escape(self.key) + r"-?[A-Z]+", key) is not None


@dataclass(frozen=True)
class BannerRule:
    """Device banners that point to an advisory; every field given must match."""

    server: str = ""
    manufacturer: str = ""
    model_name: str = ""


@dataclass(frozen=True)
class Advisory:
    """One advisory: what it is about, the products it covers, and what to do."""

    id: str
    vendor: str
    title: Text
    cves: tuple[str, ...] = ()
    jvn_ids: tuple[str, ...] = ()
    published: date | None = None
    products: tuple[Product, ...] = ()
    banners: tuple[BannerRule, ...] = ()
    references: tuple[Reference, ...] = ()
    actions: Texts = Texts()
    notes: Text = Text()
    source: str = field(default="", compare=False)
    vendor_ja: str = ""
    """The vendor as a Japanese report names it (``ロジテック社``); falls back to ``vendor``."""

    def vendor_in(self, lang: str) -> str:
        return (self.vendor_ja or self.vendor) if lang == "ja" else self.vendor


class _Table:
    """One table of an advisory file, read key by key with the key's path for errors."""

    def __init__(self, source: str, where: str, data: Any, allowed: Iterable[str]) -> None:
        self.source, self.where = source, where
        if not isinstance(data, dict):
            self.fail("", f"expected a table, got {type(data).__name__}")
        self.data: dict[str, Any] = data
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            self.fail(unknown[0], f"unknown key (known: {', '.join(allowed)})")

    def fail(self, key: str, message: str) -> NoReturn:
        path = f"{self.where}.{key}" if self.where and key else self.where or key
        raise ConfigError(f"{self.source}: {path}: {message}")

    def text(
        self,
        key: str,
        *,
        required: bool = False,
        pattern: re.Pattern[str] | None = None,
        limit: int = 2000,
    ) -> str:
        value = self.data.get(key)
        if value is None:
            if required:
                self.fail(key, "missing")
            return ""
        return self._valid(key, value, pattern, limit)

    def texts(self, key: str, pattern: re.Pattern[str] | None = None) -> tuple[str, ...]:
        values = self.data.get(key, [])
        if not isinstance(values, list):
            self.fail(key, "expected a list of strings")
        return tuple(self._valid(f"{key}[{i}]", v, pattern, 2000) for i, v in enumerate(values))

    def _valid(self, key: str, value: Any, pattern: re.Pattern[str] | None, limit: int) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"expected a non-empty string, got {value!r:.60}")
        if len(value) > limit or _CONTROL.search(value):
            self.fail(key, f"longer than {limit} characters or has control characters")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(key, f"{value!r:.60} is not of the form {pattern.pattern}")
        return value

    def value(self, key: str, kind: type, hint: str) -> Any:
        value = self.data.get(key)
        if value is not None and type(value) is not kind:
            self.fail(key, f"expected {hint}, got {value!r:.40}")
        return value

    def table(self, key: str, allowed: Iterable[str]) -> _Table:
        return _Table(self.source, self._at(key), self.data.get(key, {}), allowed)

    def tables(self, key: str, allowed: Sequence[str]) -> list[_Table]:
        values = self.data.get(key, [])
        if not isinstance(values, list):
            self.fail(key, f"expected an array of tables ([[{key}]])")
        at = self._at(key)
        return [_Table(self.source, f"{at}[{i}]", v, allowed) for i, v in enumerate(values)]

    def _at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key


def _version(t: _Table, key: str) -> Version | None:
    text = t.text(key, limit=64)
    if not text:
        return None
    version = parse_version(text)
    if version is None:
        t.fail(key, f"{text!r} is not a version teiten can read (see docs/advisories.md)")
    return version


def _ranges(t: _Table, key: str, default: tuple[Range, ...]) -> tuple[Range, ...]:
    if key not in t.data:
        return default
    out = []
    for i, text in enumerate(t.texts(key)):
        try:
            out.append(parse_range(text))
        except ValueError as e:
            t.fail(f"{key}[{i}]", str(e))
    return tuple(out)


_PRODUCT_KEYS = ("model", "family", "fixed", "fixed_date", "affected", "not_affected")


def _product(t: _Table) -> Product:
    fixed = _version(t, "fixed")
    fixed_date = t.value("fixed_date", date, "a date written unquoted, like 2014-06-11")
    if fixed_date and not fixed:
        t.fail("fixed_date", "given without fixed")
    affected = _ranges(t, "affected", default_affected(fixed))
    if fixed and any_contains(affected, fixed).order == 1:
        t.fail("fixed", f"{fixed.text!r} lies inside the affected range")
    return Product(
        model=t.text("model", required=True, limit=100),
        fixed=fixed,
        fixed_date=fixed_date,
        affected=affected,
        not_affected=_ranges(t, "not_affected", ()),
        family=bool(t.value("family", bool, "true or false")),
    )


def _banner(t: _Table) -> BannerRule:
    rule = BannerRule(*(t.text(k, limit=200) for k in ("server", "manufacturer", "model_name")))
    if not (rule.server or rule.manufacturer or rule.model_name):
        t.fail("", "needs at least one of server, manufacturer, model_name")
    return rule


def _text(t: _Table, key: str, *, required: bool = False) -> Text:
    sub = t.table(key, LANGS)
    text = Text(ja=sub.text("ja"), en=sub.text("en"))
    if required and not (text.ja or text.en):
        t.fail(key, "needs ja or en (or both)")
    return text


_TOP_KEYS = (
    "id",
    "vendor",
    "vendor_ja",
    "title",
    "cves",
    "jvn_ids",
    "published",
    "notes",
    "actions",
    "references",
    "products",
    "banners",
)


def parse_advisory(data: dict[str, Any], source: str, stem: str | None = None) -> Advisory:
    """The advisory in a parsed TOML document; ConfigError names ``source`` and the key."""
    t = _Table(source, "", data, _TOP_KEYS)
    ident = t.text("id", required=True, pattern=ID_PATTERN, limit=100)
    if stem is not None and ident != stem:
        t.fail("id", f"{ident!r} differs from the file name {stem!r}.toml")
    actions = t.table("actions", LANGS)
    products = tuple(_product(p) for p in t.tables("products", _PRODUCT_KEYS))
    seen: dict[str, str] = {}
    for i, p in enumerate(products):
        if p.key in seen:
            t.fail(f"products[{i}].model", f"{p.model!r} is listed twice (as {seen[p.key]!r})")
        seen[p.key] = p.model
    advisory = Advisory(
        id=ident,
        vendor=t.text("vendor", required=True, limit=200),
        title=_text(t, "title", required=True),
        cves=t.texts("cves", CVE_PATTERN),
        jvn_ids=t.texts("jvn_ids", JVN_PATTERN),
        published=t.value("published", date, "a date written unquoted, like 2017-12-19"),
        products=products,
        banners=tuple(
            _banner(b) for b in t.tables("banners", ("server", "manufacturer", "model_name"))
        ),
        references=tuple(
            _reference(r) for r in t.tables("references", ("url", "title", "title_ja"))
        ),
        actions=Texts(ja=actions.texts("ja"), en=actions.texts("en")),
        notes=_text(t, "notes"),
        source=source,
        vendor_ja=t.text("vendor_ja", limit=200),
    )
    if not advisory.products and not advisory.banners:
        t.fail("products", "an advisory needs [[products]] or [[banners]]")
    return advisory


def _reference(t: _Table) -> Reference:
    url = t.text("url", required=True, pattern=re.compile(r"https?://\S+"))
    return Reference(url=url, title=t.text("title"), title_ja=t.text("title_ja"))


def load_advisory_text(text: str, source: str, stem: str | None = None) -> Advisory:
    """The advisory in TOML text; ``stem`` (the file name without .toml) must equal its id."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from None
    return parse_advisory(data, source, stem)


def _load_entry(entry: Traversable | Path) -> Advisory:
    source = str(entry)
    try:
        raw = entry.read_bytes()
    except OSError as e:
        raise ConfigError(f"{source}: cannot read: {e.strerror or e}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{source}: larger than {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text") from None
    return load_advisory_text(text, source, entry.name.removesuffix(".toml"))


def load_advisory_dir(directory: Traversable | Path) -> list[Advisory]:
    """Every ``*.toml`` advisory in a directory, sorted by id."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: not a directory of advisories")
    entries = sorted(
        (e for e in directory.iterdir() if e.name.endswith(".toml")), key=lambda e: e.name
    )
    return [_load_entry(e) for e in entries]


def bundled_dir() -> Traversable:
    """The advisories shipped with teiten."""
    return resources.files("teiten.advisories") / "data"


def load_advisories(extra_dirs: Sequence[Path] = ()) -> tuple[Advisory, ...]:
    """The bundled advisories plus those in ``extra_dirs``; a later same id replaces an earlier."""
    by_id: dict[str, Advisory] = {}
    for directory in (bundled_dir(), *extra_dirs):
        for advisory in load_advisory_dir(directory):
            by_id[advisory.id] = advisory
    return tuple(sorted(by_id.values(), key=lambda a: a.id))


def _q(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's; DEL must be escaped too)."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _array(values: Iterable[str]) -> str:
    items = [_q(v) for v in values]
    if sum(len(i) for i in items) < 70:
        return "[" + ", ".join(items) + "]"
    return "[\n" + "".join(f"    {i},\n" for i in items) + "]"


def _product_lines(p: Product) -> list[str]:
    lines = ["", "[[products]]", f"model = {_q(p.model)}"]
    lines += ["family = true"] if p.family else []
    lines += [f"fixed = {_q(p.fixed.text)}"] if p.fixed else []
    lines += [f"fixed_date = {p.fixed_date.isoformat()}"] if p.fixed_date else []
    if p.affected != default_affected(p.fixed):
        lines.append(f"affected = {_array(str(r) for r in p.affected)}")
    if p.not_affected:
        lines.append(f"not_affected = {_array(str(r) for r in p.not_affected)}")
    return lines


def dump_advisory(a: Advisory) -> str:
    """The advisory as TOML in the documented format (``load_advisory_text`` reads it back)."""
    lines = [f"id = {_q(a.id)}", f"vendor = {_q(a.vendor)}"]
    lines += [f"vendor_ja = {_q(a.vendor_ja)}"] if a.vendor_ja else []
    lines += [f"cves = {_array(a.cves)}"] if a.cves else []
    lines += [f"jvn_ids = {_array(a.jvn_ids)}"] if a.jvn_ids else []
    lines += [f"published = {a.published.isoformat()}"] if a.published else []
    for name, pair in (("title", a.title), ("notes", a.notes)):
        if pair.ja or pair.en:
            lines += ["", f"[{name}]"] + [f"{k} = {_q(v)}" for k, v in asdict(pair).items() if v]
    if a.actions.ja or a.actions.en:
        lines += ["", "[actions]"]
        lines += [f"{k} = {_array(v)}" for k, v in asdict(a.actions).items() if v]
    for r in a.references:
        lines += ["", "[[references]]", f"url = {_q(r.url)}"]
        lines += [f"title = {_q(r.title)}"] if r.title else []
        lines += [f"title_ja = {_q(r.title_ja)}"] if r.title_ja else []
    for p in a.products:
        lines += _product_lines(p)
    for b in a.banners:
        lines += ["", "[[banners]]"] + [f"{k} = {_q(v)}" for k, v in asdict(b).items() if v]
    return "\n".join(lines) + "\n"


def save_advisory(advisory: Advisory, directory: Path, *, replace: bool = False) -> Path:
    """Write ``<id>.toml`` into ``directory`` (made if missing); overwrite only if asked."""
    target = directory / f"{advisory.id}.toml"
    if target.exists() and not replace:
        raise ConfigError(f"{target}: exists (use --replace to overwrite it)")
    tmp = directory / f".{advisory.id}.toml.tmp"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp.write_text(dump_advisory(advisory), encoding="utf-8")
        tmp.replace(target)
    except OSError as e:
        raise ConfigError(f"{target}: cannot write: {e.strerror or e}") from None
    return target
