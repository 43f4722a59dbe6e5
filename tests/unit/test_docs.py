"""The docs that are generated from code are up to date, and the public API is declared."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
