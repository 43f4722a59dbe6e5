"""Line charts as SVG text for the dashboard pages (no JavaScript, no plotting library).

A page embeds the ``<svg>`` element :func:`line_chart` returns: one polyline
per series over a shared x axis of bucket labels (days or hours), the y axis
from zero with round ticks, a legend, a vertical line and label at each onset,
and a grey band over each partial bucket (less than a whole day of data) so
that it does not read as a collapse. The strict CSP forbids inline styles, so
colours are SVG presentation attributes; every label is written through
:func:`teiten.escape.terminal` (controls visible) and then XML-escaped, so a
series named ``</svg><script>`` is text.

Drawing is string building only: 400 buckets × 4 series take about a millisecond.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from html import escape

from teiten.escape import terminal

PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#7a7a7a", "#000000")
"""Line colours (Okabe–Ito, readable by colour-blind readers), reused after eight series."""

MAX_LABEL = 60
"""Characters of a label kept (the rest is counted by the escape)."""


@dataclass(frozen=True)
class Frame:
    """Where the plot area sits inside the SVG (pixels)."""

    width: int = 880
    height: int = 280
    left: int = 64
    right: int = 16
    top: int = 34
    bottom: int = 40

    @property
    def plot_w(self) -> float:
        return float(self.width - self.left - self.right)

    @property
    def plot_h(self) -> float:
        return float(self.height - self.top - self.bottom)

    def x(self, index: int, count: int) -> float:
        """The x of bucket ``index`` of ``count`` (one bucket: the middle)."""
        if count <= 1:
            return self.left + self.plot_w / 2
        return self.left + index * self.plot_w / (count - 1)

    def y(self, value: float, top_value: float) -> float:
        """The y of ``value`` on an axis from 0 to ``top_value``."""
        return self.top + self.plot_h * (1 - value / top_value)


def text(value: object) -> str:
    """A label as SVG text: control characters made visible, then XML-escaped."""
    return escape(str(terminal(value, MAX_LABEL)), quote=True)


def nice_ticks(high: float, count: int = 4) -> list[float]:
    """Round tick values from 0 reaching at least ``high`` (steps of 1, 2 or 5 × 10ⁿ)."""
    if not math.isfinite(high) or high <= 0:
        return [0.0, 1.0]
    rough = high / count
    power = 10.0 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    n = math.ceil(high / step - 1e-9)
    return [i * step for i in range(n + 1)]


def tick_text(value: float) -> str:
    """``1.2k``, ``3M``: a y tick short enough for the left margin."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


HOUR_STEPS = (1, 2, 3, 6, 12, 24, 48, 72, 168, 336, 720)
DAY_STEPS = (1, 2, 5, 7, 14, 28, 56, 91, 182, 364)


def label_ticks(labels: Sequence[str], most: int = 8) -> list[int]:
    """Indexes of at most ``most`` labels to write under the x axis, a round step apart:
    hours on multiples of the step (00:00, 06:00… or every midnight), days every 1, 2, 5,
    7, 14… days."""
    if not labels:
        return []
    hourly = len(labels[0]) >= 16 and labels[0][10] == "T"
    need = math.ceil(len(labels) / most)
    step = next((s for s in (HOUR_STEPS if hourly else DAY_STEPS) if s >= need), need)
    start = 0
    if hourly:
        beat = min(step, 24)
        start = next((i for i, x in enumerate(labels[:beat]) if int(x[11:13]) % beat == 0), 0)
    return list(range(start, len(labels), step))


def short_label(label: str, first: bool) -> str:
    """``2017-11-01`` → ``11-01`` (the first tick keeps the year); hours keep ``HH:00``."""
    if len(label) < 10 or label[4] != "-":
        return label
    return (label if first else label[5:]).replace("T", " ")


def marker_index(labels: Sequence[str], at: str) -> int | None:
    """The bucket of an onset ``at`` (a date or a bucket label): the first bucket that
    starts on or after it; None when it lies outside the labels."""
    n = len(at)
    if not labels or not labels[0][:n] <= at <= labels[-1][:n]:
        return None
    return next(i for i, label in enumerate(labels) if label[:n] >= at)


def _path(values: Sequence[float], frame: Frame, top_value: float) -> str:
    n = len(values)
    points = [
        f"{frame.x(i, n):.1f},{frame.y(float(v), top_value):.1f}" for i, v in enumerate(values)
    ]
    if n == 1:  # a lone bucket: a short dash, so it shows
        x, y = points[0].split(",")
        return f"M{float(x) - 3:.1f},{y}L{float(x) + 3:.1f},{y}"
    return "M" + "L".join(points)


def _axes(labels: Sequence[str], frame: Frame, ticks: list[float]) -> list[str]:
    out = []
    base = frame.top + frame.plot_h
    for t in ticks:
        y = frame.y(t, ticks[-1])
        out.append(
            f'<line class="grid" x1="{frame.left}" x2="{frame.width - frame.right}" '
            f'y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>'
            f'<text class="tick" x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{text(tick_text(t))}</text>"
        )
    for n, i in enumerate(label_ticks(labels)):
        x = frame.x(i, len(labels))
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base:.1f}" y2="{base + 4:.1f}" stroke="#555"/>'
            f'<text class="tick" x="{x:.1f}" y="{base + 17:.1f}" text-anchor="middle">'
            f"{text(short_label(labels[i], n == 0))}</text>"
        )
    out.append(
        f'<line x1="{frame.left}" x2="{frame.width - frame.right}" y1="{base:.1f}" '
        f'y2="{base:.1f}" stroke="#555"/>'
    )
    return out


def _bands(labels: Sequence[str], partial: Collection[str], frame: Frame) -> list[str]:
    """A grey band over each partial bucket, half a bucket either side of its point."""
    n = len(labels)
    half = frame.plot_w / (2 * max(n - 1, 1))
    out = []
    for i, label in enumerate(labels):
        if label in partial or label[:10] in partial:
            x0 = max(frame.left, frame.x(i, n) - half)
            x1 = min(frame.width - frame.right, frame.x(i, n) + half)
            out.append(
                f'<rect class="partial" x="{x0:.1f}" y="{frame.top}" width="{max(x1 - x0, 1):.1f}" '
                f'height="{frame.plot_h:.1f}" fill="#bbbbbb" fill-opacity="0.3">'
                f"<title>{text(label)}: partial / 一部のみ</title></rect>"
            )
    return out


def _markers(labels: Sequence[str], markers: Sequence[tuple[str, str]], frame: Frame) -> list[str]:
    out = []
    for at, label in markers:
        i = marker_index(labels, at)
        if i is None:
            continue
        x = frame.x(i, len(labels))
        out.append(
            f'<g class="marker"><line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.top}" '
            f'y2="{frame.top + frame.plot_h:.1f}" stroke="#b00020" stroke-dasharray="4 3"/>'
            f'<text x="{x + 4:.1f}" y="{frame.top + 12}" fill="#b00020">{text(label)}</text></g>'
        )
    return out


def _legend(names: Sequence[str], frame: Frame) -> list[str]:
    out, x = [], float(frame.left)
    for k, name in enumerate(names):
        colour = PALETTE[k % len(PALETTE)]
        shown = text(name)
        out.append(
            f'<g class="legend"><line x1="{x:.1f}" x2="{x + 18:.1f}" y1="14" y2="14" '
            f'stroke="{colour}" stroke-width="3"/><text x="{x + 22:.1f}" y="18">{shown}</text></g>'
        )
        x += 34 + 7 * len(str(terminal(name, MAX_LABEL)))
    return out


def line_chart(
    labels: Sequence[str],
    lines: Mapping[str, Sequence[float]],
    *,
    title: str = "",
    markers: Sequence[tuple[str, str]] = (),
    partial: Collection[str] = (),
    frame: Frame = Frame(),
) -> str:
    """An ``<svg>`` element: one line per entry of ``lines`` (each as long as ``labels``).

    ``markers`` are ``(bucket or date, label)`` pairs drawn as vertical lines;
    ``partial`` names buckets (or days) covered only in part. ``title`` is the
    chart's accessible name.
    """
    for name, values in lines.items():
        if len(values) != len(labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(labels)} buckets")
    high = max((float(v) for values in lines.values() for v in values), default=0.0)
    ticks = nice_ticks(high)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {frame.width} {frame.height}" width="{frame.width}" '
        f'height="{frame.height}" font-family="sans-serif" font-size="11">',
        f"<title>{text(title)}</title>",
        *_bands(labels, partial, frame),
        *_axes(labels, frame, ticks),
    ]
    for k, (name, values) in enumerate(lines.items()):
        if not values:
            continue
        colour = PALETTE[k % len(PALETTE)]
        parts.append(
            f'<path class="series" d="{_path(values, frame, ticks[-1])}" fill="none" '
            f'stroke="{colour}" stroke-width="1.6" stroke-linejoin="round">'
            f"<title>{text(name)}</title></path>"
        )
    parts += _markers(labels, markers, frame)
    parts += _legend(list(lines), frame)
    parts.append("</svg>")
    return "".join(parts)
