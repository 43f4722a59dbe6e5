"""``teiten settings``: every setting, its value and where the value came from.

Secret settings (credentials) show only ``******** (set)`` or ``(empty)``, in every format.
"""

from __future__ import annotations

import click

from teiten.cli.output import emit, format_option
from teiten.config import SETTINGS, Settings


@click.command("settings")
@format_option
@click.pass_obj
def settings_command(settings: Settings, fmt: str) -> None:
    """Show every setting with its value and origin (secret values masked).

    \b
    Example:  TEITEN_HOME_COUNTRY=DE teiten settings
    """
    rows = [
        {
            "name": s.name,
            "value": s.shown(settings.values[s.name]),
            "origin": settings.origin[s.name],
            "meaning": s.doc,
        }
        for s in SETTINGS
    ]
    emit(rows, fmt)


COMMANDS = [settings_command]
