"""CSAF 2.0 import: turn a CSAF advisory (JSON, as JVN and vendors publish) into a teiten advisory.

The mapping (product_tree, product_status, remediations, tracking) is described
in docs/advisories.md. A document of the wrong shape raises InputError naming
the file and the JSON path; what teiten cannot map (an unreadable version
range, a product id missing from the tree) is skipped with a warning, so that
no verdict is ever guessed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

from teiten.advisories.model import (
    CVE_PATTERN,
    JVN_PATTERN,
    Advisory,
    Product,
    Reference,
    Text,
    Texts,
    dump_advisory,
    load_advisory_text,
    model_key,
    save_advisory,
)
from teiten.advisories.versions import (
    Range,
    Version,
    default_affected,
    parse_vers,
    parse_version,
    pick_version,
    split_version,
)
from teiten.errors import ConfigError, InputError

MAX_BYTES = 20 << 20
"""CSAF files larger than this are refused (the largest vendor advisories are a few MiB)."""
MAX_DEPTH = 32
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_COMBINE = ("installed_on", "default_component_of")


@dataclass(frozen=True)
class ImportResult:
    """The advisory read from a CSAF file and what could not be mapped."""

    advisory: Advisory
    warnings: tuple[str, ...] = ()
    path: Path | None = None


@dataclass(frozen=True)
class _Item:
    """What one CSAF product id stands for."""

    vendor: str
    model: str
    version: Version | None = None
    ranges: tuple[Range, ...] | None = None
    problem: str = ""


@dataclass
class _Model:
    """Everything the vulnerabilities say about one model."""

    name: str
    fixed: Version | None = None
    affected: list[Range] = field(default_factory=list)
    affected_all: bool = False
    not_affected: list[Range] = field(default_factory=list)
    problem: str = ""


class _Reader:
    """Typed access to the JSON document; errors name the file and the JSON path."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.warnings: list[str] = []

    def fail(self, path: str, message: str) -> NoReturn:
        raise InputError(f"{self.file}: {path}: {message}")

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}")

    def obj(
        self, parent: dict[str, Any], key: str, path: str, *, required: bool = False
    ) -> dict[str, Any]:
        value = parent.get(key)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            self.fail(f"{path}.{key}", "missing" if value is None else "expected an object")
        return value

    def items(self, parent: dict[str, Any], key: str, path: str) -> Iterator[tuple[str, Any]]:
        return self.array(parent.get(key, []), f"{path}.{key}")

    def array(self, value: Any, path: str) -> Iterator[tuple[str, Any]]:
        if not isinstance(value, list):
            self.fail(path, "expected an array")
        return ((f"{path}[{i}]", v) for i, v in enumerate(value))

    def text(
        self,
        parent: dict[str, Any],
        key: str,
        path: str,
        *,
        required: bool = False,
        limit: int = 2000,
    ) -> str:
        value = parent.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            self.fail(f"{path}.{key}", "missing" if value is None else "expected a string")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.fail(f"{path}.{key}", "has a lone surrogate (\\ud800-\\udfff)")
        clean = _CONTROL.sub(" ", value.replace("\r\n", "\n")).strip()
        return clean if len(clean) <= limit else clean[: limit - 1] + "…"

    def member(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, "expected an object")
        return value


def read_csaf(path: Path) -> Any:
    """The JSON in a CSAF file, read at most :data:`MAX_BYTES`."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(raw) > MAX_BYTES:
        raise InputError(f"{path}: larger than {MAX_BYTES:,} bytes; not read")
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: $: not JSON (line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise InputError(f"{path}: $: nested too deeply") from None


def _walk(
    r: _Reader, branches: Any, path: str, ctx: _Item, ids: dict[str, _Item], depth: int = 0
) -> None:
    if depth > MAX_DEPTH:
        r.fail(path, f"branches nested deeper than {MAX_DEPTH}")
    for at, raw in r.array(branches, path):
        branch = r.member(raw, at)
        category = r.text(branch, "category", at, required=True)
        name = r.text(branch, "name", at, required=True, limit=200)
        here = _narrow(ctx, category, name)
        product = r.obj(branch, "product", at)
        if product:
            pid = r.text(product, "product_id", f"{at}.product", required=True)
            _register(r, ids, pid, here, f"{at}.product.product_id")
        if "branches" in branch:
            _walk(r, branch["branches"], f"{at}.branches", here, ids, depth + 1)


def _narrow(ctx: _Item, category: str, name: str) -> _Item:
    if category == "vendor":
        return _Item(vendor=name, model="")
    if category == "product_name":
        return _Item(vendor=ctx.vendor, model=name)
    if category == "product_version":
        version = parse_version(name)
        problem = "" if version else f"version {name!r} is not one teiten can read"
        return _Item(ctx.vendor, ctx.model, version=version, problem=problem)
    if category == "product_version_range":
        ranges = parse_vers(name)
        problem = "" if ranges else f"version range {name!r} is not one teiten can read"
        return _Item(ctx.vendor, ctx.model, ranges=ranges, problem=problem)
    return ctx


def _register(r: _Reader, ids: dict[str, _Item], pid: str, item: _Item, path: str) -> None:
    if pid in ids:
        r.fail(path, f"product id {pid!r} is defined twice")
    if not item.model and not item.problem:
        item = _Item(item.vendor, "", problem="no product_name above it")
    ids[pid] = item


def _product_tree(r: _Reader, doc: dict[str, Any]) -> dict[str, _Item]:
    tree = r.obj(doc, "product_tree", "$", required=True)
    ids: dict[str, _Item] = {}
    if "branches" in tree:
        _walk(r, tree["branches"], "$.product_tree.branches", _Item("", ""), ids)
    for at, raw in r.items(tree, "full_product_names", "$.product_tree"):
        fpn = r.member(raw, at)
        model, version = split_version(r.text(fpn, "name", at, required=True, limit=200))
        pid = r.text(fpn, "product_id", at, required=True)
        _register(r, ids, pid, _Item("", model, version=version), f"{at}.product_id")
    for at, raw in r.items(tree, "relationships", "$.product_tree"):
        _relationship(r, r.member(raw, at), at, ids)
    return ids


def _relationship(r: _Reader, rel: dict[str, Any], at: str, ids: dict[str, _Item]) -> None:
    """A firmware version ``installed_on`` / ``default_component_of`` a model: that model's."""
    category = r.text(rel, "category", at, required=True)
    part = ids.get(r.text(rel, "product_reference", at, required=True), _Item("", ""))
    whole = ids.get(r.text(rel, "relates_to_product_reference", at, required=True), _Item("", ""))
    pid = r.text(
        r.obj(rel, "full_product_name", at, required=True),
        "product_id",
        f"{at}.full_product_name",
        required=True,
    )
    simple = (
        category in _COMBINE
        and (part.version or part.ranges)
        and whole.model
        and not (whole.version or whole.ranges or whole.problem)
    )
    item = (
        _Item(whole.vendor or part.vendor, whole.model, part.version, part.ranges, part.problem)
        if simple
        else _Item("", "", problem="not a simple relationship")
    )
    _register(r, ids, pid, item, f"{at}.full_product_name.product_id")


@dataclass
class _Collected:
    """What the vulnerabilities say, gathered over all of them."""

    models: dict[str, _Model] = field(default_factory=dict)
    cves: list[str] = field(default_factory=list)
    jvn_ids: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    vendors: list[str] = field(default_factory=list)
    dates: dict[tuple[str, str], date] = field(default_factory=dict)


def _add(values: list[Any], value: Any) -> None:
    if value and value not in values:
        values.append(value)


def _reference(c: _Collected, url: str, title: str) -> None:
    if re.fullmatch(r"https?://\S+", url) and all(x.url != url for x in c.references):
        c.references.append(Reference(url=url, title=title))


def _day(r: _Reader, parent: dict[str, Any], key: str, path: str) -> date | None:
    text = r.text(parent, key, path)
    try:
        return date.fromisoformat(text[:10]) if text else None
    except ValueError:
        r.fail(f"{path}.{key}", f"{text!r:.40} is not a date-time")


def _status(
    r: _Reader, c: _Collected, item: _Item, status: str, at: str, fixed: dict[str, list[Version]]
) -> None:
    key = model_key(item.model)
    m = c.models.setdefault(key, _Model(item.model))
    _add(c.vendors, item.vendor)
    if item.problem:
        m.problem = m.problem or f"{at}: {item.problem}"
    elif status == "known_affected":
        m.affected += item.ranges or ([Range((("=", item.version),))] if item.version else [])
        m.affected_all |= item.version is None and item.ranges is None
    elif status == "known_not_affected":
        at_version = [Range((("=", item.version),))] if item.version else [Range()]
        m.not_affected += item.ranges or at_version
    elif item.version is not None:
        fixed.setdefault(key, []).append(item.version)
    else:
        m.problem = m.problem or f"{at}: a {status} product without a single version"


def _product_status(
    r: _Reader, vuln: dict[str, Any], at: str, ids: dict[str, _Item], c: _Collected
) -> None:
    statuses = r.obj(vuln, "product_status", at)
    fixed: dict[str, list[Version]] = {}
    for status in ("first_fixed", "fixed", "known_affected", "known_not_affected"):
        for pat, pid in r.items(statuses, status, f"{at}.product_status"):
            item = ids.get(pid) if isinstance(pid, str) else None
            if item is None or not item.model:
                why = item.problem if item else "not in the product tree"
                r.warn(pat, f"product id {pid!r:.80}: {why}; skipped")
            else:
                _status(r, c, item, status, pat, fixed)
    for key, versions in fixed.items():
        m = c.models[key]
        first = pick_version(versions, latest=False)
        known = [m.fixed, first] if m.fixed and first else [first] if first else []
        later = pick_version(known, latest=True) if known else None
        if later is None:
            m.problem = m.problem or f"{at}: fixed versions that cannot be ordered"
        m.fixed = later


def _remediations(
    r: _Reader, vuln: dict[str, Any], at: str, ids: dict[str, _Item], c: _Collected
) -> None:
    for rat, raw in r.items(vuln, "remediations", at):
        rem = r.member(raw, rat)
        category = r.text(rem, "category", rat, required=True)
        _add(c.actions, r.text(rem, "details", rat, required=True))
        _reference(c, r.text(rem, "url", rat), f"remediation ({category})")
        when = _day(r, rem, "date", rat)
        for _, pid in r.items(rem, "product_ids", rat):
            item = ids.get(pid) if isinstance(pid, str) else None
            if category == "vendor_fix" and when and item and item.version:
                c.dates[(model_key(item.model), str(item.version))] = when


def _vulnerabilities(r: _Reader, doc: dict[str, Any], ids: dict[str, _Item], c: _Collected) -> None:
    for at, raw in r.items(doc, "vulnerabilities", "$"):
        vuln = r.member(raw, at)
        cve = r.text(vuln, "cve", at)
        if cve and not CVE_PATTERN.fullmatch(cve):
            r.warn(f"{at}.cve", f"{cve!r:.40} is not a CVE id; skipped")
        _add(c.cves, cve if CVE_PATTERN.fullmatch(cve) else "")
        for iat, ident in r.items(vuln, "ids", at):
            text = r.text(r.member(ident, iat), "text", iat, required=True)
            _add(c.jvn_ids, text if JVN_PATTERN.fullmatch(text) else "")
        _product_status(r, vuln, at, ids, c)
        _remediations(r, vuln, at, ids, c)


def _product(r: _Reader, m: _Model, c: _Collected) -> Product | None:
    affected = list(m.affected)
    if m.affected_all or (not affected and m.fixed):
        affected += default_affected(m.fixed)
    product = Product(
        model=m.name,
        fixed=m.fixed,
        fixed_date=c.dates.get((model_key(m.name), str(m.fixed))) if m.fixed else None,
        affected=tuple(dict.fromkeys(affected)),
        not_affected=tuple(dict.fromkeys(m.not_affected)),
    )
    problem = m.problem
    if not problem and m.fixed and any(x.contains(m.fixed).order == 1 for x in affected):
        problem = f"fixed version {m.fixed.text!r} is also listed as affected"
    if not problem and len(m.name) > 100:
        problem = "model name longer than 100 characters"
    if problem:
        r.warn("$.vulnerabilities", f"model {m.name!r:.80} skipped: {problem}")
        return None
    return product


def _slug(r: _Reader, text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:100]
    if not slug:
        r.fail("$.document.tracking.id", "has no letters or digits")
    return slug


def import_csaf(path: Path, *, into: Path | None = None, replace: bool = False) -> ImportResult:
    """The teiten advisory in a CSAF 2.0 file, saved ``into`` a directory if given.

    Warnings say what was skipped. An existing file is only overwritten with ``replace``.
    """
    r = _Reader(str(path))
    advisory = _advisory(r, r.member(read_csaf(path), "$"))
    try:  # read back what is written: the file holds exactly what was validated
        advisory = load_advisory_text(dump_advisory(advisory), r.file, advisory.id)
    except ConfigError as e:
        raise InputError(f"the advisory imported from {e}") from None
    saved = save_advisory(advisory, into, replace=replace) if into is not None else None
    return ImportResult(advisory, tuple(r.warnings), saved)


def _advisory(r: _Reader, doc: dict[str, Any]) -> Advisory:
    meta = r.obj(doc, "document", "$", required=True)
    if r.text(meta, "csaf_version", "$.document", required=True) not in ("2.0", "2.1"):
        r.fail("$.document.csaf_version", "is not 2.0")
    r.text(meta, "category", "$.document", required=True)
    tracking = r.obj(meta, "tracking", "$.document", required=True)
    ident = r.text(tracking, "id", "$.document.tracking", required=True, limit=200)
    title = r.text(meta, "title", "$.document", required=True)
    ja = r.text(meta, "lang", "$.document").lower().startswith("ja")
    c = _Collected()
    for at, raw in r.items(meta, "references", "$.document"):
        ref = r.member(raw, at)
        _reference(c, r.text(ref, "url", at, required=True), r.text(ref, "summary", at, limit=300))
    _vulnerabilities(r, doc, _product_tree(r, doc), c)
    products = [p for m in c.models.values() if (p := _product(r, m, c)) is not None]
    if not products:
        r.fail("$.vulnerabilities", "no product status that teiten can use")
    vendors = ", ".join(c.vendors) or r.text(
        r.obj(meta, "publisher", "$.document"), "name", "$.document.publisher"
    )
    return Advisory(
        id=_slug(r, ident),
        vendor=vendors[:200] or "unknown",
        title=Text(ja=title) if ja else Text(en=title),
        cves=tuple(c.cves),
        jvn_ids=tuple(dict.fromkeys([ident] * bool(JVN_PATTERN.fullmatch(ident)) + c.jvn_ids)),
        published=_day(r, tracking, "initial_release_date", "$.document.tracking"),
        products=tuple(products),
        references=tuple(c.references),
        actions=Texts(ja=tuple(c.actions)) if ja else Texts(en=tuple(c.actions)),
    )
