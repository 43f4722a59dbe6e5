"""Chart style for reports: one look for every figure, and a real CJK font for Japanese.

Japanese labels need a font with Japanese glyphs or matplotlib draws empty
boxes. :func:`cjk_font` finds an installed one through matplotlib's font
manager (Debian: ``fonts-noto-cjk``) and raises :class:`DependencyError`
naming that package when there is none. :func:`series_chart` draws a
report's daily-count figure from a :class:`~teiten.report.model.Chart`,
offline, as PNG or SVG (SVG keeps its text as text so it can be searched).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
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
PARTIAL_COLOR = "#7f7f7f"
SEGMENT_DASHES = {"all": "-", "domestic": "-", "foreign": "--", "unknown": ":"}
LABELS = {
    "ja": {"packets": "パケット数（件/日）", "packets/h": "パケット数（件/時）",
           "sources": "発信元数（件/日）", "sources/h": "発信元数（件/時）",
           "domestic": "国内", "foreign": "国外", "unknown": "不明", "all": "全体",
           "onset": "増加開始", "date": "日付（{tz}）", "hour": "日時（{tz}）",
           "partial": "24時間未満のデータの日"},
    "en": {"packets": "packets per day", "packets/h": "packets per hour",
           "sources": "unique sources per day", "sources/h": "unique sources per hour",
           "domestic": "domestic", "foreign": "foreign", "unknown": "unknown", "all": "all",
           "onset": "onset", "date": "Date ({tz})", "hour": "Time ({tz})",
           "partial": "partial day (< 24 h of data)"},
}  # fmt: skip


def _cjk_family(names: set[str]) -> str | None:
    """The first of :data:`CJK_FAMILIES` among font family ``names``, else any Japanese CJK."""
    for family in CJK_FAMILIES:
        if family in names:
            return family
    return next((n for n in sorted(names) if "CJK" in n and "JP" in n), None)


@cache
def cjk_font() -> str:
    """The family name of an installed font with Japanese glyphs."""
    from matplotlib import font_manager

    found = _cjk_family({f.name for f in font_manager.fontManager.ttflist})
    if found is None:
        # matplotlib lists the fonts it found when it first ran (its cache): a font
        # installed since is on the system but not in that list
        for path in font_manager.findSystemFonts():
            if "cjk" in Path(path).name.lower():
                with contextlib.suppress(OSError, RuntimeError, ValueError):
                    font_manager.fontManager.addfont(path)
        found = _cjk_family({f.name for f in font_manager.fontManager.ttflist})
    if found is not None:
        return found
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
        "text.parse_math": False,
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


def split_key(key: str) -> tuple[str, str]:
    """``"23/tcp domestic"`` → ``("23/tcp", "domestic")``; ``"52869/tcp"`` → ``(…, "all")``.

    A bare segment (``"domestic"``, an older model's lines summed over the
    chart's ports) gives an empty port.
    """
    port, _, segment = key.partition(" ")
    if "/" not in port:
        return "", key
    return port, segment or "all"


def line_label(key: str, lang: str, ports: Sequence[str] = ()) -> str:
    """The legend entry of one line: ``23/TCP 国内``, ``23/TCP foreign``, ``52869/TCP``."""
    port, segment = split_key(key)
    name = LABELS[lang].get(segment, segment)
    if not port:
        return f"{name} ({'+'.join(p.split('/')[0] for p in ports)}/TCP)" if ports else name
    return port.upper() if segment == "all" else f"{port.upper()} {name}"


def _label(when: dt.datetime, with_year: bool, hourly: bool) -> str:
    text = when.strftime("%Y-%m-%d" if with_year else "%m-%d")
    return f"{text} {when:%H:%M}" if hourly and (when.hour or when.minute) else text


def year_formatter(hourly: bool = False) -> Any:
    """A tick formatter showing the year at the first tick and wherever the year changes.

    ``2017-10-01``, ``10-15``, ``11-01``, …, ``2018-01-01``; hour ticks add ``HH:MM``.
    """
    from matplotlib.ticker import Formatter

    class YearDateFormatter(Formatter):
        def __call__(self, x: float, pos: int | None = None) -> str:
            return _label(_naive(x), True, hourly)

        def format_ticks(self, values: Any) -> list[str]:
            days = [_naive(float(v)) for v in values]
            return [
                _label(d, i == 0 or d.year != days[i - 1].year, hourly) for i, d in enumerate(days)
            ]

    return YearDateFormatter()


def _naive(x: float) -> dt.datetime:
    import matplotlib.dates as mdates

    when: dt.datetime = mdates.num2date(x)  # type: ignore[no-untyped-call]
    return when.replace(tzinfo=None)


def _locator(first: dt.datetime, last: dt.datetime, hourly: bool) -> Any:
    import matplotlib.dates as mdates

    days = (last - first).days + 1
    if hourly and days <= 3:
        return mdates.HourLocator(byhour=range(0, 24, 6))  # type: ignore[no-untyped-call]
    if days > 400:
        return mdates.MonthLocator()  # type: ignore[no-untyped-call]
    if days > 62:
        return mdates.DayLocator(bymonthday=[1, 15])  # type: ignore[no-untyped-call]
    if days > 16:
        return mdates.WeekdayLocator(byweekday=0)  # type: ignore[no-untyped-call]
    return mdates.DayLocator()  # type: ignore[no-untyped-call]


def series_figure(
    plt: Any,
    dates: Sequence[str],
    lines: dict[str, list[int]] | dict[str, list[float]],
    *,
    lang: str,
    tz: str,
    onsets: Sequence[str] = (),
    partial: Sequence[str] = (),
    measure: str = "packets",
    ports: Sequence[str] = (),
    title: str = "",
    size: tuple[float, float] = (7.2, 3.0),
) -> Any:
    """One figure of per-bucket counts, drawn with the report style already in force.

    ``dates`` are local ``YYYY-MM-DD`` days (or ``YYYY-MM-DDTHH:00`` hours) in ``tz``;
    ``lines`` holds one series per key (``"23/tcp domestic"``, see :func:`split_key`):
    one colour per port, one dash per segment. Each day is drawn at its middle; every
    onset is a vertical line at the start of its day, named with its date; partial
    days (less than a whole local day of data) are hatched grey with open markers.
    """
    import matplotlib.dates as mdates

    words = LABELS[lang]
    hourly = any("T" in d for d in dates)
    step = dt.timedelta(hours=1) if hourly else dt.timedelta(days=1)
    starts = [dt.datetime.fromisoformat(d) for d in dates]
    xs = mdates.date2num([t + step / 2 for t in starts])  # type: ignore[no-untyped-call]
    cut = {d for d in partial if d in dates}
    port_colour: dict[str, str] = {}
    fig, ax = plt.subplots(figsize=size)
    for key, values in lines.items():
        port, segment = split_key(key)
        colour = port_colour.setdefault(port, PALETTE[len(port_colour) % len(PALETTE)])
        dashes = SEGMENT_DASHES.get(segment, "-.")
        ax.plot(xs, values, color=colour, linewidth=1.5, linestyle=dashes,
                label=line_label(key, lang, ports), gid=f"line {key}")  # fmt: skip
        gaps = [i for i, d in enumerate(dates) if d in cut]
        if gaps:
            ax.plot([xs[i] for i in gaps], [values[i] for i in gaps], linestyle="none",
                    marker="o", markersize=4, markerfacecolor="white", color=colour)  # fmt: skip
    for n, day in enumerate(sorted(cut)):
        begin = dt.datetime.fromisoformat(day)
        ax.axvspan(
            float(mdates.date2num(begin)), float(mdates.date2num(begin + step)),  # type: ignore[no-untyped-call]
            facecolor="#f2f2f2", edgecolor=PARTIAL_COLOR, hatch="////", linewidth=0,
            label=words["partial"] if n == 0 else None, gid=f"partial {day}",
        )  # fmt: skip
    shown = [o for o in dict.fromkeys(onsets) if o[:10] in {d[:10] for d in dates}]
    for n, onset in enumerate(sorted(shown)):
        x = float(mdates.date2num(dt.datetime.fromisoformat(onset)))  # type: ignore[no-untyped-call]
        ax.axvline(x, color=ONSET_COLOR, linestyle="--", linewidth=1, gid=f"onset {onset}")
        ax.annotate(
            f"{words['onset']} {onset}", (x, 1.0), xycoords=("data", "axes fraction"),
            xytext=(4, -10 - 11 * n), textcoords="offset points", color=ONSET_COLOR, fontsize=8,
            bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none"},
        )  # fmt: skip
    unit = f"{measure}/h" if hourly else measure
    ax.set_ylabel(words.get(unit, measure))
    ax.set_xlabel(words["hour" if hourly else "date"].format(tz=tz))
    if title:
        ax.set_title(title)
    ax.set_ylim(bottom=0)
    if starts:
        ax.set_xlim(float(mdates.date2num(starts[0])), float(mdates.date2num(starts[-1] + step)))  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(_locator(starts[0], starts[-1], hourly))
    ax.xaxis.set_major_formatter(year_formatter(hourly))
    fig.autofmt_xdate(rotation=30, ha="right")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8, bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def series_chart(chart: Chart, stem: Path, lang: str, tz: str | None = None) -> list[Path]:
    """Draw one report figure (PNG and SVG) from its :class:`Chart`.

    The axis names ``tz``, else the chart's own zone, else UTC.
    """
    zone = tz or str(getattr(chart, "tz", "") or "UTC")
    with figure_style(lang) as plt:
        fig = series_figure(
            plt, chart.dates, chart.lines, lang=lang, tz=zone,
            onsets=[chart.onset] if chart.onset else [],
            partial=list(getattr(chart, "partial", None) or []),
            measure=chart.measure, ports=chart.ports,
        )  # fmt: skip
        paths = save(fig, stem)
        plt.close(fig)
    return paths
