"""Chart style for reports: one look for every figure, and a real CJK font for Japanese.

Japanese labels need a font with Japanese glyphs or matplotlib draws empty
boxes. :func:`cjk_font` finds an installed one through matplotlib's font
manager (Debian: ``fonts-noto-cjk``) and raises :class:`DependencyError`
naming that package when there is none. :func:`series_chart` draws a
report's daily-count figure from a :class:`~teiten.report.model.Chart`,
offline, as PNG or SVG (SVG keeps its text as text so it can be searched).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, cast

from teiten.errors import DependencyError
from teiten.report.model import Chart

CJK_PACKAGE = "fonts-noto-cjk"
CJK_FAMILIES = (
    "Noto Sans CJK JP",
    "Noto Sans JP",
    "Noto Serif CJK JP",
    "IPAexGothic",
    "IPAGothic",
    "TakaoGothic",
    "VL Gothic",
)
PALETTE = ("#1f4e79", "#c55a11", "#548235", "#7030a0", "#bf9000")
ONSET_COLOR = "#c00000"
LABELS = {
    "ja": {"packets": "パケット数(件/日)", "domestic": "国内", "foreign": "国外",
           "onset": "増加開始", "date": "日付"},
    "en": {"packets": "packets per day", "domestic": "domestic", "foreign": "foreign",
           "onset": "onset", "date": "date"},
}  # fmt: skip


@cache
def cjk_font() -> str:
    """The family name of an installed font with Japanese glyphs."""
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in names:
            return family
    for name in sorted(names):
        if "CJK" in name and "JP" in name:
            return name
    raise DependencyError(
        "Japanese reports need a CJK font and none is installed: "
        f"install the Debian package {CJK_PACKAGE} (apt-get install {CJK_PACKAGE})"
    )


def rc(lang: str) -> dict[str, Any]:
    """matplotlib settings shared by every report figure."""
    family = [cjk_font()] if lang == "ja" else ["DejaVu Sans"]
    return {
        "font.family": "sans-serif",
        "font.sans-serif": [*family, "DejaVu Sans"],
        "font.size": 9,
        "axes.edgecolor": "#595959",
        "axes.linewidth": 0.8,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.color": "#d9d9d9",
        "grid.linewidth": 0.6,
        "legend.frameon": False,
        "svg.fonttype": "none",
        "svg.hashsalt": "teiten",
        "axes.unicode_minus": False,
    }


@contextmanager
def figure_style(lang: str) -> Iterator[Any]:
    """``pyplot`` with the report style in force (Agg backend, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context(cast(Any, rc(lang))):
        yield plt


def save(fig: Any, stem: Path) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg`` without timestamps; returns both paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    fig.savefig(png, dpi=150, metadata={"Software": None})
    fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return [png, svg]


def line_label(chart: Chart, key: str, lang: str) -> str:
    """The legend entry of one line: a port, or a segment in the report's language."""
    if chart.kind == "segments":
        ports = "+".join(p.split("/")[0] for p in chart.ports)
        return f"{LABELS[lang].get(key, key)} ({ports}/TCP)"
    return key.upper()


def series_chart(chart: Chart, stem: Path, lang: str) -> list[Path]:
    """Draw one daily-count figure with its onset marked; writes PNG and SVG."""
    import matplotlib.dates as mdates

    words = LABELS[lang]
    days = [dt.datetime.fromisoformat(d) for d in chart.dates]
    xs = mdates.date2num(days)  # type: ignore[no-untyped-call]
    with figure_style(lang) as plt:
        fig, ax = plt.subplots(figsize=(7.2, 3.0))
        for i, (key, values) in enumerate(chart.lines.items()):
            color = PALETTE[i % len(PALETTE)]
            ax.plot(xs, values, color=color, linewidth=1.5, label=line_label(chart, key, lang))
        if chart.onset in chart.dates:
            x = float(mdates.date2num(dt.datetime.fromisoformat(chart.onset)))  # type: ignore[no-untyped-call]
            ax.axvline(x, color=ONSET_COLOR, linestyle="--", linewidth=1)
            ax.annotate(
                f"{words['onset']} {chart.onset}", (x, 1.0), xycoords=("data", "axes fraction"),
                xytext=(4, -10), textcoords="offset points", color=ONSET_COLOR, fontsize=8,
            )  # fmt: skip
        ax.set_ylabel(words["packets"])
        ax.set_ylim(bottom=0)
        ax.xaxis.set_major_locator(mdates.WeekdayLocator(byweekday=0, interval=2))  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m/%d"))  # type: ignore[no-untyped-call]
        ax.legend(loc="upper left", fontsize=8, bbox_to_anchor=(0.0, 0.92))
        fig.tight_layout()
        paths = save(fig, stem)
        plt.close(fig)
    return paths
