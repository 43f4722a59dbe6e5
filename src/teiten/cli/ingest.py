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

from teiten.app.ingest import ingest
from teiten.cli.common import data_option, settings_from
from teiten.engine import ENGINES
from teiten.escape import terminal
from teiten.pipeline import IngestResult


def summary(result: IngestResult) -> list[str]:
    """Lines describing an ingest run."""
    lines = [f"warning: {terminal(w)}" for w in result.warnings]
    for r in result.inputs:
        name = terminal(r.path)
        if r.status in ("ingested", "stopped"):
            extra = f", {r.outbound:,} outbound" if r.outbound else ""
            extra += f", {r.sessions:,} sessions" if r.sessions else ""
            extra += f", {r.quarantined:,} quarantined" if r.quarantined else ""
            lines.append(f"{name}: {r.packets:,} packets{extra} in {r.seconds:.1f}s")
            if r.status == "stopped":
                lines.append(f"{name}: STOPPED: {terminal(r.message)}; what was read is kept")
        elif r.status == "duplicate":
            lines.append(f"{name}: skipped, {terminal(r.message)}")
        elif r.status == "not_capture":
            lines.append(f"{name}: skipped, not a capture")
        else:
            lines.append(f"{name}: FAILED: {terminal(r.message)}")
        lines.extend(f"{name}: warning: {terminal(w)}" for w in r.warnings)
    rate = result.packets / result.seconds if result.seconds else 0.0
    lines.append(
        f"total: {result.packets:,} packets from {len(result.inputs)} input(s) in "
        f"{result.seconds:.1f}s ({rate:,.0f} packets/s); countries: {result.enrichment}"
    )
    if result.packed:
        lines.append(f"packed {result.packed:,} derived files by month (teiten pack)")
    if result.warning_count:
        lines.append(f"warnings: {result.warning_count}")
    if result.quarantined:
        lines.append(
            f"quarantined (implausible timestamps, or days past max_days_per_input): "
            f"{result.quarantined:,} packets, left out of analysis (query view quarantine)"
        )
    if result.malformed:
        parts = ", ".join(f"{k} {v:,}" for k, v in sorted(result.malformed.items()))
        lines.append(f"malformed (stored, flagged): {parts}")
    if result.skipped:
        parts = ", ".join(f"{k} {v:,}" for k, v in sorted(result.skipped.items()))
        lines.append(f"skipped in inputs: {parts}")
    return lines


def _wait_seconds(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise click.BadParameter(
            f"expected seconds, not {value!r} (write --wait=SECONDS, or --wait after the paths)"
        ) from None
    if not seconds >= 0:
        raise click.BadParameter("expected seconds ≥ 0")
    return seconds


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
    help="1: one thread; 2 or more: decoding, rollups and writing overlap.",
)
@click.option(
    "--engine",
    default=None,
    type=click.Choice(list(ENGINES)),
    help="spark: spread the files over Spark executors (setting spark_master; the data "
    "folder on a filesystem they share); otherwise one after the other here "
    "(default: setting engine, duckdb).",
)
@click.option(
    "--wait",
    "lock_wait",
    is_flag=False,
    flag_value="inf",
    default=None,
    metavar="[SECONDS]",
    callback=_wait_seconds,
    help="If another ingest holds the data folder, wait for it (up to SECONDS) instead of "
    "failing at once.",
)
@click.pass_context
def ingest_command(
    ctx: click.Context,
    paths: tuple[str, ...],
    data: Path | None,
    sensor: str | None,
    sensor_net: tuple[str, ...],
    threads: int | None,
    engine: str | None,
    lock_wait: float | None,
) -> None:
    """Ingest capture files, directories (recursive) or globs.

    Reads pcap and pcapng, plain or .gz/.zst/.xz. A file already ingested
    (same content) is skipped, so running the same command again is safe.
    Exit status 1 when an input failed or was stopped early (junk, expansion)
    or the run stopped (disk full, damaged enrichment file); warnings (an
    empty folder or capture, no --sensor-net) leave it 0.

    With --engine spark the files are decoded on Spark executors and committed
    here, input by input, with the same summary (docs/cluster.md).

    \b
    Example:  teiten ingest /srv/darknet/2017-11/ --sensor tokyo-1 --sensor-net 203.0.113.0/24
    """
    settings = settings_from(
        ctx,
        data=data,
        sensor=sensor,
        sensor_networks=list(sensor_net),
        threads=threads,
        engine=engine,
        lock_wait=lock_wait,
    )
    if sys.stderr.isatty():
        console = Console(stderr=True)
        columns = (
            TextColumn("{task.description}", markup=False),  # file names are not markup
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
    if result.error:
        raise click.ClickException(result.error)
    bad = len(result.failed) + len(result.stopped)
    if bad:
        raise click.ClickException(f"{bad} input(s) failed or stopped early (see above)")


COMMANDS = [ingest_command]
