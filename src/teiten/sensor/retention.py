"""Removing old ingested files from the spool: ``keep_ingested_days`` and ``keep_ingested_gb``.

Once a file is ingested its content is in the store; the copy the sensor moves
to ``spool/events/ingested/`` or ``spool/captures/ingested/`` is only kept for
the operator (to re-ingest elsewhere, or to look at a capture with other
tools). After every ingest round :func:`prune` removes, from those folders,
the files ingested more than ``keep_days`` ago, then the oldest until the
rest fit in ``keep_bytes``; 0 for either removes every ingested file at
once. Age is the file's modification time, which the sensor sets when it
moves a file to ``ingested/``. ``failed/`` folders are never touched: what is
there was not stored and needs a person.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DAY = 86400.0


@dataclass(frozen=True)
class Pruned:
    """What one :func:`prune` removed, and what it could not."""

    files: int = 0
    bytes: int = 0
    errors: tuple[str, ...] = ()
    """One line per file that could not be removed (``NAME: reason``)."""


def _listing(folders: list[Path]) -> list[tuple[float, int, Path]]:
    out = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:  # not created yet
            continue
        for e in entries:
            try:
                if e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    out.append((st.st_mtime, st.st_size, Path(e.path)))
            except OSError:
                continue
    out.sort()
    return out


def prune(folders: list[Path], keep_days: float, keep_bytes: int, now: float) -> Pruned:
    """Remove files older than ``keep_days``, then the oldest beyond ``keep_bytes``.

    ``folders`` are the ``ingested/`` folders, taken together (the byte budget
    is for all of them). ``now`` is Unix time.
    """
    files = _listing(folders)
    total = sum(size for _, size, _ in files)
    cutoff = now - keep_days * DAY
    removed, freed, errors = 0, 0, []
    for mtime, size, path in files:
        if keep_days > 0 and mtime >= cutoff and total <= keep_bytes:
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            errors.append(f"{path.name}: {e.strerror}")
            continue
        removed += 1
        freed += size
        total -= size
    return Pruned(removed, freed, tuple(errors))
