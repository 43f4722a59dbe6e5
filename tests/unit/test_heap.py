"""teiten.heap and the commands that use it."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

from teiten.cli.main import BATCH_COMMANDS, COMMAND_MODULES, command_of


def test_command_of_skips_the_group_options() -> None:
    assert command_of(["--config", "x.toml", "ingest", "a.pcap"]) == "ingest"
    assert command_of(["--config=x.toml", "rollup"]) == "rollup"
    assert command_of(["--version"]) is None
    assert command_of([]) is None
    assert set(COMMAND_MODULES) >= BATCH_COMMANDS


_CHILD = """
import ctypes, sys
import numpy as np, pyarrow as pa
from teiten.heap import keep_freed_memory

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) << 10

if sys.argv[1] == "keep":
    assert keep_freed_memory() == hasattr(ctypes.CDLL(None), "gnu_get_libc_version")
before = rss()
block = np.ones(64 << 20, np.uint8)  # 64 MiB, touched
del block
print(pa.default_memory_pool().backend_name, (rss() - before) >> 20)
"""


def _kept_mib(mode: str) -> tuple[str, int]:
    # a child process: the setting is for a whole process, not for the test runner
    run = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True,
                         check=True)  # fmt: skip
    backend, kept = run.stdout.split()
    return backend, int(kept)


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "gnu_get_libc_version"), reason="glibc only")
def test_a_batch_process_keeps_a_freed_block_that_it_would_otherwise_return() -> None:
    assert _kept_mib("default")[1] < 16  # glibc maps a 64 MiB block and unmaps it when freed
    backend, kept = _kept_mib("keep")
    assert backend == "system"  # Arrow allocates from the same heap
    assert kept >= 60  # freed, but still the process's for the next batch
