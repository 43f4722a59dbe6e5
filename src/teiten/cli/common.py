"""What every command shares: exit statuses, the error boundary, ``--data``, ``--tz``,
output paths, and the run's settings.

Exit status, the same for every command (docs/cli.md, "Exit status"):

====  ==========================================================================
0     done (``advisory check``: fixed or not affected)
1     the operator's mistake or bad input: teiten's own checks *and* click's usage
      errors (unknown option, bad value, missing argument) — one line on stderr
3, 4  an answer, not an error: ``advisory check`` says affected (3) or cannot
      tell (4)
70    internal error (a bug): one line, ``TEITEN_DEBUG=1`` for the traceback
130   interrupted (Ctrl-C)
====  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from teiten.config import Settings, load_settings
from teiten.errors import TeitenError
from teiten.escape import terminal

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_MISTAKE = 1
EXIT_AFFECTED = 3
EXIT_UNSURE = 4
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class Interrupted(click.ClickException):
    """Ctrl-C during a command: one line, exit status 130."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self) -> None:
        super().__init__("interrupted")


class TeitenGroup(click.Group):
    """A group whose commands and subgroups follow the one exit-status rule.

    A TeitenError becomes one line and exit 1; click's usage errors (raised while
    parsing this group's options, resolving a command, or parsing the command's
    options) exit 1 as well instead of click's 2; Ctrl-C exits 130.
    """

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:
            e.exit_code = EXIT_MISTAKE  # type: ignore[misc]  # click's default is 2
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            e.exit_code = EXIT_MISTAKE  # type: ignore[misc]  # click's default is 2
            raise
        except TeitenError as e:
            raise click.ClickException(terminal(e, 2000)) from None
        except KeyboardInterrupt:
            raise Interrupted() from None


def data_option(f: F) -> F:
    """``--data DIR``: every command that reads or writes the store."""
    return click.option(
        "--data",
        default=None,
        metavar="DIR",
        type=click.Path(path_type=Path),
        help="Data directory (default: setting data, ./teiten-data).",
    )(f)


def engine_option(f: F) -> F:
    """``--engine NAME``: the commands that query the store (analysis, listings, report)."""
    from teiten.engine import ENGINES

    return click.option(
        "--engine",
        default=None,
        type=click.Choice(list(ENGINES)),
        help="SQL engine (default: setting engine, duckdb).",
    )(f)


def tz_option(f: F) -> F:
    """``--tz ZONE``: only commands that cut days or print times in a zone."""
    return click.option(
        "--tz",
        default=None,
        metavar="ZONE",
        help="Time zone of local dates and printed times (default: setting tz, UTC).",
    )(f)


def _output(value: Path | None, *, folder: bool) -> Path | None:
    if value is None:
        return None
    parent = value.absolute().parent
    name = click.format_filename(value)
    if not parent.is_dir():
        raise click.BadParameter(
            f"{name}: the folder {click.format_filename(parent)} does not exist (create it first)"
        )
    if folder and value.exists() and not value.is_dir():
        raise click.BadParameter(f"{name} is a file, not a folder")
    if not folder and value.is_dir():
        raise click.BadParameter(f"{name} is a folder, not a file")
    return value


def out_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Option callback for an output FILE: its folder must exist (never created silently)."""
    return _output(value, folder=False)


def out_folder(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Option callback for an output folder: its parent must exist; only the leaf is created."""
    return _output(value, folder=True)


def settings_from(ctx: click.Context, **options: Any) -> Settings:
    """The settings of this run: the group's file/env layers plus command options."""
    base: Settings = ctx.find_root().obj or load_settings()
    return base.replace(**{k: (str(v) if isinstance(v, Path) else v) for k, v in options.items()})
