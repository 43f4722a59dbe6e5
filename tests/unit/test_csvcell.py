from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from teiten.config import SETTINGS
from teiten.csvcell import FORMULA_START, cell, neutralise

DOCS = Path(__file__).parents[2] / "docs" / "cli.md"


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("\t=1", "\\x09=1"),  # escaped first: the tab is shown, never starts the cell
        ("root", "root"),
        ("a=b", "a=b"),
        (-3, "-3"),
        (2.5, "2.5"),
        (None, ""),
        (["=1", "b"], "'=1,b"),
        (b"=cmd\xff", "'=cmd\\xff"),
    ],
)
def test_cells(value: object, want: str) -> None:
    assert cell(value) == want


def test_neutralise_covers_tab_and_cr_too() -> None:
    assert neutralise("\t=1") == "'\t=1" and neutralise("\r=1") == "'\r=1"


@given(st.one_of(st.text(), st.binary(), st.lists(st.text(), max_size=3)))
def test_no_cell_starts_a_formula_or_holds_a_control(value: object) -> None:
    out = cell(value)
    assert not out.startswith(FORMULA_START)
    assert not [c for c in out if ord(c) < 0x20 or ord(c) == 0x7F]
    row = next(csv.reader(io.StringIO(_written(out))))
    assert row == [out]


def _written(text: str) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow([text])
    return buf.getvalue()


def test_the_rule_and_the_secrets_are_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for start in ("`=`", "`+`", "`-`", "`@`", "a tab", "a carriage return"):
        assert start in text
    assert len(FORMULA_START) == 6
    for s in SETTINGS:
        if s.secret:
            assert f"`{s.name}`" in text.split("<!-- BEGIN GENERATED: cli -->")[0], s.name
