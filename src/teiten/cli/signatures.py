"""``teiten signatures``: list the payload signatures, or test them on a raw request file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from teiten.classify.classifier import Report, Verdict, explain_file
from teiten.classify.indicators import defang_text
from teiten.classify.signatures import Signature, load_signatures
from teiten.cli.common import TeitenGroup
from teiten.cli.output import emit, format_option
from teiten.escape import terminal

LIST_COLUMNS = ("id", "kind", "protocol", "severity", "cves", "jvn", "ports", "title")

rules_option = click.option(
    "--rules",
    "rules",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Extra signature file or folder of *.toml (repeatable), loaded after the shipped ones.",
)


@click.group("signatures", cls=TeitenGroup)
def signatures_group() -> None:
    """Payload signatures: list them, or test them on a raw request file."""


def _row(s: Signature) -> dict[str, Any]:
    return {"id": s.id, "kind": s.kind, "protocol": s.protocol, "severity": s.severity,
            "cves": list(s.cves), "jvn": list(s.jvn), "ports": list(s.ports),
            "title": s.title, "source": s.source, "file": s.file}  # fmt: skip


@signatures_group.command("list")
@format_option
@rules_option
def list_command(fmt: str, rules: tuple[Path, ...]) -> None:
    """List every signature: id, kind, protocol, severity, CVE and JVN ids, port hints.

    \b
    Example:
      teiten signatures list --format csv
    """
    rows = [_row(s) for s in load_signatures(rules).signatures]
    emit(rows, fmt, columns=None if fmt == "json" else LIST_COLUMNS)


@signatures_group.command("test")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--port",
    "dst_port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Destination port the bytes were sent to (23, 2323… mark a Telnet stream).",
)
@click.option("--verbose", "-v", is_flag=True, help="Also explain the near misses.")
@rules_option
def test_command(file: Path, dst_port: int | None, verbose: bool, rules: tuple[Path, ...]) -> None:
    """Run the signatures over a raw client stream and explain each match.

    FILE holds the bytes a client sent (an HTTP request, pipelined requests, or
    a Telnet stream); at most 64 KiB is read. Attacker text is printed escaped,
    URLs defanged; nothing in the file is resolved or run.

    \b
    Example:
      teiten signatures test tests/data/requests/realtek-seed.http --verbose
    """
    for line in _report_lines(explain_file(file, dst_port=dst_port, rules=rules), verbose):
        click.echo(line)


def _report_lines(report: Report, verbose: bool) -> list[str]:
    c = report.classification
    matched = [v for v in report.verdicts if v.matched]
    near = [v for v in report.verdicts if v.near_miss]
    out = [f"app: {c.app}   kind: {c.kind or '-'}   requests: {len(c.requests)}   "
           f"matched: {len(matched)} of {len(report.verdicts)} {c.app} signatures"]  # fmt: skip
    for v in matched:
        out += _verdict_lines("MATCH", v)
    if verbose:
        for v in near:
            out += _verdict_lines("near miss", v)
    if c.indicators:
        out.append("indicators (defanged):")
        out += [f"  {i.type:<9} {terminal(i.defanged, 300)}" for i in c.indicators]
    for x in c.logins:
        state = {True: "succeeded", False: "failed", None: "outcome unknown"}[x.success]
        out.append(f"login: {terminal(x.username, 80)!s} / {terminal(x.password, 80)!s} "
                   f"{state}; in Mirai's table: {'yes' if x.mirai_dict else 'no'}; "
                   f"commands: {len(x.commands)}")  # fmt: skip
    for note in (*report.notes, *c.notes, *(n for r in c.requests for n in r.http.notes)):
        out.append(f"note: {terminal(note, 300)}")
    if not verbose and near:
        out.append(f"({len(near)} near misses; --verbose explains them)")
    return out


def _verdict_lines(label: str, v: Verdict) -> list[str]:
    s = v.signature
    ids = " ".join((*s.cves, *s.jvn))
    out = [f"{label} {s.id} [{s.kind}, {s.severity}] {ids}".rstrip(), f"    {terminal(s.title)}"]
    for check in v.checks:
        mark = "ok" if check.ok else "no"
        evidence = check.evidence
        seen = f": {terminal(defang_text(evidence), 200)}" if evidence is not None else ""
        out.append(f"  {mark}  {check.group}: {terminal(check.condition, 200)}{seen}")
    return out


COMMANDS = [signatures_group]
