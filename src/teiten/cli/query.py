"""``teiten query``: SQL over the friendly views."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pyarrow as pa

from teiten.app.engine import stream_query
from teiten.cli.common import data_option, engine_option, settings_from
from teiten.cli.output import emit, format_option, render


def _streamed(batches: Iterator[pa.RecordBatch], fmt: str) -> None:
    """CSV or JSON printed batch by batch: all rows never held at once."""
    first = True
    for batch in batches:
        rows = batch.to_pylist()
        if not rows:
            continue
        text = render(rows, fmt, columns=batch.schema.names)
        if fmt == "csv":
            text = text if first else text.split("\n", 1)[1]
        else:  # one JSON array: the batches' arrays joined
            text = ("[\n" if first else ",\n") + text.strip()[1:-1].strip("\n")
        click.echo(text)
        first = False
    if fmt == "json":
        click.echo("[]" if first else "]")


@click.command("query")
@click.argument("sql")
@data_option
@engine_option
@format_option
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Rows printed at most, limited in the engine (0: all, streamed for csv/json).",
)
@click.pass_context
def query_command(
    ctx: click.Context, sql: str, data: Path | None, engine: str | None, fmt: str, limit: int
) -> None:
    """Run SQL over the views: packets, packets_raw, series, sessions, logins,
    indicators, probes.

    \b
    Example:
      teiten query "SELECT src, count(*) AS n FROM packets
                    WHERE dst_port = 52869 GROUP BY src ORDER BY n DESC LIMIT 10"
    """
    batches = stream_query(
        settings_from(ctx, data=data, engine=engine), sql, limit=limit + 1 if limit else 0
    )
    if not limit and fmt != "table":
        _streamed(batches, fmt)
        return
    rows: list[dict[str, Any]] = []
    columns: list[str] = []
    for batch in batches:
        columns = batch.schema.names
        rows += batch.to_pylist()
    more = bool(limit) and len(rows) > limit
    emit(rows[:limit] if limit else rows, fmt, columns=columns)
    if more:
        click.echo(f"(more than {limit:,} rows; use --limit 0 for all)", err=True)


COMMANDS = [query_command]
