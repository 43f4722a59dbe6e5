"""The fuzz harness's corpus, written once per run by make_corpus.py into a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from make_corpus import write_corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    return write_corpus(tmp_path_factory.mktemp("fuzz-corpus"))


@pytest.fixture(scope="session")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder the property tests write their inputs into (one file per test, rewritten)."""
    return tmp_path_factory.mktemp("fuzz-scratch")
