"""The top-level group loads commands lazily from a map that must name every command."""

from __future__ import annotations

import importlib
import pkgutil

import teiten.cli
from teiten.cli.main import COMMAND_MODULES, cli


def test_every_command_module_is_mapped_and_every_mapped_command_exists() -> None:
    found: dict[str, str] = {}
    for info in pkgutil.iter_modules(teiten.cli.__path__):
        module = importlib.import_module(f"teiten.cli.{info.name}")
        for command in getattr(module, "COMMANDS", []):
            found[command.name] = info.name
    assert found == COMMAND_MODULES


def test_lazy_lookup_gives_the_module_command_and_none_for_unknown() -> None:
    import click

    ctx = click.Context(cli, info_name="teiten")
    trend = cli.get_command(ctx, "trend")
    assert trend is not None and trend.name == "trend"
    assert cli.get_command(ctx, "no-such-command") is None
    assert cli.list_commands(ctx) == sorted(COMMAND_MODULES)
