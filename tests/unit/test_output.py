from __future__ import annotations

import json

from teiten.cli.output import render

LONG = "sig.thinkphp-method-construct-cve-2018-20062-" + "x" * 300


def test_piped_table_never_wraps_a_cell() -> None:
    rows = [{"id": LONG, "title": "t" * 150, "n": 1}, {"id": "short", "title": "", "n": -2}]
    out = render(rows, "table")
    assert LONG in out and "t" * 150 in out


def test_table_headers_and_title_are_text_not_markup() -> None:
    rows = [{"[bold]x[/]": "[red]v[/red]", "a[/b]": "\x1b[2J"}]
    out = render(rows, "table", title="t [/i] \x07")
    assert "[bold]x[/]" in out and "[red]v[/red]" in out and "a[/b]" in out
    assert "\\x1b[2J" in out and "\x1b" not in out


def test_csv_header_and_cells_neutralised_json_ascii() -> None:
    rows = [{"=h": "=1+1", "n": -3}]
    assert render(rows, "csv") == "'=h,n\n'=1+1,-3"
    text = render([{"k": "\u202e\x1b"}], "json")
    assert text.isascii() and json.loads(text) == [{"k": "\u202e\x1b"}]


def test_a_field_escaped_early_is_not_escaped_twice() -> None:
    from teiten.escape import terminal

    banner = terminal("C:\\boot \x1b[0m", 40)  # cut short by the caller, as backcheck does
    out = render([{"text": banner}], "table")
    assert "C:\\\\boot \\x1b[0m" in out and "\\\\\\\\" not in out
    assert render([{"text": banner}], "csv") == "text\nC:\\\\boot \\x1b[0m"
