"""The ``teiten`` command group: common options, settings, and turning errors into one line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from teiten.config import Settings, load_settings
from teiten.errors import TeitenError

F = TypeVar("F", bound=Callable[..., Any])


class TeitenGroup(click.Group):
    """A group whose commands report TeitenError as one line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TeitenError as e:
            raise click.ClickException(str(e)) from None


def data_option(f: F) -> F:
    """``--data DIR`` and ``--tz ZONE``, shared by every command that reads the store."""
    f = click.option(
        "--tz",
        default=None,
        metavar="ZONE",
        help="Time zone days are cut in (default: setting tz, UTC).",
    )(f)
    return click.option(
        "--data",
        default=None,
        metavar="DIR",
        type=click.Path(path_type=Path),
        help="Data directory (default: setting data, ./teiten-data).",
    )(f)


def settings_from(ctx: click.Context, **options: Any) -> Settings:
    """The settings of this run: the group's file/env layers plus command options."""
    base: Settings = ctx.obj
    return base.replace(**{k: (str(v) if isinstance(v, Path) else v) for k, v in options.items()})


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
        detect,
        enrich,
        ingest,
        payloads,
        query,
        settings,
        signatures,
        simulate,
    )

    for module in (
        ingest,
        enrich,
        query,
        analysis,
        detect,
        payloads,
        signatures,
        advisory,
        simulate,
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
        sys.exit(130)
    except Exception as e:  # a bug: one line, details on request
        if os.environ.get("TEITEN_DEBUG"):
            raise
        click.echo(
            f"teiten: internal error: {type(e).__name__}: {e} "
            "(set TEITEN_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(70)
