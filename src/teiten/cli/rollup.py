"""``teiten rollup`` and ``teiten pack``: rebuild and pack the day tables of stored data."""

from __future__ import annotations

from pathlib import Path

import click

from teiten.app.sketches import pack_store, rebuild_sketches
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
    """Rebuild the day tables (sketches and port lists) from the hourly rollups, packed.

    Series by day, port rankings, detection and the port page read the day
    tables over long windows when their days are days of the store's day zone;
    a store keeps the zone and home country of its first ingest. Run this to
    add them to a store written before they existed, or to cut them in another
    zone or for another home country. The rebuilt files are packed by month
    as ingest packs them (the pack_files setting; see teiten pack). Inputs
    ingested before the source index (source_ports, what the source page
    reads) existed get it, built from their packets.

    \b
    Example:  teiten rollup --zone Asia/Tokyo --home JP
    """
    settings = settings_from(ctx, data=data)
    r = rebuild_sketches(settings, zone, home)
    click.echo(
        f"wrote {r.rows:,} day table rows in {r.files:,} files; day zone {r.zone},"
        f" home {r.home}; packed into {r.packed.packs:,} files for {r.packed.months:,} month(s)"
    )
    if r.sourced:
        click.echo(f"built the source index (source_ports) of {r.sourced:,} older input(s)")
    if r.unrolled:
        click.echo(
            f"note: {r.unrolled:,} input(s) have no hourly rollup (ingested before rollups"
            " existed); series over them count exactly from their packets",
            err=True,
        )


@click.command("pack")
@data_option
@click.option(
    "--min-files",
    type=click.IntRange(min=2),
    default=2,
    show_default=True,
    help="Pack a month once a day table has this many files in it.",
)
@click.pass_context
def pack_command(ctx: click.Context, data: Path | None, min_files: int) -> None:
    """Pack the day tables of each month into one file per table.

    Every input writes its own day table files; a store of many inputs (a
    sensor ingesting every hour) pays for each file in every statement that
    reads them. Packing merges a month's files into one, as the readers merge
    them, with the same answers. Ingest packs a month by itself once it has
    pack_files files (a setting); this packs now.

    \b
    Example:  teiten pack --data /var/lib/teiten
    """
    settings = settings_from(ctx, data=data)
    r = pack_store(settings, min_files)
    if not r.months:
        click.echo("nothing to pack")
        return
    click.echo(
        f"packed {r.files:,} files into {r.packs:,} for {r.months:,} month(s), {r.rows:,} rows"
    )


COMMANDS = [rollup_command, pack_command]
