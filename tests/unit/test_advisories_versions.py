"""Firmware version parsing and ordering: real-world forms, ambiguity, and order properties."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teiten.advisories.versions import (
    Range,
    Version,
    compare,
    compare_text,
    parse_range,
    parse_vers,
    parse_version,
    pick_version,
    split_version,
)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Ver2.14", "2.14"),
        ("2.14", "2.14"),
        ("v2.33", "2.33"),
        ("V2.33", "2.33"),
        ("Ver.2.14", "2.14"),
        ("Ver 2.14", "2.14"),
        ("Version 2.14", "2.14"),
        ("1.13N3L", "1.13N3L"),
        ("1.13n3l", "1.13N3L"),
        ("1.13N3L-b2", "1.13N3L-b2"),
        ("3.09 (2014/08/22)", "3.09"),
        ("3.09(2014-08-22)", "3.09"),
        ("Ｖｅｒ２．１４", "2.14"),
        (" 2.14 ", "2.14"),
        ("1.0.3", "1.0.3"),
    ],
)
def test_parses_real_world_forms(text: str, shown: str) -> None:
    v = parse_version(text)
    assert v is not None and str(v) == shown


@pytest.mark.parametrize(
    "text",
    ["", "latest", "2.14.", ".2", "2..14", "Ver", "2.14 (JP)", "2,14", "1" * 65, "v-2", "２．x"],
)
def test_unknown_forms_are_none(text: str) -> None:
    assert parse_version(text) is None


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("2.13", "2.14", -1),
        ("Ver2.14", "2.14", 0),
        ("2.15", "2.14", 1),
        ("2.09", "2.14", -1),  # same width: plain numbers
        ("2.1", "2.14", -1),  # 2.1 < 2.14 and 2.10 < 2.14: both readings agree
        ("2", "2.0", 0),
        ("2.14", "2.14.0", 0),
        ("2.14", "2.14.1", -1),
        ("1.12N3L", "1.13N3L", -1),
        ("1.13N3L", "1.13n3l", 0),
        ("1.13N3L-b2", "1.13N3L-b3", -1),  # the same kind of qualifier, numbered
        ("1.12N3L-b2", "1.13N3L", -1),  # the qualifier only matters between equal numbers
        ("3.09 (2014/08/22)", "v3.09", 0),
        ("10.00", "9.99", 1),
    ],
)
def test_order(a: str, b: str, order: int) -> None:
    assert compare_text(a, b).order == order
    assert compare_text(b, a).order == -order


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        ("2.9", "2.14", "width"),  # 2.9 < 2.14, or 2.90 > 2.14?
        ("3.1", "3.09", "width"),
        ("2.140", "2.14", "width"),
        ("1.13N3L-b2", "1.13N3L", "qualifier"),  # a beta before, or a build after?
        ("1.13N3L-rc1", "1.13N3L-b2", "qualifier"),
        ("1.12", "1.13N3L", "tag"),
        ("2.14J", "2.14", "tag"),
        ("latest", "2.14", "format"),
    ],
)
def test_cannot_compare(a: str, b: str, reason: str) -> None:
    c = compare_text(a, b)
    assert c.order is None and c.reason == reason
    assert compare_text(b, a).order is None


def test_ranges() -> None:
    r = parse_range(">= 2.00, < 2.33")
    assert str(r) == ">= 2.00, < 2.33"
    assert r.contains(parse_version("2.27")).order == 1
    assert r.contains(parse_version("2.33")).order == 0
    assert r.contains(parse_version("1.99")).order == 0
    assert r.contains(parse_version("2.9")).order is None
    assert r.contains(None).order is None
    assert Range().contains(None).order == 1 and str(Range()) == "*"
    for bad in ("2.33", "< latest", "<< 2", ""):
        with pytest.raises(ValueError):
            parse_range(bad)


def test_vers_ranges() -> None:
    assert parse_vers("vers:generic/<2.33") == (parse_range("< 2.33"),)
    assert parse_vers("vers:generic/>=1.00|<1.50") == (parse_range(">= 1.00, < 1.50"),)
    assert parse_vers("vers:generic/1.0|1.1") == (parse_range("= 1.0"), parse_range("= 1.1"))
    assert parse_vers("vers:generic/*") == (Range(),)
    assert parse_vers("<= 2.0") == (parse_range("<= 2.0"),)
    for unsupported in ("vers:generic/!=1.0", "vers:generic/<1|>2", "before 2.0", "vers:x/<y z"):
        assert parse_vers(unsupported) is None


def test_split_and_pick() -> None:
    assert split_version("LAN-W300N/R Ver2.33")[0] == "LAN-W300N/R"
    assert split_version("Example Router")[1] is None
    versions = [v for v in map(parse_version, ["2.14", "2.09", "2.33"]) if v]
    assert str(pick_version(versions, latest=False)) == "2.09"
    assert str(pick_version(versions, latest=True)) == "2.33"
    ambiguous = [v for v in map(parse_version, ["2.9", "2.14"]) if v]
    assert pick_version(ambiguous, latest=True) is None


_number = st.integers(0, 120).map(str) | st.sampled_from(["00", "01", "05", "09", "010", "0"])
_versions = st.builds(
    lambda nums, tag, qual: ".".join(nums) + tag + (f"-{qual}" if qual else ""),
    st.lists(_number, min_size=1, max_size=4),
    st.sampled_from(["", "", "", "N3L", "J"]),
    st.sampled_from(["", "", "", "b1", "b2", "rc1", "build7"]),
)


def _v(text: str) -> Version:
    v = parse_version(text)
    assert v is not None, text
    return v


@settings(max_examples=400, deadline=None)
@given(_versions, _versions)
def test_antisymmetric(a: str, b: str) -> None:
    ab, ba = compare(_v(a), _v(b)).order, compare(_v(b), _v(a)).order
    assert (ab is None and ba is None) or (ab is not None and ba == -ab)
    assert compare(_v(a), _v(a)).order == 0


@settings(max_examples=600, deadline=None)
@given(_versions, _versions, _versions)
def test_transitive(a: str, b: str, c: str) -> None:
    ab, bc = compare(_v(a), _v(b)).order, compare(_v(b), _v(c)).order
    if ab is not None and bc is not None and ab * bc >= 0:
        expected = ab or bc  # <= and < give <; = and = give =
        assert compare(_v(a), _v(c)).order == expected, (a, b, c)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 99), min_size=1, max_size=4))
def test_equal_width_numbers_order_like_tuples(parts: list[int]) -> None:
    a = ".".join(f"{p:02d}" if i else str(p) for i, p in enumerate(parts))
    b = ".".join(f"{p:02d}" if i else str(p) for i, p in enumerate([*parts[:-1], parts[-1] + 1]))
    if len(f"{parts[-1] + 1:02d}") == 2 or len(parts) == 1:
        assert compare_text(a, b).order == -1


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80))
def test_never_crashes_on_arbitrary_text(a: str, b: str) -> None:
    v = parse_version(a)
    assert v is None or isinstance(str(v), str)
    c = compare_text(a, b)
    assert c.order in (None, -1, 0, 1)
    with contextlib.suppress(ValueError):
        parse_range(a)
    assert parse_vers(a) is None or isinstance(parse_vers(a), tuple)
