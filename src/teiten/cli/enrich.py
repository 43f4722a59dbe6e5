"""``teiten enrich``: recompute country and ASN columns of stored data."""

from __future__ import annotations

from pathlib import Path

import click

from teiten.app.enrich import recompute_enrichment
from teiten.cli.common import data_option, settings_from


@click.command("enrich")
@data_option
@click.option(
    "--source",
    "country_source",
    metavar="SPEC",
    help="Country source: iptocc, rir:FILE[,FILE…] or mmdb:FILE.",
)
@click.option("--asn-source", "asn_source", metavar="SPEC", help="ASN source: none or mmdb:FILE.")
@click.option(
    "--force", is_flag=True, help="Re-enrich even when the source would remove many countries."
)
@click.pass_context
def enrich_command(
    ctx: click.Context,
    data: Path | None,
    country_source: str | None,
    asn_source: str | None,
    force: bool,
) -> None:
    """Re-enrich stored packets and sessions without re-reading the captures.

    Use the allocation data of the captures' own time for historical data: the
    five RIRs' delegated files of that day. A source that would remove the
    country of more than 10% of the packets is refused without --force.

    \b
    Example:  teiten enrich --source rir:afrinic.txt,apnic.txt,arin.txt,lacnic.txt,ripencc.txt
    """
    settings = settings_from(ctx, data=data, country_source=country_source, asn_source=asn_source)
    r = recompute_enrichment(settings, force=force)
    click.echo(
        f"re-enriched {r.packets:,} packets and {r.sessions:,} sessions in "
        f"{r.files:,} files with {r.enrichment}"
    )
    if r.coverage is not None and r.coverage.lost:
        click.echo(f"warning: {r.coverage.lost:,} packets lost their country", err=True)


COMMANDS = [enrich_command]
