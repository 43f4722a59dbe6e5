"""``teiten advisory``: check a model's firmware against advisories, list them, import CSAF.

Exit status of ``check`` follows the one rule of every command (docs/cli.md):
0 fixed or not affected, 3 affected, 4 unknown model or cannot compare; an
error (a broken advisory file or directory, a usage error) exits 1 — never a
code that a script could read as an answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from teiten.advisories.check import Verdict, check
from teiten.advisories.csaf import import_csaf
from teiten.advisories.model import LANGS, load_advisories
from teiten.cli.common import (
    EXIT_AFFECTED,
    EXIT_OK,
    EXIT_UNSURE,
    TeitenGroup,
    out_folder,
)
from teiten.cli.output import emit, format_option
from teiten.escape import terminal

EXIT_CODES = {
    "fixed": EXIT_OK,
    "not_affected": EXIT_OK,
    "affected": EXIT_AFFECTED,
    "possibly_affected": EXIT_AFFECTED,
    "cannot_compare": EXIT_UNSURE,
    "unknown_model": EXIT_UNSURE,
}


advisories_option = click.option(
    "--advisories",
    "dirs",
    multiple=True,
    metavar="DIR",
    type=click.Path(path_type=Path),
    help="A directory of advisory files to use besides the bundled ones (repeatable).",
)
lang_option = click.option(
    "--lang",
    type=click.Choice(LANGS),
    default="en",
    show_default=True,
    help="Language of titles, messages and actions.",
)


@click.group("advisory", cls=TeitenGroup)
def advisory_group() -> None:
    """Firmware advisories: is a router model at some firmware version affected?"""


def _rows(v: Verdict) -> list[dict[str, Any]]:
    pairs: list[tuple[str, Any]] = [
        ("status", v.status),
        ("message", v.message),
        ("model", v.product or v.model),
        ("version", v.version),
        ("advisory", v.advisory_id),
        ("title", v.title),
        ("cves", v.cves),
        ("jvn_ids", v.jvn_ids),
        ("fixed_version", v.fixed_version),
        ("fixed_date", v.fixed_date),
        ("notes", v.notes),
    ]
    pairs += [("action", a) for a in v.actions]
    pairs += [("reference", r) for r in v.references]
    pairs += [("did you mean", s) for s in v.suggestions]
    return [{"field": k, "value": x} for k, x in pairs if x not in (None, "", ())]


@advisory_group.command("check")
@click.argument("model")
@click.argument("version")
@advisories_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@lang_option
@click.pass_context
def check_command(
    ctx: click.Context, model: str, version: str, dirs: tuple[Path, ...], fmt: str, lang: str
) -> None:
    """Say whether MODEL at firmware VERSION is affected or fixed.

    \b
    Exit status: 0 fixed / not affected, 3 affected,
                 4 unknown model or cannot compare, 1 an error.
    Example:  teiten advisory check LAN-W300N/R Ver2.27 --lang ja
    """
    verdict = check(model, version, lang=lang, extra_dirs=dirs)
    if fmt == "json":
        emit([verdict.to_dict()], "json")
    else:
        for i, v in enumerate((verdict, *verdict.also)):
            if i:
                click.echo("\nAlso:")
            emit(_rows(v), "table", columns=["field", "value"])
    ctx.exit(EXIT_CODES[verdict.status])


@advisory_group.command("list")
@advisories_option
@format_option
@lang_option
@click.option("--products", is_flag=True, help="One row per listed model instead of per advisory.")
def list_command(dirs: tuple[Path, ...], fmt: str, lang: str, products: bool) -> None:
    """List the advisories in use (bundled, plus --advisories DIR)."""
    rows: list[dict[str, Any]] = []
    for a in load_advisories(dirs):
        if products:
            rows += [
                {
                    "advisory": a.id,
                    "model": p.model + (" (family)" if p.family else ""),
                    "fixed_version": str(p.fixed) if p.fixed else None,
                    "fixed_date": p.fixed_date,
                    "affected": [str(r) for r in p.affected],
                }
                for p in a.products
            ]
        else:
            rows.append(
                {
                    "id": a.id,
                    "vendor": a.vendor,
                    "cves": list(a.cves),
                    "jvn_ids": list(a.jvn_ids),
                    "products": len(a.products),
                    "banners": len(a.banners),
                    "title": a.title.get(lang),
                }
            )
    emit(rows, fmt)


@advisory_group.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    callback=out_folder,
    default=Path("teiten-advisories"),
    show_default=True,
    help="Directory to write the advisory file into (use it with --advisories).",
)
@click.option("--replace", is_flag=True, help="Overwrite an advisory file of the same id.")
def import_command(file: Path, out: Path, replace: bool) -> None:
    """Import a CSAF 2.0 advisory (JSON) as an advisory file.

    \b
    Example:  teiten advisory import jvndb-2014-008039.json --out my-advisories
              teiten advisory check LAN-W300N/R 2.27 --advisories my-advisories
    """
    result = import_csaf(file, into=out, replace=replace)
    for w in result.warnings:
        click.echo(f"warning: {terminal(w, 300)}", err=True)
    a = result.advisory
    click.echo(
        f"wrote {terminal(result.path)}: {len(a.products)} models, "
        f"{terminal(', '.join(a.cves + a.jvn_ids) or 'no CVE or JVN id')}"
    )


COMMANDS = [advisory_group]
