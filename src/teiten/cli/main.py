"""The ``teiten`` command group: common options, settings, and turning errors into one line.

Exit statuses are one rule for every command: see :mod:`teiten.cli.common`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from teiten.cli.common import EXIT_INTERNAL, EXIT_INTERRUPTED, TeitenGroup
from teiten.config import load_settings
from teiten.errors import TeitenError
from teiten.escape import terminal


@click.group(cls=TeitenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Settings file (default: $TEITEN_CONFIG or ./teiten.toml).",
)
@click.version_option(package_name="teiten")
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """teiten: turn darknet and honeypot captures into early warning.

    \b
    Start with:  teiten demo
    Then:        teiten ingest captures/ --sensor-net 203.0.113.0/24
                 teiten trend 23/tcp 2323/tcp --split domestic --chart telnet.png
    """
    try:
        ctx.obj = load_settings(config_file=config)
    except TeitenError as e:
        raise click.ClickException(str(e)) from None


def _register() -> None:
    from teiten.cli import (
        advisory,
        analysis,
        backcheck,
        detect,
        enrich,
        ingest,
        notify,
        payloads,
        query,
        report,
        rollup,
        sensor,
        serve,
        settings,
        signatures,
        simulate,
    )

    for module in (
        ingest,
        enrich,
        rollup,
        query,
        analysis,
        detect,
        payloads,
        notify,
        signatures,
        advisory,
        backcheck,
        report,
        simulate,
        sensor,
        serve,
        settings,
    ):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    """Console entry point: never a traceback for the operator."""
    try:
        cli.main(prog_name="teiten", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("teiten: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as e:  # a bug: one line, details on request
        if os.environ.get("TEITEN_DEBUG"):
            raise
        click.echo(
            f"teiten: internal error: {type(e).__name__}: {terminal(e, 500)} "
            "(set TEITEN_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)
