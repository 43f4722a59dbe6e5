"""``teiten detect`` and ``teiten alerts``: find surges, and list the alerts kept."""

from __future__ import annotations

from pathlib import Path

import click

from teiten.analysis.detection import alert_row
from teiten.app.detect import list_alerts, run_detection
from teiten.cli.common import data_option, engine_option, settings_from, tz_option
from teiten.cli.output import emit, format_option


@click.command("detect")
@data_option
@engine_option
@tz_option
@click.option("--from", "first", metavar="DATE", help="First day, YYYY-MM-DD (local).")
@click.option("--to", "last", metavar="DATE", help="Last day, YYYY-MM-DD (local).")
@format_option
@click.pass_context
def detect_command(
    ctx: click.Context,
    data: Path | None,
    engine: str | None,
    tz: str | None,
    first: str | None,
    last: str | None,
    fmt: str,
) -> None:
    """Detect surges and sweeps on every port, link campaigns, store and deliver alerts.

    Run it after each ingest: a rise still going on updates its alert. This is
    the only command that stores alert state and sends webhooks (teiten report
    only reads them).

    \b
    Example:  teiten detect --tz Asia/Tokyo
    """
    result = run_detection(
        settings_from(ctx, data=data, engine=engine, tz=tz), first=first, last=last
    )
    emit([alert_row(a) for a in result.found], fmt)
    if result.window and fmt == "table":
        click.echo(
            f"{len(result.found)} alert(s) over {result.series:,} series, "
            f"{result.window[0]}..{result.window[1]}",
            err=True,
        )
    for warning in sorted({d["warning"] for d in result.deliveries if "warning" in d}):
        click.echo(f"warning: {warning}", err=True)
    failed = [d for d in result.deliveries if not d["delivered"]]
    if failed:
        raise click.ClickException(
            f"{len(failed)} webhook deliveries failed (last status {failed[-1]['status']})"
        )


@click.command("alerts")
@data_option
@engine_option
@click.option("--since", metavar="DATE", help="Only alerts still rising on or after DATE.")
@format_option
@click.pass_context
def alerts_command(
    ctx: click.Context, data: Path | None, engine: str | None, since: str | None, fmt: str
) -> None:
    """List stored alerts: kind, port, segment, onset, ratio, score, state, campaign.

    \b
    Example:  teiten alerts --since 2017-11-01 --format json
    """
    emit(list_alerts(settings_from(ctx, data=data, engine=engine), since=since), fmt)


COMMANDS = [detect_command, alerts_command]
