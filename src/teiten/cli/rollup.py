"""``teiten rollup``: rebuild the day sketches of stored data."""

from __future__ import annotations

from pathlib import Path

import click

from teiten.app.sketches import rebuild_sketches
from teiten.cli.common import data_option, settings_from


@click.command("rollup")
@data_option
@click.option(
    "--zone",
    metavar="AREA/CITY",
    help="Zone the sketches cut days in (default: the store's, else the tz setting).",
)
@click.option(
    "--home",
    metavar="CC",
    help="Country whose sources the segment sketches count as domestic"
    " (default: the store's, else the home_country setting).",
)
@click.pass_context
def rollup_command(
    ctx: click.Context, data: Path | None, zone: str | None, home: str | None
) -> None:
    """Rebuild the day sketches (port_sketches, port_segments) from the hourly rollups.

    Series by day, port rankings and detection read the day sketches over long
    windows when their days are days of the store's day zone; a store keeps the
    zone and home country of its first ingest. Run this to add sketches to a
    store written before they existed, or to cut them in another zone or for
    another home country.

    \b
    Example:  teiten rollup --zone Asia/Tokyo --home JP
    """
    settings = settings_from(ctx, data=data)
    r = rebuild_sketches(settings, zone, home)
    click.echo(
        f"wrote {r.rows:,} sketch rows in {r.files:,} files; day zone {r.zone}, home {r.home}"
    )
    if r.unrolled:
        click.echo(
            f"note: {r.unrolled:,} input(s) have no hourly rollup (ingested before rollups"
            " existed); series over them count exactly from their packets",
            err=True,
        )


COMMANDS = [rollup_command]
