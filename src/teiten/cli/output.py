"""Printing result rows as a table, CSV or JSON, with every value escaped.

Table cells go through :func:`teiten.escape.terminal`; CSV cells through
:func:`teiten.csvcell.cell` (escaped, and formula-neutralised); JSON is written
with ``ensure_ascii`` so control, bidi and every non-ASCII character is a
``\\u`` escape of four hex digits and nothing in it can act on a terminal. Headers and titles
are plain text, never rich markup; a piped table is never wrapped.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from teiten.csvcell import csv_text, plain
from teiten.escape import terminal
from teiten.export.jsonable import jsonable

FORMATS = ("table", "csv", "json")
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format.",
)


def render(
    rows: Sequence[dict[str, Any]],
    fmt: str,
    *,
    columns: Sequence[str] | None = None,
    title: str | None = None,
) -> str:
    """The rows as text in one of :data:`FORMATS`."""
    cols = list(columns or (rows[0].keys() if rows else []))
    if fmt == "json":
        # ensure_ascii keeps control and bidi characters as \\u escapes.
        return json.dumps([jsonable(dict(r)) for r in rows], ensure_ascii=True, indent=1)
    if fmt == "csv":
        return csv_text(rows, cols)
    from rich.console import Console  # tables only: rich costs a CSV or JSON answer 15 ms
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title) if title else None, show_edge=False, header_style="bold")
    for c in cols:
        numeric = bool(rows) and all(isinstance(r.get(c), int | float) for r in rows)
        table.add_column(Text(terminal(c)), justify="right" if numeric else "left")
    for r in rows:
        table.add_row(*[Text(plain(r.get(c))) for c in cols])
    console = Console(
        file=io.StringIO(),
        width=None if sys.stdout.isatty() else 1 << 16,  # piped: never wrap a cell
        force_terminal=False,
        color_system=None,
    )
    console.print(table)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    return str(out).rstrip("\n")


def emit(rows: Sequence[dict[str, Any]], fmt: str, **kw: Any) -> None:
    click.echo(render(rows, fmt, **kw))
