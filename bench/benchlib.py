"""Shared pieces of the benchmarks: timed child processes, machine description, RESULTS.md sections.

Each measured tool runs as a child process under ``/usr/bin/time -v``, which
reports its CPU time and peak resident set size; wall time is taken around
the child with ``time.perf_counter``. Without ``/usr/bin/time`` the CPU time
comes from ``getrusage(RUSAGE_CHILDREN)`` deltas and the peak RSS is the
largest of any child so far (an upper bound).
"""

from __future__ import annotations

import mmap
import os
import platform
import re
import resource
import shlex
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
GNU_TIME = shutil.which("time", path="/usr/bin:/bin")


@dataclass
class Run:
    """One timed child process."""

    command: str
    """What was run, as a shell would show it."""
    wall: float
    user: float
    sys: float
    max_rss_kb: int
    stdout: str = ""
    returncode: int = 0

    @property
    def cpu(self) -> float:
        return self.user + self.sys


def show(cmd: Sequence[str] | str) -> str:
    """A command as one shell-quoted line."""
    return cmd if isinstance(cmd, str) else shlex.join(str(c) for c in cmd)


def run_timed(
    cmd: Sequence[str] | str,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    capture: bool = False,
    check: bool = True,
) -> Run:
    """Run ``cmd`` (a list, or a string for ``sh -c``) with stdout to /dev/null or captured."""
    argv = ["sh", "-c", cmd] if isinstance(cmd, str) else [str(c) for c in cmd]
    # As an installed program runs: with Python's bytecode caches (the first run writes
    # them). A shell that sets PYTHONDONTWRITEBYTECODE (this project's sandboxes do)
    # would have every timed command compile teiten's modules again: 0.05-0.1 s each.
    child_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    child_env.update(env or {})
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        if GNU_TIME:
            argv = [GNU_TIME, "-v", "-o", report.name, *argv]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            argv,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=child_env,
            cwd=cwd,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        text = Path(report.name).read_text() if GNU_TIME else ""
    if check and proc.returncode != 0:
        raise RuntimeError(f"{show(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    if GNU_TIME:
        user = _field(text, r"User time \(seconds\): ([\d.]+)")
        system = _field(text, r"System time \(seconds\): ([\d.]+)")
        rss = int(_field(text, r"Maximum resident set size \(kbytes\): (\d+)"))
    else:
        user = after.ru_utime - before.ru_utime
        system = after.ru_stime - before.ru_stime
        rss = after.ru_maxrss
    return Run(show(cmd), wall, user, system, rss, proc.stdout or "", proc.returncode)


def _field(text: str, pattern: str) -> float:
    m = re.search(pattern, text)
    if not m:
        raise RuntimeError(f"no {pattern!r} in /usr/bin/time output:\n{text}")
    return float(m.group(1))


def warm(path: Path) -> None:
    """Read ``path`` once into the page cache: ``cat FILE > /dev/null``."""
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)


def cut_pcap(src: Path, dst: Path, packets: int) -> int:
    """Write the first ``packets`` records of classic pcap ``src`` to ``dst``; return the count."""
    with src.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        order = "<" if buf[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        incl = struct.Struct(order + "8xI").unpack_from
        off, n, end = 24, 0, len(buf)
        while n < packets and off + 16 <= end:
            off += 16 + incl(buf, off)[0]
            n += 1
        with dst.open("wb") as out:
            out.write(buf[:off])
    return n


def tree_bytes(path: Path, pattern: str = "*") -> int:
    """Total size of the regular files under ``path`` matching ``pattern``."""
    return sum(p.stat().st_size for p in path.rglob(pattern) if p.is_file())


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _first_line(cmd: Sequence[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError:
        return "not installed"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else "?"


@dataclass
class Machine:
    """What the numbers were measured on."""

    cores: int
    cpu: str
    memory_gib: float
    kernel: str
    versions: dict[str, str] = field(default_factory=dict)

    def markdown(self) -> str:
        versions = ", ".join(f"{k} {v}" for k, v in self.versions.items())
        return (
            f"- machine: {self.cores} cores (`nproc`), CPU `{self.cpu}`, "
            f"{self.memory_gib:.0f} GiB RAM, Linux {self.kernel}\n"
            f"- software: {versions}"
        )


def machine() -> Machine:
    """Describe this machine and the versions of the measured software."""
    cpu = "unknown"
    memory = 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) / (1 << 20)
    except OSError:
        pass
    versions = {"Python": platform.python_version()}
    for dist in ("teiten", "numpy", "pyarrow", "numba", "duckdb", "dpkt"):
        versions[dist] = _version(dist)
    tshark = _first_line(["tshark", "--version"])
    versions["tshark"] = tshark.split()[2] if tshark.startswith("TShark") else tshark
    libtrace = _first_line(["dpkg-query", "-W", "-f", "${Version}", "libtrace-tools"])
    versions["libtrace-tools"] = libtrace
    return Machine(
        cores=len(os.sched_getaffinity(0)),
        cpu=cpu,
        memory_gib=memory,
        kernel=platform.release(),
        versions=versions,
    )


def update_section(title: str, body: str, path: Path = RESULTS) -> None:
    """Replace (or append) the ``## title`` section of ``path`` with ``body``."""
    head = "# teiten benchmark results\n\nWritten by the scripts in `bench/`; re-run to refresh.\n"
    text = path.read_text() if path.exists() else head
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)


def busy_seconds() -> float:
    """CPU seconds all processes have used since boot, over all cores (from /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(x) for x in fields]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_seconds() -> float:
    """CPU seconds used so far by this process's waited-for children."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def rate(packets: int, seconds: float) -> float:
    """Packets per second (0 when no time was measured)."""
    return packets / seconds if seconds > 0 else 0.0


def human_rate(value: float) -> str:
    """Packets per second as ``12.3 M/s`` or ``456 k/s`` (``–`` for nothing measured)."""
    if value <= 0:
        return "–"
    if value >= 1e6:
        return f"{value / 1e6:.2f} M/s"
    return f"{value / 1e3:.0f} k/s"
