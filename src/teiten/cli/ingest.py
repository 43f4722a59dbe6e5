"""``teiten ingest``: read captures into the store, with progress and a summary."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from teiten.cli.common import data_option, settings_from
from teiten.escape import terminal
from teiten.pipeline import IngestResult, ingest


def summary(result: IngestResult) -> list[str]:
    """Lines describing an ingest run."""
    lines = []
    for r in result.inputs:
        name = terminal(r.path)
        if r.status == "ingested":
            extra = f", {r.outbound:,} outbound" if r.outbound else ""
            extra += f", {r.sessions:,} sessions" if r.sessions else ""
            lines.append(f"{name}: {r.packets:,} packets{extra} in {r.seconds:.1f}s")
        elif r.status == "duplicate":
            lines.append(f"{name}: skipped, {terminal(r.message)}")
        elif r.status == "not_capture":
            lines.append(f"{name}: skipped, not a capture")
        else:
            lines.append(f"{name}: FAILED: {terminal(r.message)}")
    rate = result.packets / result.seconds if result.seconds else 0.0
    lines.append(
        f"total: {result.packets:,} packets from {len(result.inputs)} input(s) in "
        f"{result.seconds:.1f}s ({rate:,.0f} packets/s); countries: {result.enrichment}"
    )
    if result.malformed:
        parts = ", ".join(f"{k} {v:,}" for k, v in sorted(result.malformed.items()))
        lines.append(f"malformed (stored, flagged): {parts}")
    if result.skipped:
        parts = ", ".join(f"{k} {v:,}" for k, v in sorted(result.skipped.items()))
        lines.append(f"skipped in inputs: {parts}")
    return lines


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True)
@data_option
@click.option("--sensor", default=None, help="Sensor name stored with the packets.")
@click.option(
    "--sensor-net",
    "sensor_net",
    multiple=True,
    metavar="CIDR",
    help="The sensor's own network (repeatable): packets from it are outbound.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=None,
    help="1: one thread; 2 or more: decode and write overlap.",
)
@click.pass_context
def ingest_command(
    ctx: click.Context,
    paths: tuple[str, ...],
    data: Path | None,
    tz: str | None,
    sensor: str | None,
    sensor_net: tuple[str, ...],
    threads: int | None,
) -> None:
    """Ingest capture files, directories (recursive) or globs.

    Reads pcap and pcapng, plain or .gz/.zst/.xz. A file already ingested
    (same content) is skipped, so running the same command again is safe.

    \b
    Example:  teiten ingest /srv/darknet/2017-11/ --sensor tokyo-1 --sensor-net 203.0.113.0/24
    """
    settings = settings_from(
        ctx, data=data, tz=tz, sensor=sensor, sensor_networks=list(sensor_net), threads=threads
    )
    if sys.stderr.isatty():
        console = Console(stderr=True)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=True) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(terminal(Path(name).name, 40), total=total)
                bar.update(tasks[name], completed=min(done, total))

            result = ingest(paths, settings, progress)
    else:
        result = ingest(paths, settings)
    for line in summary(result):
        click.echo(line)
    if result.failed:
        raise click.ClickException(f"{len(result.failed)} input(s) failed (see above)")


COMMANDS = [ingest_command]
