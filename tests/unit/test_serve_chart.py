"""The SVG line charts: valid XML, escaped labels, markers and bands where they belong."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET

import pytest
from defusedxml.ElementTree import fromstring  # type: ignore[import-untyped]

from teiten.serve.chart import (
    Frame,
    label_ticks,
    line_chart,
    marker_index,
    nice_ticks,
    short_label,
)

SVG = "{http://www.w3.org/2000/svg}"
DAYS = [f"2017-10-{d:02d}" for d in range(25, 32)] + [f"2017-11-{d:02d}" for d in range(1, 8)]


def _tree(svg: str) -> ET.Element:
    return fromstring(svg)  # type: ignore[no-any-return]


def _marker_x(root: ET.Element) -> list[float]:
    return [
        float(line.attrib["x1"])
        for g in root.iter(f"{SVG}g")
        if g.attrib.get("class") == "marker"
        for line in g.iter(f"{SVG}line")
    ]


def test_one_path_per_series_and_valid_xml() -> None:
    lines = {"52869/tcp": [float(i) for i in range(14)], "23/tcp domestic": [3.0] * 14}
    root = _tree(line_chart(DAYS, lines, title="ports"))
    paths = [p for p in root.iter(f"{SVG}path") if p.attrib.get("class") == "series"]
    assert len(paths) == 2
    assert all(p.attrib["d"].count("L") == 13 for p in paths)
    assert root.find(f"{SVG}title") is not None


def test_hostile_labels_are_text() -> None:
    hostile = '\x1b[31m</svg><script>alert(1)</script>"><img src=x onerror=alert(1)>'
    svg = line_chart(DAYS[:3], {hostile: [1, 2, 3]}, title=hostile, markers=[(DAYS[1], hostile)])
    root = _tree(svg)
    assert not any(e.tag in (f"{SVG}script", f"{SVG}img", "script", "img") for e in root.iter())
    assert "<script" not in svg and "<img" not in svg
    assert "\x1b" not in svg and "\\x1b[31m" in svg
    texts = "".join(root.itertext())
    assert "<script>alert(1)</script>" in texts  # shown as text


def test_marker_at_the_onset_bucket() -> None:
    frame = Frame()
    root = _tree(line_chart(DAYS, {"a": [1.0] * len(DAYS)}, markers=[("2017-11-01", "onset")]))
    i = DAYS.index("2017-11-01")
    assert _marker_x(root) == [pytest.approx(frame.x(i, len(DAYS)), abs=0.05)]


def test_marker_on_hourly_buckets_and_outside() -> None:
    hours = [f"2017-10-31T{h:02d}:00" for h in range(24)] + [
        f"2017-11-01T{h:02d}:00" for h in range(24)
    ]
    assert marker_index(hours, "2017-11-01") == 24
    assert marker_index(hours, "2017-11-02") is None
    assert marker_index(hours, "2017-10-01") is None
    root = _tree(line_chart(hours, {"a": [1.0] * 48}, markers=[("2017-12-01", "late")]))
    assert _marker_x(root) == []


def test_partial_days_banded() -> None:
    root = _tree(line_chart(DAYS, {"a": [1.0] * len(DAYS)}, partial=[DAYS[0], DAYS[-1]]))
    bands = [r for r in root.iter(f"{SVG}rect") if r.attrib.get("class") == "partial"]
    assert len(bands) == 2
    frame = Frame()
    assert float(bands[0].attrib["x"]) == pytest.approx(frame.left)


def test_lines_scale_to_the_highest_value() -> None:
    frame = Frame()
    root = _tree(line_chart(DAYS[:2], {"a": [0.0, 950.0]}, frame=frame))
    d = next(p.attrib["d"] for p in root.iter(f"{SVG}path"))
    ys = [float(y) for y in re.findall(r",([\d.]+)", d)]
    assert ys[0] == pytest.approx(frame.top + frame.plot_h)  # zero on the base line
    assert frame.top <= ys[1] < frame.top + frame.plot_h * 0.1  # 950 near a top tick of 1000


def test_empty_and_single_bucket() -> None:
    _tree(line_chart([], {}))
    root = _tree(line_chart(["2017-11-01"], {"a": [5.0]}))
    assert next(root.iter(f"{SVG}path")).attrib["d"].startswith("M")


def test_mismatched_series_refused() -> None:
    with pytest.raises(ValueError, match="2 values for 3 buckets"):
        line_chart(DAYS[:3], {"a": [1.0, 2.0]})


@pytest.mark.parametrize(
    ("high", "top"), [(0, 1.0), (7, 8.0), (950, 1000.0), (1234, 1500.0), (0.35, 0.4)]
)
def test_nice_ticks(high: float, top: float) -> None:
    ticks = nice_ticks(high)
    assert ticks[0] == 0 and ticks[-1] == pytest.approx(top) and ticks[-1] >= high


def test_label_ticks_fall_on_round_steps() -> None:
    days = [f"2017-{m:02d}-{d:02d}" for m in (10, 11, 12) for d in range(1, 29)]
    assert label_ticks(days) == list(range(0, 84, 14))
    assert label_ticks(DAYS) == list(range(0, 14, 2))
    hours = [f"2017-11-{d:02d}T{h:02d}:00" for d in range(1, 8) for h in range(24)][5:]
    ticks = label_ticks(hours)
    assert all(hours[i].endswith("T00:00") for i in ticks) and len(ticks) <= 8
    assert label_ticks(hours[:30]) == [1, 7, 13, 19, 25]  # every 6 hours from 06:00
    assert label_ticks([]) == []


def test_short_labels() -> None:
    assert short_label("2017-11-01", first=True) == "2017-11-01"
    assert short_label("2017-11-01", first=False) == "11-01"
    assert short_label("2017-11-01T05:00", first=False) == "11-01 05:00"
    assert short_label("2017-11-01T05:00", first=True) == "2017-11-01 05:00"


def test_fast_enough_for_400_days_by_4_lines() -> None:
    labels = [f"d{i:04d}" for i in range(400)]
    lines = {f"s{k}": [float((i * (k + 3)) % 97) for i in range(400)] for k in range(4)}
    line_chart(labels, lines)  # warm
    start = time.perf_counter()
    for _ in range(5):
        line_chart(labels, lines, markers=[("d0100", "onset")], partial=["d0000"])
    assert (time.perf_counter() - start) / 5 < 0.010
