"""The ``teiten`` command group: common options, settings, and turning errors into one line.

Exit statuses are one rule for every command: see :mod:`teiten.cli.common`.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from teiten.cli.common import EXIT_INTERNAL, EXIT_INTERRUPTED, TeitenGroup
from teiten.config import load_settings
from teiten.errors import TeitenError
from teiten.escape import terminal
from teiten.heap import keep_freed_memory

COMMAND_MODULES: dict[str, str] = {
    "ingest": "ingest",
    "enrich": "enrich",
    "rollup": "rollup",
    "pack": "rollup",
    "query": "query",
    "ports": "analysis",
    "trend": "analysis",
    "detect": "detect",
    "alerts": "detect",
    "payloads": "payloads",
    "indicators": "payloads",
    "notify": "notify",
    "signatures": "signatures",
    "advisory": "advisory",
    "backcheck": "backcheck",
    "report": "report",
    "simulate": "simulate",
    "demo": "simulate",
    "sensor": "sensor",
    "serve": "serve",
    "settings": "settings",
}
"""Each command and the ``teiten.cli`` module whose ``COMMANDS`` hold it. A module is
imported only when one of its commands runs (or help lists them): ``teiten trend``
does not load the sensor, the server or ingest (a test keeps this map complete)."""


class LazyGroup(TeitenGroup):
    """The top-level group: commands load on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is None:
            return None
        commands: list[click.Command] = importlib.import_module(f"teiten.cli.{module}").COMMANDS
        return next(c for c in commands if c.name == cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


BATCH_COMMANDS = frozenset({"ingest", "demo", "enrich", "rollup", "pack"})
"""Commands that run to an end: their process keeps freed memory for reuse
(:func:`teiten.heap.keep_freed_memory`)."""


def command_of(args: list[str]) -> str | None:
    """The command named in ``args`` (the group's options skipped), None without one."""
    values = iter(args)
    for arg in values:
        if arg == "--config":
            next(values, None)
        elif not arg.startswith("-"):
            return arg
    return None


def main() -> None:
    """Console entry point: never a traceback for the operator."""
    if command_of(sys.argv[1:]) in BATCH_COMMANDS:
        keep_freed_memory()
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
