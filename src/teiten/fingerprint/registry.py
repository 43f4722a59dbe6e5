"""The fingerprint registry: the built-ins with their fixed bits, plus plugins, applied to batches.

The built-ins are data: :data:`BUILTINS` lists them in bit order, and their
bits are stored on disk in the ``fp`` column, so they are never renumbered.
Third parties add fingerprints through the ``teiten.fingerprints`` entry point
group (each entry point names a :class:`~teiten.fingerprint.Fingerprint` or a
sequence of them), for example in their ``pyproject.toml``::

    [project.entry-points."teiten.fingerprints"]
    ttl_one = "my_package.fingerprints:TTL_ONE"

Plugins load on first use. One that fails to import, is not a fingerprint,
takes a reserved bit (0–15) or a bit or name already taken, or whose predicate
fails, is skipped with a logged warning; ingest goes on without it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from importlib.metadata import entry_points

import numpy as np
import numpy.typing as npt

from teiten.fingerprint import (
    FIRST_PLUGIN_BIT,
    Columns,
    Fingerprint,
    backscatter,
    masscan,
    mirai,
    nmap,
    spoofed,
    zmap,
)

ENTRY_POINT_GROUP = "teiten.fingerprints"
BLOCK_ROWS = 1 << 16
"""Rows per block in :func:`apply`: keeps the predicates' temporaries in cache."""

BUILTINS: tuple[Fingerprint, ...] = (
    mirai.FINGERPRINT,  # bit 0
    zmap.FINGERPRINT,  # bit 1
    masscan.FINGERPRINT,  # bit 2
    nmap.FINGERPRINT,  # bit 3
    backscatter.FINGERPRINT,  # bit 4
    spoofed.FINGERPRINT,  # bit 5
)

_log = logging.getLogger(__name__)
_plugins: tuple[Fingerprint, ...] | None = None
_failed: set[str] = set()


def registered() -> tuple[Fingerprint, ...]:
    """The built-ins, then the plugins (loaded on the first call)."""
    global _plugins
    if _plugins is None:
        _plugins = load_plugins(BUILTINS)
    return BUILTINS + tuple(p for p in _plugins if p.name not in _failed)


def load_plugins(
    taken: Sequence[Fingerprint], group: str = ENTRY_POINT_GROUP
) -> tuple[Fingerprint, ...]:
    """Fingerprints from the entry points of ``group`` that fit beside ``taken``."""
    found: list[Fingerprint] = []
    for ep in entry_points(group=group):
        try:
            loaded = ep.load()
        except Exception as e:
            _log.warning("fingerprint plugin %s (%s) failed to load: %s", ep.name, ep.value, e)
            continue
        items = loaded if isinstance(loaded, list | tuple) else [loaded]
        for fp in items:
            problem = _conflict(fp, [*taken, *found])
            if problem:
                _log.warning("fingerprint plugin %s skipped: %s", ep.name, problem)
            else:
                found.append(fp)
    return tuple(found)


def _conflict(fp: object, taken: Iterable[Fingerprint]) -> str:
    """Why ``fp`` cannot be registered beside ``taken`` ('' if it can)."""
    if not isinstance(fp, Fingerprint):
        return f"{fp!r} is not a teiten.fingerprint.Fingerprint"
    if fp.bit < FIRST_PLUGIN_BIT:
        return f"{fp.name} uses bit {fp.bit}; bits 0–{FIRST_PLUGIN_BIT - 1} are for built-ins"
    for other in taken:
        if other.bit == fp.bit or other.name == fp.name:
            return f"{fp.name} (bit {fp.bit}) clashes with {other.name} (bit {other.bit})"
    return ""


def apply(
    columns: Columns, fingerprints: Sequence[Fingerprint] | None = None
) -> npt.NDArray[np.uint32]:
    """The ``fp`` bitmask of every row: the OR of the bits of the fingerprints it matches.

    >>> columns["fp"] = apply(columns)  # doctest: +SKIP
    """
    fps = registered() if fingerprints is None else tuple(fingerprints)
    n = int(columns["ip_version"].shape[0])
    out = np.zeros(n, np.uint32)
    for start in range(0, n, BLOCK_ROWS):
        block = {name: array[start : start + BLOCK_ROWS] for name, array in columns.items()}
        _apply_block(block, fps, out[start : start + BLOCK_ROWS])
    return out


def _apply_block(block: Columns, fps: Sequence[Fingerprint], out: npt.NDArray[np.uint32]) -> None:
    for fp in fps:
        builtin = any(fp is b for b in BUILTINS)
        hit = fp.predicate(block) if builtin else _plugin_hit(fp, block, out.shape[0])
        if hit is not None:
            out |= hit.astype(np.uint32) << np.uint32(fp.bit)  # faster than a where= mask


def _plugin_hit(fp: Fingerprint, block: Columns, n: int) -> npt.NDArray[np.bool_] | None:
    """A plugin's predicate result; None if it failed now or before (it is then disabled)."""
    if fp.name in _failed:
        return None
    try:
        hit = np.asarray(fp.predicate(block), dtype=np.bool_)
        if hit.shape != (n,):
            raise ValueError(f"predicate returned shape {hit.shape}, expected ({n},)")
    except Exception as e:
        _log.warning("fingerprint plugin %s disabled: its predicate failed: %s", fp.name, e)
        _failed.add(fp.name)
        return None
    return hit


def names(mask: int) -> list[str]:
    """Names of the registered fingerprints whose bits are set in ``mask``, in bit order.

    >>> names(0b101)
    ['mirai', 'masscan']
    """
    return [fp.name for fp in sorted(registered(), key=lambda f: f.bit) if mask & fp.mask]


def by_name(name: str) -> Fingerprint:
    """The registered fingerprint called ``name``; raises ``KeyError`` if there is none."""
    for fp in registered():
        if fp.name == name:
            return fp
    raise KeyError(f"no fingerprint named {name!r}")
