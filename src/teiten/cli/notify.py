"""``teiten notify``: notification feeds for network owners, one file per AS or prefix."""

from __future__ import annotations

from pathlib import Path

import click

from teiten.app.notify import BY, FORMATS, write_feed
from teiten.cli.common import data_option, engine_option, out_folder, settings_from, tz_option


@click.command("notify")
@data_option
@engine_option
@tz_option
@click.option("--by", type=click.Choice(BY), required=True, help="Group sources by AS or prefix.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    callback=out_folder,
    required=True,
    help="Folder the feed files are written to (created; its parent must exist).",
)
@click.option("--from", "first", metavar="DATE", help="First day, YYYY-MM-DD (local).")
@click.option("--to", "last", metavar="DATE", help="Last day, YYYY-MM-DD (local).")
@click.option(
    "--network", metavar="NET", help="Only one network: AS4713 (--by asn) or a CIDR (--by prefix)."
)
@click.pass_context
def notify_command(
    ctx: click.Context,
    data: Path | None,
    engine: str | None,
    tz: str | None,
    by: str,
    fmt: str,
    out: Path,
    first: str | None,
    last: str | None,
    network: str | None,
) -> None:
    """Write per-network feeds of infected-looking sources, for their networks' owners.

    One file per AS (--by asn, needs the asn_source setting) or per /24 and /48
    prefix (--by prefix), plus an index. A source is listed when it is classified
    malicious (Mirai fingerprint, exploit sessions, credential brute force; see
    docs/tags.md), with its first and last time, evidence and counts. Sensor
    addresses are never listed. Prints the paths written.

    \b
    Example:  teiten notify --by prefix --format csv --out feeds --from 2017-11-01
    """
    settings = settings_from(ctx, data=data, engine=engine, tz=tz)
    paths = write_feed(settings, out, by, fmt, first=first, last=last, network=network)
    for path in paths:
        click.echo(click.format_filename(path))


COMMANDS = [notify_command]
