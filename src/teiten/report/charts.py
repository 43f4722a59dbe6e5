"""Charts of per-port series, rendered offline with matplotlib (PNG or SVG)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from teiten.errors import ConfigError

CHART_SUFFIXES = (".png", ".svg")


def trend_chart(
    rows: Sequence[dict[str, Any]],
    path: Path,
    *,
    title: str = "",
    measure: str = "packets",
    onset: str | None = None,
) -> Path:
    """Draw one line per (port, segment) of ``trend`` rows; the format follows the suffix."""
    if path.suffix.lower() not in CHART_SUFFIXES:
        raise ConfigError(f"chart file must end in .png or .svg: {path}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    key = "date" if rows and "date" in rows[0] else "hour"
    lines: dict[str, list[tuple[dt.datetime, int]]] = defaultdict(list)
    for r in rows:
        label = r["port"] if r["segment"] == "all" else f"{r['port']} {r['segment']}"
        lines[label].append((dt.datetime.fromisoformat(r[key]), int(r[measure])))
    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=110)
    for label, points in lines.items():
        points.sort()
        xs = mdates.date2num([p[0] for p in points])  # type: ignore[no-untyped-call]
        ax.plot(xs, [p[1] for p in points], label=label, linewidth=1.4)
    if onset:
        x = float(mdates.date2num(dt.datetime.fromisoformat(onset)))  # type: ignore[no-untyped-call]
        ax.axvline(x, color="#c0392b", linestyle="--", linewidth=1, label=f"onset {onset}")
    ax.set_title(title)
    ax.set_ylabel(measure)
    ax.grid(True, alpha=0.3)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))  # type: ignore[no-untyped-call]
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None} if path.suffix == ".png" else {"Date": None})
    plt.close(fig)
    return path
