"""What every command shares: the error boundary, ``--data``/``--tz``, and the run's settings."""

from __future__ import annotations

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
    base: Settings = ctx.find_root().obj or load_settings()
    return base.replace(**{k: (str(v) if isinstance(v, Path) else v) for k, v in options.items()})
