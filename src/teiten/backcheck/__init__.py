"""Back-check: identify the devices behind darknet sources, safely, or from others' scans.

The NPA report of 2017-12-19 checked the sources of a Telnet surge back and
found 52869/tcp and 52881/tcp open, with banners naming Realtek or "Wireless
Router". This package does the same, within rules (docs/backcheck.md)::

    from teiten.backcheck import ProbeConfig, run_backcheck, read_scan, summarize
    config = ProbeConfig(enabled=True, allow=("198.51.100.0/24",), log_path=Path("sent.jsonl"))
    result = run_backcheck(["198.51.100.7"], config)    # refused targets: result.refused
    result.summary().sentence
    read_scan("masscan.json").probes                     # or from masscan, ZGrab2, Nmap files

The prober is off unless ``enabled``; it contacts only IP literals inside the
allowlist, paces and bounds every probe, and logs everything it sends.
"""

from __future__ import annotations

from teiten.backcheck.model import (
    PROBES_SCHEMA,
    Match,
    Probe,
    Refusal,
    RunResult,
    ScanImport,
    Summary,
    match_advisories,
    summarize,
    to_table,
)
from teiten.backcheck.prober import (
    DEFAULT_PORTS,
    Plan,
    ProbeConfig,
    backcheck,
    plan,
    run_backcheck,
)
from teiten.backcheck.scans import read_scan
from teiten.backcheck.upnp import Description, DescriptionError, parse_description

__all__ = [
    "DEFAULT_PORTS",
    "PROBES_SCHEMA",
    "Description",
    "DescriptionError",
    "Match",
    "Plan",
    "Probe",
    "ProbeConfig",
    "Refusal",
    "RunResult",
    "ScanImport",
    "Summary",
    "backcheck",
    "match_advisories",
    "parse_description",
    "plan",
    "read_scan",
    "run_backcheck",
    "summarize",
    "to_table",
]
