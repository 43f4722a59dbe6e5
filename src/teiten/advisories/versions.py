"""Firmware version strings: parse the forms vendors print, and order two only when certain.

A version is read as ``[prefix] NUMBERS [TAG] [SEP QUALIFIER] [(DATE)]``:

* prefix ``Ver``, ``Ver.``, ``Version``, ``v``, ``V``, ``FW``, ``Firmware`` (dropped);
* NUMBERS, dotted decimal digits: ``2.14``, ``1.0.3``;
* TAG, letters and digits glued to the numbers: ``N3L`` in ``1.13N3L`` (a
  variant label; compared for equality only);
* QUALIFIER after ``-``, ``_``, ``+``, ``~`` or a space: ``b2`` in ``1.13N3L-b2``;
* a release date in brackets, ``3.09 (2014/08/22)`` (dropped).

Text is NFKC-normalised first, so full-width ``Ｖｅｒ２．１４`` reads as ``Ver2.14``.

Ordering (see docs/advisories.md): the numbers are compared under two
readings, as integers (2.9 < 2.14) and with the second number as a decimal
fraction (2.9 = 2.90 > 2.14); the answer is given only when both readings
agree. Tags must be equal. A qualifier only decides between equal numbers,
and only against the same kind of qualifier (``b2`` < ``b3``); ``1.13N3L-b2``
against ``1.13N3L`` has no answer (a beta before, or a build after?).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

MAX_LENGTH = 64
"""Longer version strings are not parsed (no firmware version is this long)."""

Reason = Literal["", "format", "tag", "width", "qualifier"]
"""Why two versions cannot be compared ("" when they can)."""

_VERSION = re.compile(
    r"""
    (?:(?:firmware|fw|version|ver|v)[\s.:]*)?
    (?P<numbers>[0-9]+(?:\.[0-9]+)*)
    (?P<tag>[a-z][a-z0-9]*)?
    (?:[-_+~\s]+(?P<qualifier>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    (?:\s*[(\[]\s*[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}\s*[)\]])?
    """,
    re.VERBOSE | re.IGNORECASE | re.ASCII,
)
_KIND_NUMBER = re.compile(r"([a-z]*)([0-9]{1,9})", re.ASCII)
_OPS = ("<=", ">=", "<", ">", "=")


@dataclass(frozen=True)
class Version:
    """A parsed firmware version; ``text`` is the string as written (not compared by ==)."""

    text: str = field(compare=False)
    numbers: tuple[str, ...]
    tag: str = ""
    qualifier: str = ""

    def __str__(self) -> str:
        base = ".".join(self.numbers) + self.tag
        return f"{base}-{self.qualifier}" if self.qualifier else base


@dataclass(frozen=True)
class Comparison:
    """The order of two versions (-1, 0, 1), or None and the reason there is none."""

    order: int | None
    reason: Reason = ""


def parse_version(text: str) -> Version | None:
    """The version in ``text``, or None when it is not of a form listed above.

    >>> str(parse_version("Ver.2.14")), str(parse_version("3.09 (2014/08/22)"))
    ('2.14', '3.09')
    """
    if len(text) > MAX_LENGTH:
        return None
    clean = unicodedata.normalize("NFKC", text).strip()
    m = _VERSION.fullmatch(clean) if len(clean) <= MAX_LENGTH else None
    if m is None:
        return None
    return Version(
        text=text.strip(),
        numbers=tuple(m["numbers"].split(".")),
        tag=(m["tag"] or "").upper(),
        qualifier=(m["qualifier"] or "").lower(),
    )


def _sign(a: tuple[Fraction, ...] | int, b: tuple[Fraction, ...] | int) -> int:
    return (a > b) - (a < b)  # type: ignore[operator]


def _padded(a: list[Fraction], b: list[Fraction]) -> int:
    n = max(len(a), len(b))
    zero = [Fraction(0)] * n
    return _sign(tuple(a + zero[len(a) :]), tuple(b + zero[len(b) :]))


def _integer_reading(v: Version) -> list[Fraction]:
    return [Fraction(int(x)) for x in v.numbers]


def _decimal_reading(v: Version) -> list[Fraction]:
    """The second number as a fraction: 2.9 → (2, 9/10), 2.14 → (2, 14/100)."""
    key = _integer_reading(v)
    if len(v.numbers) > 1:
        minor = v.numbers[1]
        key[1] = Fraction(int(minor), 10 ** len(minor))
    return key


def _compare_qualifiers(a: str, b: str) -> int | None:
    if a == b:
        return 0
    ma, mb = _KIND_NUMBER.fullmatch(a), _KIND_NUMBER.fullmatch(b)
    if ma and mb and ma[1] == mb[1]:
        return _sign(int(ma[2]), int(mb[2]))
    return None


def compare(a: Version, b: Version) -> Comparison:
    """-1, 0 or 1 when every reading of the two versions agrees, else None and why.

    >>> compare(parse_version("2.27"), parse_version("Ver2.33")).order
    -1
    >>> compare(parse_version("2.9"), parse_version("2.14"))
    Comparison(order=None, reason='width')
    """
    if a.tag != b.tag:
        return Comparison(None, "tag")
    base_int = _padded(_integer_reading(a), _integer_reading(b))
    base_dec = _padded(_decimal_reading(a), _decimal_reading(b))
    qualifiers = _compare_qualifiers(a.qualifier, b.qualifier)
    by_int = base_int or qualifiers
    by_dec = base_dec or qualifiers
    if by_int is not None and by_int == by_dec:
        return Comparison(by_int)
    return Comparison(None, "width" if base_int != base_dec else "qualifier")


def compare_text(a: str, b: str) -> Comparison:
    """:func:`compare` on two strings; an unparseable one gives reason ``format``."""
    va, vb = parse_version(a), parse_version(b)
    if va is None or vb is None:
        return Comparison(None, "format")
    return compare(va, vb)


@dataclass(frozen=True)
class Range:
    """A version range: all of its constraints hold (``*``: every version).

    Written ``*``, or constraints ``OP VERSION`` joined by commas, OP one of
    ``< <= > >= =``: ``"< 2.33"``, ``">= 2.00, < 2.33"``, ``"= 2.27"``.
    """

    constraints: tuple[tuple[str, Version], ...] = ()

    @property
    def everything(self) -> bool:
        return not self.constraints

    def __str__(self) -> str:
        if self.everything:
            return "*"
        return ", ".join(f"{op} {v}" for op, v in self.constraints)

    def contains(self, version: Version | None) -> Comparison:
        """order 1 (inside), 0 (outside), or None when some constraint cannot be decided."""
        if self.everything:
            return Comparison(1)
        unknown: Comparison | None = None
        for op, bound in self.constraints:
            c = compare(version, bound) if version is not None else Comparison(None, "format")
            if c.order is None:
                unknown = unknown or c
            elif not _holds(op, c.order):
                return Comparison(0)
        return unknown or Comparison(1)


def _holds(op: str, order: int) -> bool:
    return {
        "<": order < 0,
        "<=": order <= 0,
        ">": order > 0,
        ">=": order >= 0,
        "=": order == 0,
    }[op]


def parse_range(text: str) -> Range:
    """The range written in ``text``; ValueError says what is wrong."""
    text = text.strip()
    if text == "*":
        return Range()
    constraints = []
    for part in text.split(","):
        part = part.strip()
        op = next((o for o in _OPS if part.startswith(o)), None)
        if op is None:
            raise ValueError(f"{part!r} does not start with one of {' '.join(_OPS)}")
        version = parse_version(part[len(op) :])
        if version is None:
            raise ValueError(f"{part[len(op) :].strip()!r} is not a version teiten can read")
        constraints.append((op, version))
    return Range(tuple(constraints))


def default_affected(fixed: Version | None) -> tuple[Range, ...]:
    """Every version before the fixed one, or every version when none is fixed."""
    return (Range((("<", fixed),)),) if fixed else (Range(),)


def any_contains(ranges: tuple[Range, ...], version: Version | None) -> Comparison:
    """Whether some range holds the version: 1 yes, 0 no, None undecided (and why)."""
    unknown: Comparison | None = None
    for r in ranges:
        c = r.contains(version)
        if c.order == 1:
            return c
        if c.order is None:
            unknown = unknown or c
    return unknown or Comparison(0)


def parse_vers(text: str) -> tuple[Range, ...] | None:
    """A ``vers:`` range (one bound, an interval, or = versions) or a teiten range, else None."""
    m = re.fullmatch(r"vers:[a-z0-9.+-]+/(.+)", text.strip(), re.IGNORECASE)
    if m is None:
        try:
            return (parse_range(text),)
        except ValueError:
            return None
    if m[1].strip() == "*":
        return (Range(),)
    bounds = []
    for part in m[1].split("|"):
        op = next((o for o in ("<=", ">=", "!=", "<", ">", "=") if part.strip().startswith(o)), "=")
        version = parse_version(part.strip().removeprefix(op))
        if version is None or op == "!=":
            return None
        bounds.append((op, version))
    if all(op == "=" for op, _ in bounds):
        return tuple(Range((b,)) for b in bounds)
    if len(bounds) == 1 or (
        len(bounds) == 2 and bounds[0][0] in (">", ">=") and bounds[1][0] in ("<", "<=")
    ):
        return (Range(tuple(bounds)),)
    return None


def split_version(name: str) -> tuple[str, Version | None]:
    """A product name's model and version: the last word, if it reads as a version.

    >>> split_version("LAN-W300N/R Ver2.33")[0], split_version("HG532")
    ('LAN-W300N/R', ('HG532', None))
    """
    head, _, last = name.rpartition(" ")
    version = parse_version(last) if head.strip() else None
    return (head.strip(), version) if version else (name, None)


def pick_version(versions: list[Version], *, latest: bool) -> Version | None:
    """The earliest (or latest) of some versions; None if two of them cannot be ordered."""
    out = versions[0]
    for v in versions[1:]:
        order = compare(out, v).order
        if order is None:
            return None
        out = v if (order < 0 if latest else order > 0) else out
    return out
