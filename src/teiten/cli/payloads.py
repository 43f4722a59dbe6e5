"""``teiten payloads`` and ``teiten indicators``: what attackers sent, and what it pointed to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from teiten.analysis.payloads import Page
from teiten.app.payloads import indicator_page, payload_page, show_payload
from teiten.classify.indicators import defang
from teiten.cli.common import data_option, engine_option, out_file, settings_from, tz_option
from teiten.cli.output import FORMATS, emit, format_option
from teiten.escape import terminal


def _defanged(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Human-facing rows: indicator values defanged (machine formats keep them exact)."""
    out = []
    for r in rows:
        v = r[key]
        out.append({**r, key: [defang(x) for x in v] if isinstance(v, list) else defang(str(v))})
    return out


def _notice(page: Page, noun: str) -> None:
    """Say on stderr when nothing matched or the listing stopped at ``--limit``."""
    if not page.rows:
        click.echo(f"no {noun} match", err=True)
    elif page.total > len(page.rows):
        click.echo(f"showing {len(page.rows):,} of {page.total:,} {noun}; use --limit", err=True)


def _show(row: dict[str, Any]) -> None:
    for k in (
        "id",
        "ts_first",
        "src",
        "src_port",
        "dst_port",
        "proto",
        "app",
        "kind",
        "signatures",
        "cves",
        "jvn",
        "method",
        "path",
        "soap_action",
    ):
        click.echo(f"{k}: {terminal(row.get(k))}")
    shown = ", ".join(terminal(defang(str(v)), 300) for v in row.get("indicators") or [])
    click.echo(f"indicators: {shown}")
    for side in ("client_bytes", "server_bytes"):
        data = row.get(side) or b""
        click.echo(f"--- {side} ({len(data)} bytes; control bytes escaped) ---")
        for line in bytes(data).split(b"\n"):
            click.echo(terminal(line, limit=4096))


@click.command("payloads")
@data_option
@engine_option
@tz_option
@click.option("--signature", metavar="ID", help="Only sessions that matched this signature.")
@click.option("--cve", metavar="CVE", help="Only sessions classified to this CVE-YYYY-NNNN.")
@click.option("--from", "first", metavar="DATE", help="First day, YYYY-MM-DD (local).")
@click.option("--to", "last", metavar="DATE", help="Last day, YYYY-MM-DD (local).")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@click.option("--show", "show_id", metavar="ID", help="Print one session's bytes, escaped.")
@format_option
@click.pass_context
def payloads_command(
    ctx: click.Context,
    data: Path | None,
    engine: str | None,
    tz: str | None,
    signature: str | None,
    cve: str | None,
    first: str | None,
    last: str | None,
    limit: int,
    show_id: str | None,
    fmt: str,
) -> None:
    """Sessions with their classification: signatures, CVEs, indicators.

    \b
    Example:  teiten payloads --cve CVE-2014-8361 --from 2017-11-01
              teiten payloads --show s1-42
    """
    settings = settings_from(ctx, data=data, engine=engine, tz=tz)
    if show_id:
        row = show_payload(settings, show_id)
        if fmt == "table":
            _show(row)
        else:
            emit([row], fmt)
        return
    page = payload_page(settings, signature=signature, cve=cve, first=first, last=last, limit=limit)
    emit(_defanged(page.rows, "indicators") if fmt == "table" else page.rows, fmt)
    _notice(page, "sessions")


@click.command("indicators")
@data_option
@engine_option
@tz_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice([*FORMATS, "stix"]),
    default="table",
    show_default=True,
    help="table (defanged), csv/json (exact), stix (STIX 2.1).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    callback=out_file,
    default=None,
    help="Write to FILE instead of standard output.",
)
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True)
@click.pass_context
def indicators_command(
    ctx: click.Context,
    data: Path | None,
    engine: str | None,
    tz: str | None,
    fmt: str,
    out: Path | None,
    limit: int,
) -> None:
    """Indicators extracted from payloads: URLs, hosts, IPs, dropper names (never fetched).

    Sensor addresses are left out.

    \b
    Example:  teiten indicators --format stix --out iocs.json
    """
    settings = settings_from(ctx, data=data, engine=engine, tz=tz)
    if fmt == "stix":
        from teiten.app.payloads import stix_export

        text = stix_export(settings, limit=limit)
    else:
        page = indicator_page(settings, limit=limit)
        from teiten.cli.output import render

        text = render(_defanged(page.rows, "value") if fmt == "table" else page.rows, fmt)
        _notice(page, "indicators")
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        click.echo(f"written to {out}", err=True)


COMMANDS = [payloads_command, indicators_command]
