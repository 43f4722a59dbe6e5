"""Report chart style: a real CJK font for Japanese, and a clear error without one."""

from __future__ import annotations

from pathlib import Path

import pytest

from teiten.errors import DependencyError
from teiten.report import style
from teiten.report.flow import flow_figure, flow_texts
from teiten.report.model import Chart

FLOW = {
    "exploit_port": "52869/tcp",
    "cves": ["CVE-2014-8361"],
    "downloads": ["http://[redacted]/okiru.sh"],
    "scan_ports": ["23/tcp", "2323/tcp"],
    "scan_segment": "domestic",
    "shared_sources": 95,
    "overlap": 0.7,
}


def test_cjk_font_has_the_japanese_glyphs() -> None:
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    family = style.cjk_font()
    path = font_manager.findfont(
        font_manager.FontProperties(family=family), fallback_to_default=False
    )
    font = FT2Font(path)
    for ch in "国内外増加開始パケット数感染探索":
        assert font.get_char_index(ord(ch)) != 0, ch


def test_missing_cjk_font_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib import font_manager

    style.cjk_font.cache_clear()
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [])
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda *a, **k: [])
    try:
        with pytest.raises(DependencyError, match="fonts-noto-cjk"):
            style.cjk_font()
    finally:
        style.cjk_font.cache_clear()


def test_a_cjk_font_installed_after_matplotlib_listed_its_fonts_is_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """matplotlib caches the fonts it saw on its first run; one installed since (the
    Debian package the error names) must be found, not reported missing."""
    from matplotlib import font_manager

    style.cjk_font.cache_clear()
    try:
        family = style.cjk_font()  # the suite installs fonts-noto-cjk (scripts/test)
        stale = [f for f in font_manager.fontManager.ttflist if "CJK" not in f.name]
        monkeypatch.setattr(font_manager.fontManager, "ttflist", stale)
        style.cjk_font.cache_clear()
        assert style.cjk_font() == family
    finally:
        style.cjk_font.cache_clear()


def test_series_chart_writes_png_and_searchable_svg(tmp_path: Path) -> None:
    chart = Chart(1, "segments", ["23/tcp"], ["2017-10-31", "2017-11-01"],
                  {"23/tcp domestic": [1, 50], "23/tcp foreign": [5, 5]}, "2017-11-01")  # fmt: skip
    png, svg = style.series_chart(chart, tmp_path / "fig1", "ja", "Asia/Tokyo")
    assert png.read_bytes().startswith(b"\x89PNG")
    text = svg.read_text(encoding="utf-8")
    assert "23/TCP 国内" in text and "23/TCP 国外" in text and "増加開始 2017-11-01" in text
    assert "日付（Asia/Tokyo）" in text and "2017-10-31" in text
    assert style.cjk_font() in text


def test_line_labels_name_port_and_segment() -> None:
    assert style.split_key("23/tcp domestic") == ("23/tcp", "domestic")
    assert style.split_key("52869/tcp") == ("52869/tcp", "all")
    assert style.line_label("2323/tcp foreign", "en") == "2323/TCP foreign"
    assert style.line_label("52869/tcp", "ja") == "52869/TCP"
    assert style.line_label("23/tcp unknown", "ja") == "23/TCP 不明"
    # lines an older model summed over its ports still say which ports
    assert style.line_label("domestic", "ja", ["23/tcp", "2323/tcp"]) == "国内 (23+2323/TCP)"


def test_flow_boxes_come_from_the_evidence(tmp_path: Path) -> None:
    texts = flow_texts(FLOW, "en")
    assert "52869/TCP" in texts[0] and "CVE-2014-8361" in texts[0]
    assert "[redacted]/okiru.sh" in texts[1] and "95 sources" in texts[2]
    assert "23/TCP / 2323/TCP" in texts[3]
    other = flow_texts(FLOW | {"exploit_port": "37215/tcp", "scan_ports": ["5555/tcp"]}, "ja")
    assert "37215/TCP" in other[0] and "5555/TCP" in other[3]
    png, svg = flow_figure(FLOW, tmp_path / "flow", "ja")
    assert png.stat().st_size > 1000 and "感染した機器" in svg.read_text(encoding="utf-8")
