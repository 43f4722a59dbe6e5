"""Verdicts: whether a model and firmware version (or a device banner) is affected by an advisory.

``check(model, version)`` looks the model up in every loaded advisory and
answers ``affected``, ``fixed``, ``not_affected``, ``cannot_compare`` or
``unknown_model``; ``check_banner(...)`` answers ``possibly_affected`` (or
``affected`` when every version of a named model is affected), never ``fixed``.
When several advisories name the model, the verdict is the worst of them and
the others are in ``also``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from teiten.advisories.model import (
    LANGS,
    Advisory,
    BannerRule,
    Product,
    load_advisories,
    load_advisory_dir,
    model_key,
)
from teiten.advisories.versions import Comparison, any_contains, compare, parse_version
from teiten.errors import ConfigError

Status = Literal[
    "affected", "possibly_affected", "cannot_compare", "not_affected", "fixed", "unknown_model"
]
WORST_FIRST: tuple[Status, ...] = (
    "affected",
    "possibly_affected",
    "cannot_compare",
    "not_affected",
    "fixed",
    "unknown_model",
)
_BANNER_LIMIT = 1024


_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "released": " (released {date})",
        "affected_before": "affected: firmware {version} is before the fixed version "
        "{fixed}{released}; update the firmware",
        "affected_range": "affected: firmware {version} is in the affected range of {model}",
        "affected_no_fix": "affected: no fixed version listed for {model}; "
        "follow the vendor's advice",
        "fixed": "fixed: firmware {version} is at or after the fixed version {fixed}{released}",
        "not_affected": "not affected: firmware {version} is listed as not affected",
        "cannot_format": "cannot compare: '{version}' is not a firmware version teiten can "
        "read; give it as the device shows it, e.g. 2.27 or Ver2.27",
        "cannot_tag": "cannot compare: {version} and {against} have different suffixes "
        "(such as N3L)",
        "cannot_width": "cannot compare: {version} and {against} have different numbers of "
        "digits after the point (2.9 may mean 2.09 or 2.90); give the vendor's digits",
        "cannot_qualifier": "cannot compare: the suffix of {version} may mark a test build "
        "before {against} or a build after it",
        "uncovered": "cannot compare: the advisory does not say whether firmware {version} "
        "of {model} is affected",
        "unknown_model": "unknown model: no advisory lists '{model}'",
        "unknown_banner": "unknown: no advisory matches this banner",
        "possibly_banner": "possibly affected: the banner matches this advisory; a banner "
        "cannot tell whether the firmware is fixed",
        "possibly_model": "possibly affected: {model} is listed; check its firmware version "
        "(teiten advisory check)",
    },
    "ja": {
        "released": "({date} 公開)",
        "affected_before": "影響あり: ファームウェア {version} は修正版 {fixed}{released}"
        "より前のバージョンです。ファームウェアを更新してください",
        "affected_range": "影響あり: ファームウェア {version} は {model} の影響を受ける"
        "バージョンの範囲内です",
        "affected_no_fix": "影響あり: {model} の修正版は掲載されていません。"
        "ベンダーの案内に従ってください",
        "fixed": "修正済み: ファームウェア {version} は修正版 {fixed}{released}"
        "以降のバージョンです",
        "not_affected": "影響なし: ファームウェア {version} は影響を受けないバージョンとして"
        "掲載されています",
        "cannot_format": "比較できません: 「{version}」はファームウェアのバージョンとして"
        "読み取れません。機器の表示どおりに入力してください(例: 2.27、Ver2.27)",
        "cannot_tag": "比較できません: {version} と {against} は末尾の記号(N3L など)が異なります",
        "cannot_width": "比較できません: {version} と {against} は小数点以下の桁数が異なります"
        "(2.9 は 2.09 とも 2.90 とも読めます)。ベンダーの表記どおりの桁数で入力してください",
        "cannot_qualifier": "比較できません: {version} の末尾は {against} より前の試験版とも、"
        "後のビルドとも読めます",
        "uncovered": "比較できません: この勧告は {model} のファームウェア {version} が影響を"
        "受けるかどうかを示していません",
        "unknown_model": "不明な型番: 「{model}」はどの勧告にも掲載されていません",
        "unknown_banner": "不明: このバナーに該当する勧告はありません",
        "possibly_banner": "影響を受けるおそれ: バナーがこの勧告に該当します。"
        "バナーだけでは修正済みかどうか判断できません",
        "possibly_model": "影響を受けるおそれ: {model} は掲載されています。"
        "ファームウェアのバージョンを確認してください(teiten advisory check)",
    },
}


def message(lang: str, key: str, **fields: str) -> str:
    """The message ``key`` in ``lang`` with its fields filled in."""
    if lang not in LANGS:
        raise ConfigError(f"unknown language {lang!r} (known: {', '.join(LANGS)})")
    texts = _MESSAGES[lang]
    released = texts["released"].format(date=fields["date"]) if fields.get("date") else ""
    return texts[key].format(released=released, **fields)


@dataclass(frozen=True)
class Verdict:
    """The answer for one model and version, in one language (``lang``: ja or en)."""

    status: Status
    message: str
    model: str
    version: str
    lang: str
    product: str = ""
    advisory_id: str = ""
    title: str = ""
    vendor: str = ""
    cves: tuple[str, ...] = ()
    jvn_ids: tuple[str, ...] = ()
    fixed_version: str | None = None
    fixed_date: date | None = None
    actions: tuple[str, ...] = ()
    notes: str = ""
    references: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()
    also: tuple[Verdict, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON: dates as ISO text, tuples as lists."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "also":
                value = [v.to_dict() for v in value]
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, date):
                value = value.isoformat()
            out[f.name] = value
        return out


@functools.cache
def bundled_advisories() -> tuple[Advisory, ...]:
    """The advisories shipped with teiten (read once)."""
    return load_advisories()


def _find(advisory: Advisory, key: str) -> Product | None:
    exact = [p for p in advisory.products if p.key == key]
    family = [p for p in advisory.products if p.matches(key)]
    return (exact or family)[0] if exact or family else None


def _verdict(
    advisory: Advisory,
    product: Product,
    status: Status,
    text: str,
    model: str,
    version: str,
    lang: str,
) -> Verdict:
    return Verdict(
        status=status,
        message=text,
        model=model,
        version=version,
        lang=lang,
        product=product.model,
        advisory_id=advisory.id,
        title=advisory.title.get(lang),
        vendor=advisory.vendor,
        cves=advisory.cves,
        jvn_ids=advisory.jvn_ids,
        fixed_version=str(product.fixed) if product.fixed else None,
        fixed_date=product.fixed_date,
        actions=advisory.actions.get(lang),
        notes=advisory.notes.get(lang),
        references=tuple(r.url for r in advisory.references),
    )


def _against(product: Product) -> str:
    if product.fixed:
        return str(product.fixed)
    return " | ".join(str(r) for r in product.affected)


def judge(product: Product, version: str) -> tuple[Status, str, dict[str, str]]:
    """The status of one listed product at ``version``, a message key and its fields."""
    v = parse_version(version)
    shown = str(v) if v else version[:80]
    fields = {
        "version": shown,
        "against": _against(product),
        "model": product.model,
        "fixed": str(product.fixed) if product.fixed else "",
        "date": product.fixed_date.isoformat() if product.fixed_date else "",
    }
    inside = any_contains(product.affected, v)
    if inside.order == 1:
        before = v is not None and product.fixed is not None and compare(v, product.fixed).order
        if product.fixed is None:
            return "affected", "affected_no_fix", fields
        return "affected", "affected_before" if before == -1 else "affected_range", fields
    if inside.order is None:
        return "cannot_compare", _why(inside), fields
    if product.fixed is not None:
        after = compare(v, product.fixed) if v else Comparison(None, "format")
        if after.order is None:
            return "cannot_compare", _why(after), fields
        if after.order >= 0:
            return "fixed", "fixed", fields
    outside = any_contains(product.not_affected, v)
    if outside.order == 1:
        return "not_affected", "not_affected", fields
    return "cannot_compare", _why(outside) if outside.order is None else "uncovered", fields


def _why(c: Comparison) -> str:
    return f"cannot_{c.reason or 'format'}"


def _catalog(
    advisories: Sequence[Advisory] | None, extra_dirs: Sequence[Path]
) -> Sequence[Advisory]:
    if advisories is None:
        return load_advisories(extra_dirs) if extra_dirs else bundled_advisories()
    return [*advisories, *(a for d in extra_dirs for a in load_advisory_dir(d))]


def check(
    model: str,
    version: str,
    *,
    lang: str = "en",
    advisories: Sequence[Advisory] | None = None,
    extra_dirs: Sequence[Path] = (),
) -> Verdict:
    """The verdict for a model at a firmware version.

    Over ``advisories`` (default: the bundled ones) plus those in ``extra_dirs``.

    >>> v = check("LAN-W300N/R", "Ver2.27")
    >>> v.status, v.fixed_version, str(v.fixed_date)
    ('affected', '2.33', '2013-11-06')
    """
    advisories = _catalog(advisories, extra_dirs)
    key = model_key(model)
    found: list[Verdict] = []
    for a in advisories:
        product = _find(a, key)
        if product is not None:
            status, text, fields = judge(product, version)
            found.append(
                _verdict(a, product, status, message(lang, text, **fields), model, version, lang)
            )
    if not found:
        return _unknown(model, version, lang, advisories)
    return _worst(found)


def _worst(found: list[Verdict]) -> Verdict:
    found.sort(key=lambda v: (WORST_FIRST.index(v.status), v.advisory_id))
    return dataclasses.replace(found[0], also=tuple(found[1:]))


def _unknown(model: str, version: str, lang: str, advisories: Sequence[Advisory]) -> Verdict:
    names = {p.key: p.model for a in advisories for p in a.products}
    close = difflib.get_close_matches(model_key(model), list(names), n=3, cutoff=0.75)
    return Verdict(
        status="unknown_model",
        message=message(lang, "unknown_model", model=model[:200]),
        model=model,
        version=version,
        lang=lang,
        suggestions=tuple(names[k] for k in close),
    )


def _tokens(text: str) -> list[str]:
    clean = unicodedata.normalize("NFKC", text[:_BANNER_LIMIT]).casefold()
    return [t for t in re.split(r"[\s,;()\[\]\"']+", clean) if t]


def _contains(text: str, wanted: str) -> bool:
    have, need = _tokens(text), _tokens(wanted)
    return bool(need) and any(
        have[i : i + len(need)] == need for i in range(len(have) - len(need) + 1)
    )


def banner_matches(rule: BannerRule, server: str, manufacturer: str, model_name: str) -> bool:
    """Whether every field the rule sets occurs, as whole words, in the banner's field."""
    pairs = (
        (rule.server, server),
        (rule.manufacturer, manufacturer),
        (rule.model_name, model_name),
    )
    return any(w for w, _ in pairs) and all(_contains(h, w) for w, h in pairs if w)


def check_banner(
    *,
    server_header: str = "",
    manufacturer: str = "",
    model_name: str = "",
    lang: str = "en",
    advisories: Sequence[Advisory] | None = None,
    extra_dirs: Sequence[Path] = (),
) -> Verdict:
    """The verdict for a device known only by banners (HTTP Server header, UPnP description).

    >>> check_banner(server_header="Linux/2.6 UPnP/1.0 miniupnpd/1.0").status
    'possibly_affected'
    """
    advisories = _catalog(advisories, extra_dirs)
    found: list[Verdict] = []
    for a in advisories:
        product = _find(a, model_key(model_name)) if model_name.strip() else None
        if product is not None:
            found.append(_banner_model(a, product, model_name, lang))
        elif any(banner_matches(r, server_header, manufacturer, model_name) for r in a.banners):
            found.append(_possibly(a, model_name, lang))
    if not found:
        return Verdict("unknown_model", message(lang, "unknown_banner"), model_name, "", lang)
    return _worst(found)


def _banner_model(a: Advisory, product: Product, model_name: str, lang: str) -> Verdict:
    status, text, fields = judge(product, "")
    if status != "affected":
        status, text = "possibly_affected", "possibly_model"
    return _verdict(a, product, status, message(lang, text, **fields), model_name, "", lang)


def _possibly(a: Advisory, model_name: str, lang: str) -> Verdict:
    return Verdict(
        status="possibly_affected",
        message=message(lang, "possibly_banner"),
        model=model_name,
        version="",
        lang=lang,
        advisory_id=a.id,
        title=a.title.get(lang),
        vendor=a.vendor,
        cves=a.cves,
        jvn_ids=a.jvn_ids,
        actions=a.actions.get(lang),
        notes=a.notes.get(lang),
        references=tuple(r.url for r in a.references),
    )
