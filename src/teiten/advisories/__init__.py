"""Firmware advisories: which device models and firmware versions a vulnerability affects.

Advisories are data (one TOML file each, bundled in ``data/`` or in a directory
of your own; format in docs/advisories.md)::

    from teiten.advisories import check
    v = check("LAN-W300N/R", "Ver2.27")
    v.status, v.fixed_version, v.fixed_date   # 'affected', '2.33', date(2013, 11, 6)

``check_banner`` answers for a device known only by its banners, and
``import_csaf`` turns a CSAF 2.0 advisory into an advisory file.
"""

from __future__ import annotations

from teiten.advisories.check import Verdict, check, check_banner
from teiten.advisories.csaf import ImportResult, import_csaf
from teiten.advisories.model import (
    Advisory,
    Product,
    load_advisories,
    load_advisory_dir,
    model_key,
    save_advisory,
)
from teiten.advisories.versions import Comparison, Version, compare, parse_version

__all__ = [
    "Advisory",
    "Comparison",
    "ImportResult",
    "Product",
    "Verdict",
    "Version",
    "check",
    "check_banner",
    "compare",
    "import_csaf",
    "load_advisories",
    "load_advisory_dir",
    "model_key",
    "parse_version",
    "save_advisory",
]
