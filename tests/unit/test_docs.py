"""The docs that are generated from code are up to date, and the public API is declared."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import click

import teiten

ROOT = Path(__file__).resolve().parents[2]


def test_generated_docs_are_current() -> None:
    p = subprocess.run(
        [sys.executable, str(ROOT / "scripts/gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 0, p.stdout + p.stderr


def test_public_api_sorted_and_importable() -> None:
    assert teiten.__all__ == sorted(teiten.__all__)
    for name in teiten.__all__:
        assert getattr(teiten, name) is not None


def test_readme_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    blocks = text.split("```")
    assert "teiten demo" in blocks[1] and "scripts/test" in blocks[3]
    assert "scripts/test" in (ROOT / ".ci/run").read_text()


def _options(command: click.Command) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts)}


def _command(words: list[str]) -> tuple[click.Command | None, list[str]]:
    """The command that ``teiten WORDS…`` names (a subcommand too), and the words after it."""
    from teiten.cli.main import cli

    command = cli.get_command(click.Context(cli), words[0]) if words else None
    if isinstance(command, click.Group) and len(words) > 1:
        sub = command.get_command(click.Context(command), words[1])
        if sub is not None:
            return sub, words[2:]
    return command, words[1:]


def _doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


_SPAN = re.compile(r"`([^`\n]+)`")


def test_every_option_named_in_the_docs_exists() -> None:
    """``teiten CMD … --opt`` in examples, and `--opt` under a `teiten CMD` heading."""
    from teiten.cli.main import cli

    common = _options(cli) | {"--help", "-h", "--version"}
    wrong = []
    for path in _doc_files():
        block, heading = False, []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("```"):
                block = not block
                continue
            if line.startswith("#") and not block:
                named = (_command(h.split())[0] for h in re.findall(r"`teiten ([^`]+)`", line))
                heading = [c for c in named if c is not None]
                continue
            spans = [line] if block else _SPAN.findall(line)
            for span in spans:
                for m in re.finditer(r"\bteiten\s+(.*)", span):
                    words = re.split(r"\s(?:\||&&|#|;)\s", m.group(1))[0].split()
                    command, rest = _command(words)
                    for w in rest if command else []:
                        option = w.split("=")[0].rstrip(",.):;")
                        if option.startswith("--") and option not in _options(command) | common:
                            wrong.append(f"{path.name}:{n}: teiten {command.name} {option}")
                if not block and heading and span.startswith("--"):
                    option = span.split()[0].split("=")[0]
                    if not any(option in _options(c) for c in heading) and option not in common:
                        names = "/".join(str(c.name) for c in heading)
                        wrong.append(f"{path.name}:{n}: under teiten {names}: {option}")
    assert wrong == []


def test_query_views_are_all_documented(tmp_path: Path) -> None:
    from teiten.app.engine import open_engine
    from teiten.config import load_settings
    from teiten.store.lake import Lake

    Lake(tmp_path, create=True).close()
    with open_engine(load_settings(env={}, overrides={"data": str(tmp_path)})) as engine:
        names = engine.query("SELECT view_name FROM duckdb_views() WHERE NOT internal")
    internal = ("_stored", "_empty")  # what the views are built on
    views = [v for v in names.column("view_name").to_pylist() if not v.endswith(internal)]
    text = (ROOT / "docs/cli.md").read_text(encoding="utf-8")
    section = text.split("### `teiten query` views", 1)[1].split("\n#", 1)[0]
    assert views and all(f"`{v}`" in section for v in views), (views, section)


def test_package_data_patterns_match_files() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for package, patterns in config["tool"]["setuptools"]["package-data"].items():
        base = ROOT / "src" / package
        for pattern in patterns:
            assert list(base.glob(pattern)), f"package-data {pattern!r} matches no file"
