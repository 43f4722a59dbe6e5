"""A read-only data folder: readers work and write nothing, writers say it is read-only.

Tests run as root in CI, where file modes do not stop root; so the commands
run in a child process that has dropped every capability (its bounding set
emptied before exec: root then obeys file modes like anyone). The store is a
copy whose files and folders have no write permission, so any write a reader
attempts (SQLite tables, WAL or journal files, a lock file) fails.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from teiten.app.ingest import ingest
from teiten.config import Settings
from teiten.store.lake import Lake

DATA = Path(__file__).resolve().parents[1] / "data"
PR_CAPBSET_DROP = 24

CHILD = r"""
import json, sys
from click.testing import CliRunner
from teiten.cli.main import cli
out = []
for args in json.loads(sys.argv[1]):
    r = CliRunner().invoke(cli, args, env={"TEITEN_CONFIG": ""})
    out.append([r.exit_code, r.output])
print(json.dumps(out))
"""


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def _freeze(root: Path) -> None:
    for p in [root, *root.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.fixture
def frozen(settings: Settings, tmp_path: Path) -> Iterator[Path]:
    """A store holding one capture, in a folder no one may write."""
    ingest([DATA / "eth_ipv4.pcap"], settings)
    store = tmp_path / "frozen"
    shutil.copytree(settings.data_dir, store)
    _freeze(store)
    yield store
    for p in [store, *store.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


def _powerless() -> None:
    """In the child before exec: drop every capability (root then obeys file modes)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)


def _run(commands: list[list[str]], frozen: Path) -> list[tuple[int, str]]:
    probe = subprocess.run(
        [sys.executable, "-c", f"open({str(frozen / 'probe')!r}, 'w')"],
        preexec_fn=_powerless,
        capture_output=True,
        check=False,
    )
    if probe.returncode == 0:
        (frozen / "probe").unlink()
        pytest.skip("this machine lets the test process write a folder without write permission")
    p = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(commands)],
        capture_output=True,
        text=True,
        preexec_fn=_powerless,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    return [(code, text) for code, text in json.loads(p.stdout)]


@pytest.mark.skipif(sys.platform != "linux", reason="uses POSIX modes and prctl")
def test_readers_work_on_a_read_only_store_and_write_nothing(frozen: Path, tmp_path: Path) -> None:
    before = _tree(frozen)
    data = ["--data", str(frozen)]
    readers = [
        ["ports", *data],
        ["query", "SELECT count(*) AS n FROM packets", *data, "--format", "json"],
        ["trend", "23/tcp", *data],
        ["payloads", *data],
        ["indicators", *data],
        ["alerts", *data],
    ]
    writers = [
        ["ingest", str(DATA / "null.pcap"), *data],
        ["detect", *data],
        ["enrich", *data],
    ]
    results = _run(readers + writers, frozen)
    for args, (code, text) in zip(readers, results, strict=False):
        assert code == 0, (args, text)
        assert "damaged" not in text and "read-only" not in text
    assert json.loads(results[1][1]) == [{"n": 13}]
    for args, (code, text) in zip(writers, results[len(readers) :], strict=True):
        assert code == 1, (args, text)
        assert text.splitlines()[-1] == f"Error: data folder {frozen} is read-only", args
    assert _tree(frozen) == before


def test_a_reader_cannot_write_the_catalog(settings: Settings) -> None:
    ingest([DATA / "eth_ipv4.pcap"], settings)
    with Lake(settings.data_dir) as lake:
        assert not lake.catalog.writable
        with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
            lake.catalog.begin("x.pcap", 1, "h", "s")
        assert not (Path(settings.data_dir) / ".lock").exists() or lake.holder() == ""
        lake.lock()  # becoming a writer reopens it for writing
        assert lake.catalog.writable
        lake.catalog.begin("x.pcap", 1, "h", "s")


def test_a_reader_of_a_folder_without_a_catalog_sees_an_empty_store(tmp_path: Path) -> None:
    with Lake(tmp_path) as lake:
        assert lake.files() == [] and lake.catalog.inputs() == []
    assert list(tmp_path.iterdir()) == []
