"""CSV cells that a spreadsheet will not run: the one rule for every CSV teiten writes.

A cell whose text begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is taken as a formula by Excel, LibreOffice and Google Sheets
(``=HYPERLINK(...)``, ``+cmd|' /C calc'!A0``). Attackers choose usernames,
paths and URLs, so every text cell starting with one of those characters gets a
leading single quote (OWASP, "CSV Injection"): the spreadsheet shows the text,
and a reader of the raw file sees one extra ``'``.

Numbers stay numbers: an ``int`` or ``float`` value (a count, a ratio, a
negative change) is the project's own figure, not attacker text, and is written
as is. Every other value — text, lists joined with commas, identifiers that
happen to look numeric — is text and follows the rule. Text is also escaped
with :func:`teiten.escape.terminal` first, so a cell holds no control character.
"""

from __future__ import annotations

import csv
import io
import numbers
from collections.abc import Sequence
from typing import Any

from teiten.escape import terminal

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text


def plain(value: Any) -> str:
    """A value as one line of escaped text (lists joined by commas, None empty)."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ",".join(plain(x) for x in value)
    return terminal(value)


def cell(value: Any) -> str:
    """One CSV cell: numbers as numbers, anything else escaped text with formulas neutralised."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return str(value)
    return neutralise(plain(value))


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """``rows`` as CSV text (a header line, then one line per row), every cell by :func:`cell`."""
    cols = list(columns or (rows[0].keys() if rows else []))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([cell(c) for c in cols])
    for r in rows:
        w.writerow([cell(r.get(c)) for c in cols])
    return buf.getvalue().rstrip("\n")
