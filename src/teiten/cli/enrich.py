"""``teiten enrich``: recompute country and ASN columns of stored data."""

from __future__ import annotations

from pathlib import Path

import click

from teiten.cli.common import data_option, settings_from
from teiten.enrich.recompute import recompute_enrichment


@click.command("enrich")
@data_option
@click.option(
    "--source",
    "country_source",
    metavar="SPEC",
    help="Country source: iptocc, rir:FILE[,FILE…] or mmdb:FILE.",
)
@click.option("--asn-source", "asn_source", metavar="SPEC", help="ASN source: none or mmdb:FILE.")
@click.pass_context
def enrich_command(
    ctx: click.Context,
    data: Path | None,
    tz: str | None,
    country_source: str | None,
    asn_source: str | None,
) -> None:
    """Re-enrich stored packets and sessions without re-reading the captures.

    Use the allocation data of the captures' own time for historical data.

    \b
    Example:  teiten enrich --source rir:delegated-apnic-extended-20171101
    """
    settings = settings_from(
        ctx, data=data, tz=tz, country_source=country_source, asn_source=asn_source
    )
    r = recompute_enrichment(settings)
    click.echo(
        f"re-enriched {r.packets:,} packets and {r.sessions:,} sessions in "
        f"{r.files:,} files with {r.enrichment}"
    )


COMMANDS = [enrich_command]
