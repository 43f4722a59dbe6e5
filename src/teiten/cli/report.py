"""``teiten report``: write the observation report (HTML, PDF or Markdown, Japanese or English)."""

from __future__ import annotations

from pathlib import Path

import click

from teiten.app.report import write_report
from teiten.cli.common import data_option, engine_option, out_folder, settings_from, tz_option
from teiten.report.render import FORMATS, LANGS


@click.command("report")
@data_option
@engine_option
@tz_option
@click.option("--from", "first", metavar="DATE", help="First day, YYYY-MM-DD (local).")
@click.option("--to", "last", metavar="DATE", help="Last day (the report date), YYYY-MM-DD.")
@click.option("--lang", type=click.Choice(LANGS), default="ja", show_default=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="html", show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    callback=out_folder,
    default=Path("report"),
    show_default=True,
    help="Folder the report files are written to.",
)
@click.option(
    "--internal",
    is_flag=True,
    help="Keep sensor addresses (never publish such a report). Default: redacted.",
)
@click.pass_context
def report_command(
    ctx: click.Context,
    data: Path | None,
    engine: str | None,
    tz: str | None,
    first: str | None,
    last: str | None,
    lang: str,
    fmt: str,
    out: Path,
    internal: bool,
) -> None:
    """Report the rises of the window: headline sections, then other observations.

    A pure read: it uses the alerts teiten detect stored for the window (or
    detects in memory, storing and sending nothing). Days are cut in --tz or
    the tz setting, the same for ja and en. Sensor addresses and attacker
    download hosts are shown as [redacted].

    \b
    Example:  teiten report --from 2017-10-01 --to 2017-12-18 --lang ja --format pdf
    """
    settings = settings_from(ctx, data=data, engine=engine, tz=tz)
    for path in write_report(
        settings, out, lang=lang, fmts=(fmt,), first=first, last=last, internal=internal
    ):
        click.echo(str(path))


COMMANDS = [report_command]
