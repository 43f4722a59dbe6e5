"""``teiten ports`` and ``teiten trend``: what hits the sensor, and how it changes."""

from __future__ import annotations

from pathlib import Path

import click

from teiten.analysis.series import MEASURES
from teiten.app.traffic import port_ranking, port_trend, trend_figure
from teiten.cli.common import data_option, engine_option, out_file, settings_from, tz_option
from teiten.cli.output import emit, format_option
from teiten.sql.traffic import SPLITS

_from = click.option("--from", "first", metavar="DATE", help="First day, YYYY-MM-DD (local).")
_to = click.option("--to", "last", metavar="DATE", help="Last day, YYYY-MM-DD (local).")


@click.command("ports")
@data_option
@engine_option
@tz_option
@_from
@_to
@click.option("--top", type=click.IntRange(1, 65536), default=20, show_default=True)
@format_option
@click.pass_context
def ports_command(
    ctx: click.Context,
    data: Path | None,
    engine: str | None,
    tz: str | None,
    first: str | None,
    last: str | None,
    top: int,
    fmt: str,
) -> None:
    """Destination ports ranked by unique sources, then packets (inbound only).

    \b
    Example:  teiten ports --from 2017-11-01 --to 2017-11-30 --top 10
    """
    rows = port_ranking(
        settings_from(ctx, data=data, engine=engine, tz=tz), first=first, last=last, top=top
    )
    emit(rows, fmt)


@click.command("trend")
@click.argument("ports", nargs=-1, required=True)
@data_option
@engine_option
@tz_option
@_from
@_to
@click.option("--by", type=click.Choice(["day", "hour"]), default="day", show_default=True)
@click.option(
    "--split",
    type=click.Choice(SPLITS),
    default="none",
    show_default=True,
    help="Segments: domestic = allocated to the home country vs foreign.",
)
@click.option(
    "--measure",
    "measures",
    multiple=True,
    type=click.Choice(MEASURES),
    help="Extra columns (sources24, per_address); the first one is charted.",
)
@format_option
@click.option(
    "--chart",
    type=click.Path(path_type=Path, dir_okay=False),
    callback=out_file,
    default=None,
    help="Also draw the series to FILE.png or FILE.svg.",
)
@click.option(
    "--onset",
    "onsets",
    multiple=True,
    metavar="DATE",
    help="Mark this onset on the chart (repeatable; default: stored alerts on these ports).",
)
@click.pass_context
def trend_command(
    ctx: click.Context,
    ports: tuple[str, ...],
    data: Path | None,
    engine: str | None,
    tz: str | None,
    first: str | None,
    last: str | None,
    by: str,
    split: str,
    measures: tuple[str, ...],
    fmt: str,
    chart: Path | None,
    onsets: tuple[str, ...],
) -> None:
    """Packets and unique sources per port, day (or hour) and segment.

    \b
    Example:  teiten trend 23/tcp 2323/tcp --split domestic --chart telnet.png
    """
    if onsets and chart is None:
        raise click.UsageError("--onset marks a chart: give --chart FILE too")
    settings = settings_from(ctx, data=data, engine=engine, tz=tz)
    rows = port_trend(
        settings,
        list(ports),
        first=first,
        last=last,
        by=by,
        split=split,
        measures=measures,
    )
    emit(rows, fmt)
    if chart is not None:
        measure = measures[0] if measures else "packets"
        trend_figure(settings, rows, chart, measure=measure, onsets=list(onsets) or None)
        click.echo(f"chart written to {chart}", err=True)


COMMANDS = [ports_command, trend_command]
