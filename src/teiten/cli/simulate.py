"""``teiten simulate`` and ``teiten demo``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import click

from teiten.analysis.detection import alert_row
from teiten.app.demo import campaign_lines, run_demo, weekly
from teiten.cli.common import out_folder
from teiten.cli.ingest import summary
from teiten.cli.output import emit
from teiten.cli.payloads import _defanged
from teiten.escape import terminal
from teiten.simulate import simulate


@click.command("simulate")
@click.argument("scenario")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    callback=out_folder,
    required=True,
    help="Folder for the capture and truth.json (its parent must exist).",
)
@click.option(
    "--scale",
    type=click.FloatRange(min=0.001, max=100),
    default=1.0,
    show_default=True,
    help="Multiplies every volume.",
)
@click.option("--seed", type=int, default=0, show_default=True)
def simulate_command(scenario: str, out: Path, scale: float, seed: int) -> None:
    """Write a scenario's capture (real pcap) and its ground truth.

    \b
    Scenarios: npa-2017 (the seed case, 2017-10-01..12-18), smoke (tiny).
    Example:   teiten simulate npa-2017 --out sim/ --scale 0.1
    """
    result = simulate(scenario, out, scale=scale, seed=seed)
    for p in result.pcaps:
        click.echo(f"capture: {p}")
    click.echo(f"truth:   {result.truth}")
    click.echo(
        f"packets: {result.packets:,}; sensor network(s): {', '.join(result.sensor_networks)}"
    )


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    callback=out_folder,
    default=Path("teiten-demo"),
    show_default=True,
    help="Folder for the capture, the store and the charts: new, empty, or an earlier"
    " demo's (emptied first).",
)
@click.option("--scale", type=click.FloatRange(min=0.001, max=100), default=1.0, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.pass_obj
def demo_command(settings: object, out: Path, scale: float, seed: int) -> None:
    """Run the seed case end to end: simulate, ingest, rank ports, chart the surges.

    \b
    Example:  teiten demo --out /tmp/demo
    """
    from teiten.config import Settings

    assert isinstance(settings, Settings)
    result = run_demo(out, settings, scale=scale, seed=seed)
    for line in summary(result.ingest):
        click.echo(line)
    click.echo("")
    emit(result.top_ports, "table", title="Top ports by unique sources, 2017-10-01..12-18")
    click.echo("")
    emit(
        weekly(result.exploit_series),
        "table",
        title="52869/TCP by week: packets (most unique sources in a day)",
    )
    click.echo("")
    emit(
        weekly(result.telnet_series),
        "table",
        title="23/TCP and 2323/TCP by week, domestic (JP-allocated) vs foreign:"
        " packets (most unique sources in a day)",
    )
    click.echo("")
    emit([alert_row(a) for a in result.alerts], "table", title="Alerts (teiten detect)")
    for line in campaign_lines(result.alerts):
        click.echo(line)
    click.echo("")
    if result.sample:
        sample = result.sample
        click.echo(
            f"Payload sample {sample['id']} ({', '.join(sample['cves'])}, "
            f"{', '.join(sample['jvn'])}; {', '.join(sample['signatures'])}), masked:"
        )
        for line in sample["request"].splitlines()[:40]:
            for piece in textwrap.wrap(line, 96, drop_whitespace=False) or [""]:
                click.echo("  " + terminal(piece, limit=200))
        for cmd in sample["injected"]:
            click.echo(f"  injected command: {terminal(cmd, limit=300)}")
        click.echo("")
    emit(
        _defanged(result.indicators, "value"),
        "table",
        title="Top indicators (defanged; never fetched)",
        columns=["type", "value", "sessions", "sources", "first_seen"],
    )
    click.echo("")
    for c in result.charts:
        click.echo(f"chart: {c}")
    for r in result.reports:
        click.echo(f"report: {r}")
    for note in result.skipped:
        click.echo(f"skipped {note}", err=True)
    click.echo(f"browse:  teiten serve --data {click.format_filename(out / 'data')}")


COMMANDS = [simulate_command, demo_command]
