"""``teiten sensor``: the responders that feed the store (docs/sensor.md)."""

from __future__ import annotations

from pathlib import Path

import click

from teiten.cli.common import TeitenGroup, settings_from
from teiten.cli.output import emit, format_option
from teiten.escape import terminal
from teiten.sensor.config import EXAMPLE, describe, load_config

config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The sensor's TOML configuration.",
)


@click.group("sensor", cls=TeitenGroup)
def sensor_group() -> None:
    """Run responders that answer attackers and feed the store."""


@sensor_group.command("example-config")
def example_command() -> None:
    """Print a documented example configuration."""
    click.echo(EXAMPLE, nl=False)


@sensor_group.command("check")
@config_option
def check_command(config_path: Path) -> None:
    """Validate a configuration and print what would listen where."""
    for line in describe(load_config(config_path)):
        click.echo(terminal(line))


@sensor_group.command("run")
@config_option
@click.pass_context
def run_command(ctx: click.Context, config_path: Path) -> None:
    """Run the responders in the foreground until SIGTERM or SIGINT.

    Every ingest_interval seconds the current event file is closed and every
    closed one, and every capture renamed into spool/captures, is ingested into
    the store; detection runs every detect_interval seconds after new data. On a
    signal the last event file is closed and ingested too.
    """
    from teiten.sensor.service import run_sensor

    config = load_config(config_path)

    def log(line: str) -> None:
        click.echo(f"sensor: {terminal(line)}", err=True)

    health = run_sensor(config, settings_from(ctx), log)
    dropped = ", ".join(f"{k} {v:,}" for k, v in sorted(health.dropped.items())) or "none"
    click.echo(
        f"{health.connections:,} connections, {health.events:,} events recorded, "
        f"{health.files_ingested:,} file(s) ingested, {health.files_failed:,} failed; "
        f"{health.detections:,} detection run(s), {health.detections_failed:,} failed; "
        f"dropped: {dropped}"
    )
    if config.capture is not None:
        click.echo(
            f"capture: {health.capture_packets:,} packets in {health.capture_files:,} file(s), "
            f"{health.capture_kernel_drops:,} dropped by the kernel"
        )


@sensor_group.command("status")
@config_option
@format_option
def status_command(config_path: Path, fmt: str) -> None:
    """Show what a sensor is doing: live counters, files waiting, last ingest and detection.

    Reads the metrics endpoint when one is configured and answers, and the spool
    and the store otherwise; it never writes. JSON is a list with one record.
    """
    from teiten.sensor.status import sensor_status

    status = sensor_status(load_config(config_path))
    if fmt == "json":
        emit([status], fmt)
    else:
        emit([{"field": k, "value": v} for k, v in status.items()], fmt)


COMMANDS = [sensor_group]
