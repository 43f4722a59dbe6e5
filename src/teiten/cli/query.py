"""``teiten query``: SQL over the friendly views."""

from __future__ import annotations

from pathlib import Path

import click

from teiten.cli.common import data_option, settings_from
from teiten.cli.output import emit, format_option
from teiten.store.engine import run_query


@click.command("query")
@click.argument("sql")
@data_option
@format_option
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Rows printed at most (0: all).",
)
@click.pass_context
def query_command(
    ctx: click.Context, sql: str, data: Path | None, tz: str | None, fmt: str, limit: int
) -> None:
    """Run SQL over the views packets (and packets_raw, the stored columns).

    \b
    Example:
      teiten query "SELECT src, count(*) AS n FROM packets
                    WHERE dst_port = 52869 GROUP BY src ORDER BY n DESC LIMIT 10"
    """
    table = run_query(settings_from(ctx, data=data, tz=tz), sql)
    rows = table.slice(0, limit).to_pylist() if limit else table.to_pylist()
    emit(rows, fmt, columns=table.column_names)
    if limit and table.num_rows > limit:
        click.echo(f"({table.num_rows - limit} more rows; use --limit 0 for all)", err=True)


COMMANDS = [query_command]
