"""``teiten backcheck``: identify the devices behind sources by probing them (opt-in) or from scans.

``run`` contacts hosts, so it refuses to start without ``--enable`` and
contacts only IP literals inside the ``--allow`` networks (docs/backcheck.md).
``import`` reads masscan, ZGrab2 or Nmap output instead. Both print one row
per probe, write a summary line to stderr, and can write the probes table
(``--out FILE.parquet``). Errors are one line and exit status 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from teiten.app.backcheck import load_probes, store_probes
from teiten.backcheck.model import Probe, Summary, summarize, to_table
from teiten.backcheck.prober import DEFAULT_PORTS, OFF, TELNET_PORTS, ProbeConfig, run_backcheck
from teiten.backcheck.scans import read_scan
from teiten.cli.common import TeitenGroup, out_file, settings_from
from teiten.cli.output import emit, format_option
from teiten.errors import ConfigError, InputError
from teiten.escape import terminal

MAX_TARGET_FILE = 1 << 20
TABLE_COLUMNS = (
    "target",
    "port",
    "probe",
    "state",
    "path",
    "server_header",
    "device",
    "text",
    "advisories",
    "note",
)


@click.group("backcheck", cls=TeitenGroup)
def backcheck_group() -> None:
    """Identify the devices behind sources: probe them (opt-in, allowlisted) or import scans."""


def _ports(text: str, option: str) -> tuple[int, ...]:
    try:
        ports = tuple(int(p) for p in text.replace(" ", "").split(",") if p)
    except ValueError:
        raise ConfigError(f"{option} {text[:60]!r}: give port numbers such as 52869,80") from None
    return ports


def _targets(targets: tuple[str, ...], from_file: Path | None) -> list[str]:
    out = list(targets)
    if from_file is not None:
        try:
            if from_file.stat().st_size > MAX_TARGET_FILE:
                raise InputError(f"{from_file}: larger than {MAX_TARGET_FILE} bytes")
            text = from_file.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise InputError(f"cannot read {from_file}: {e.strerror}") from None
        for line in text.splitlines():
            out += line.split("#", 1)[0].replace(",", " ").split()
    if not out:
        raise ConfigError("no targets: give IP addresses as arguments or --from-file FILE")
    return out


def _row(p: Probe) -> dict[str, Any]:
    row = p.to_row()
    row["advisories"] = [
        f"{a}:{s}" for a, s in zip(p.advisory_ids, p.advisory_statuses, strict=True)
    ]
    return row


def _table_row(p: Probe) -> dict[str, Any]:
    """A short row for the table: device fields joined, the worst advisory, text escaped."""
    device = " ".join(x for x in (p.manufacturer, p.model, p.firmware) if x)
    ids = p.advisory_ids
    worst = f"{p.advisory_status} {ids[0]}" if ids else ""
    more = f" +{len(ids) - 1}" if len(ids) > 1 else ""
    shown = p.title or ("" if device or p.server_header else terminal(p.banner, 40))
    return {
        "target": p.target,
        "port": f"{p.port}/{p.proto}",
        "probe": p.probe,
        "state": p.state,
        "path": p.path,
        "server_header": p.server_header,
        "device": device,
        "text": shown,
        "advisories": worst + more,
        "note": terminal(p.note, 80),
    }


def _show(probes: tuple[Probe, ...], fmt: str, out: Path | None, summary: Summary) -> None:
    if fmt == "table":
        emit([_table_row(p) for p in probes], fmt, columns=TABLE_COLUMNS)
    else:
        emit([_row(p) for p in probes], fmt)
    if out is not None:
        import pyarrow.parquet as pq

        try:
            pq.write_table(to_table(probes), out)
        except OSError as e:
            raise InputError(f"cannot write {out}: {e}") from None
        click.echo(f"wrote {terminal(out)}: {len(probes)} probes", err=True)
    click.echo(terminal(summary.sentence, 1000), err=True)


def store_options(f: Any) -> Any:
    """``--data DIR``, ``--store``, ``--no-store``: whether to keep the rows in the data directory.

    Without either flag the rows are kept when ``--data`` is given or the data
    directory already exists.
    """
    f = click.option("--no-store", "no_store", is_flag=True, help="Do not keep the rows.")(f)
    f = click.option(
        "--store",
        "store",
        is_flag=True,
        help="Keep the rows in the data directory (probes view, report).",
    )(f)
    return click.option(
        "--data",
        type=click.Path(path_type=Path),
        default=None,
        metavar="DIR",
        help="Data directory (default: setting data).",
    )(f)


def _keep(store: bool, no_store: bool, data: Path | None, settings: Any) -> bool:
    if store and no_store:
        raise ConfigError("--store and --no-store contradict each other")
    return store or (not no_store and (data is not None or settings.data_dir.is_dir()))


out_option = click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    callback=out_file,
    help="Also write the probes table to this Parquet file.",
)
summary_port_option = click.option(
    "--summary-port",
    type=click.IntRange(1, 65535),
    default=52869,
    show_default=True,
    help="The port the summary line counts open sources for.",
)


@backcheck_group.command("run")
@click.argument("targets", nargs=-1)
@click.option(
    "--from-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Targets from a file: IP addresses, one or more a line, # comments.",
)
@click.option(
    "--allow",
    multiple=True,
    metavar="CIDR",
    help="A network you may probe (repeatable); targets outside are refused.",
)
@click.option(
    "--enable", is_flag=True, help="Really send probes. Without it, run refuses to start."
)
@click.option(
    "--ports",
    default=",".join(map(str, DEFAULT_PORTS)),
    show_default=True,
    help="TCP ports to connect to (comma-separated).",
)
@click.option(
    "--telnet-ports",
    default=",".join(map(str, TELNET_PORTS)),
    show_default=True,
    help="Which of --ports get a passive Telnet banner read instead of HTTP GETs.",
)
@click.option(
    "--ssdp-port",
    type=click.IntRange(0, 65535),
    default=1900,
    show_default=True,
    help="UDP port of the unicast SSDP M-SEARCH (0: none).",
)
@click.option(
    "--rate",
    type=float,
    default=10.0,
    show_default=True,
    help="New connections and datagrams per second, over all targets.",
)
@click.option(
    "--interval",
    type=float,
    default=1.0,
    show_default=True,
    help="Seconds between two probes to the same target.",
)
@click.option(
    "--timeout",
    type=float,
    default=3.0,
    show_default=True,
    help="Seconds to wait for a connection, and for each answer.",
)
@click.option(
    "--max-targets",
    type=int,
    default=256,
    show_default=True,
    help="Refuse the run if more distinct targets are allowed than this.",
)
@click.option(
    "--max-bytes",
    type=int,
    default=65536,
    show_default=True,
    help="Bytes read at most per answer (an endless body is cut).",
)
@click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path, dir_okay=False),
    callback=out_file,
    help="Append everything sent to this file as JSON lines.",
)
@out_option
@summary_port_option
@format_option
@store_options
@click.pass_context
def run_command(
    ctx: click.Context,
    targets: tuple[str, ...],
    from_file: Path | None,
    allow: tuple[str, ...],
    enable: bool,
    ports: str,
    telnet_ports: str,
    ssdp_port: int,
    rate: float,
    interval: float,
    timeout: float,
    max_targets: int,
    max_bytes: int,
    log_path: Path | None,
    out: Path | None,
    summary_port: int,
    fmt: str,
    data: Path | None,
    store: bool,
    no_store: bool,
) -> list[Probe]:
    """Probe TARGETS (IP addresses) to identify the devices behind them.

    \b
    Sends only a TCP connect, HTTP GETs of UPnP descriptions and /, a passive
    Telnet banner read and one SSDP M-SEARCH per target, paced and logged.
    Example:  teiten backcheck run 198.51.100.7 --allow 198.51.100.0/24 --enable \\
                  --log sent.jsonl --out probes.parquet
    """
    if not enable:  # before parsing anything: the answer is no whatever the options say
        raise ConfigError(OFF)
    config = ProbeConfig(
        enabled=enable,
        allow=allow,
        ports=_ports(ports, "--ports"),
        telnet_ports=_ports(telnet_ports, "--telnet-ports"),
        ssdp_port=ssdp_port or None,
        max_targets=max_targets,
        rate=rate,
        interval=interval,
        connect_timeout=timeout,
        read_timeout=timeout,
        max_bytes=max_bytes,
        log_path=log_path,
    )
    result = run_backcheck(_targets(targets, from_file), config)
    settings = settings_from(ctx, data=data)
    if _keep(store, no_store, data, settings):
        store_probes(settings, result.probes, "run")
    for r in result.refused:
        click.echo(f"refused {terminal(r.target, 100)}: {r.reason}", err=True)
    click.echo(
        f"sent {result.sent} probes ({result.sent_bytes} bytes) to {len(result.targets)} "
        f"targets in {result.elapsed:.1f} s" + (f"; log: {terminal(log_path)}" if log_path else ""),
        err=True,
    )
    _show(result.probes, fmt, out, summarize(result.probes, port=summary_port))
    return list(result.probes)


@backcheck_group.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--format-in",
    type=click.Choice(["masscan", "zgrab2", "nmap", "auto"]),
    default="auto",
    show_default=True,
    help="The scanner's format (masscan: -oJ or -oL; nmap: -oX).",
)
@out_option
@summary_port_option
@format_option
@store_options
@click.pass_context
def import_command(
    ctx: click.Context,
    file: Path,
    format_in: str,
    out: Path | None,
    summary_port: int,
    fmt: str,
    data: Path | None,
    store: bool,
    no_store: bool,
) -> list[Probe]:
    """Read a masscan, ZGrab2 or Nmap result FILE as probe rows (nothing is sent).

    \b
    Example:  teiten backcheck import masscan.json --out probes.parquet
    """
    scan = read_scan(file, format_in)
    settings = settings_from(ctx, data=data)
    if _keep(store, no_store, data, settings):
        store_probes(settings, scan.probes, f"import {file.name}")
    click.echo(
        f"read {scan.records} records ({scan.fmt}): {len(scan.probes)} rows, "
        f"{scan.skipped} skipped",
        err=True,
    )
    for why in scan.skips[:5]:
        click.echo(f"skipped {terminal(why, 200)}", err=True)
    _show(scan.probes, fmt, out, summarize(scan.probes, port=summary_port))
    return list(scan.probes)


@backcheck_group.command("show")
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    metavar="DIR",
    help="Data directory (default: setting data).",
)
@summary_port_option
@format_option
@click.pass_context
def show_command(ctx: click.Context, data: Path | None, summary_port: int, fmt: str) -> None:
    """Show the stored back-check rows and their summary.

    \b
    Example:  teiten backcheck show --format json
    """
    probes = tuple(load_probes(settings_from(ctx, data=data)))
    _show(probes, fmt, None, summarize(probes, port=summary_port))


COMMANDS = [backcheck_group]
