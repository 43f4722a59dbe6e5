"""Regenerate the generated blocks in docs/*.md from the code (``--check``: fail if stale).

Blocks are delimited by ``<!-- BEGIN GENERATED: name -->`` and
``<!-- END GENERATED: name -->``; the prose around them is written by hand.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def cli_reference() -> str:
    from teiten.cli.main import cli

    out = []
    ctx = click.Context(cli, info_name="teiten")
    for name in sorted(cli.list_commands(ctx)):
        command = cli.get_command(ctx, name)
        assert command is not None
        sub = click.Context(command, info_name=name, parent=ctx)
        help_text = command.get_help(sub).replace("Usage: teiten", "teiten")
        out.append(f"### `teiten {name}`\n\n```\n{help_text}\n```\n")
    return "\n".join(out)


def settings_table() -> str:
    from teiten.config import SETTINGS

    rows = ["| setting | env | default | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        rows.append(f"| `{s.name}` | `TEITEN_{s.name.upper()}` | `{s.default!r}` | {s.doc} |")
    return "\n".join(rows)


def _columns(table: str) -> str:
    from teiten.schema import LAKE_TABLES, STATE_TABLES

    declared = {**LAKE_TABLES, **{name: t.columns for name, t in STATE_TABLES.items()}}
    rows = ["| column | type | meaning |", "|---|---|---|"]
    rows += [row for c in declared[table] for row in _column_rows(c)]
    return "\n".join(rows)


def _column_rows(c: Any, prefix: str = "") -> list[str]:
    """A declared column's row, then its fields' (``a[].b`` inside a list of structs)."""
    name, limit = prefix + c.name, ""
    if getattr(c, "limit", 0):
        limit = f" At most {c.limit:,} {'characters' if c.dtype == 'str' else 'items'}."
    fields = getattr(c, "fields", ())
    if c.dtype == "list_str" and fields and fields[0].limit:
        limit += f" Each at most {fields[0].limit:,} characters."
    rows = [f"| `{name}` | {c.dtype} | {c.doc}{limit} |"]
    if c.dtype in ("struct", "list_struct"):
        for f in fields:
            rows += _column_rows(f, name + ("[]." if c.dtype == "list_struct" else "."))
    return rows


def logical_columns() -> str:
    return _columns("packets")


def stored_columns() -> str:
    from teiten.store.layout import PACKED, RESIDUALS, stored_columns

    rows = ["| stored column | type | encoding | holds |", "|---|---|---|---|"]
    packed = {p.name: p for p in PACKED}
    for s in stored_columns():
        if s.name in packed:
            holds = ", ".join(
                f"`{c}` (bits {sh}–{sh + b - 1})" for c, sh, b in packed[s.name].shifts()
            )
        elif s.name in RESIDUALS:
            holds = f"`{s.name}` XOR " + " XOR ".join(f"stored `{o}`" for o in RESIDUALS[s.name])
        elif s.name == "ts_us":
            holds = "`ts` // 1000"
        elif s.name == "ts_ns":
            holds = "`ts` % 1000"
        else:
            holds = f"`{s.name}`"
        rows.append(f"| `{s.name}` | {s.dtype} | {s.encoding} | {holds} |")
    return "\n".join(rows)


def decode_errors() -> str:
    from teiten.schema import DECODE_ERRORS

    rows = ["| code | decode_error |", "|---|---|"]
    rows += [f"| {i} | `{n}` |" for i, n in enumerate(DECODE_ERRORS) if n]
    return "\n".join(rows)


def packets_view() -> str:
    return _view("packets")


def _view(name: str) -> str:
    from teiten.app.engine import open_engine
    from teiten.config import load_settings
    from teiten.store.lake import Lake

    with tempfile.TemporaryDirectory() as tmp:
        Lake(Path(tmp), create=True).close()
        with open_engine(load_settings(env={}, overrides={"data": tmp})) as engine:
            t = engine.query(f"DESCRIBE {name}").to_pylist()
    rows = ["| column | SQL type |", "|---|---|"]
    rows += [f"| `{r['column_name']}` | {r['column_type']} |" for r in t]
    return "\n".join(rows)


BLOCKS: dict[str, Callable[[], str]] = {
    "cli": cli_reference,
    "settings": settings_table,
    "logical-columns": logical_columns,
    "sessions-columns": lambda: _columns("sessions"),
    "logins-columns": lambda: _columns("logins"),
    "probes-columns": lambda: _columns("probes"),
    "port-hours-columns": lambda: _columns("port_hours"),
    "port-sketches-columns": lambda: _columns("port_sketches"),
    "port-segments-columns": lambda: _columns("port_segments"),
    "port-hour-segments-columns": lambda: _columns("port_hour_segments"),
    "port-groups-columns": lambda: _columns("port_groups"),
    "port-tops-columns": lambda: _columns("port_tops"),
    "source-ports-columns": lambda: _columns("source_ports"),
    "address-hours-columns": lambda: _columns("address_hours"),
    "alerts-columns": lambda: _columns("alerts"),
    "deliveries-columns": lambda: _columns("deliveries"),
    "sessions-view": lambda: _view("sessions"),
    "logins-view": lambda: _view("logins"),
    "indicators-view": lambda: _view("indicators"),
    "stored-columns": stored_columns,
    "decode-errors": decode_errors,
    "packets-view": packets_view,
}

_BLOCK = re.compile(
    r"(<!-- BEGIN GENERATED: ([\w-]+) -->\n)(.*?)(<!-- END GENERATED: \2 -->)", re.S
)


def render(text: str) -> str:
    return _BLOCK.sub(
        lambda m: m.group(1) + BLOCKS[m.group(2)]().rstrip() + "\n" + m.group(4), text
    )


def main(check: bool) -> int:
    stale = []
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        new = render(text)
        if new != text:
            stale.append(path.name)
            if not check:
                path.write_text(new, encoding="utf-8")
    if check and stale:
        print(f"stale generated docs: {', '.join(stale)} (run python scripts/gen_docs.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
