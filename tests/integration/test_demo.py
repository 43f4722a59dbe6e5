"""`teiten demo`: the seed case end to end shows the November rise."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from teiten.app.demo import run_demo, weekly
from teiten.cli.main import cli
from teiten.config import load_settings


def _mean(rows: list[dict[str, object]], segment: str, before: bool, key: str = "sources") -> float:
    sel = [
        int(r[key])
        for r in rows  # type: ignore[call-overload]
        if r["segment"] == segment and (str(r["date"]) < "2017-11-01") == before
    ]
    return sum(sel) / len(sel)


def test_demo_shows_the_seed_series(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo", load_settings(env={}), scale=0.05, seed=2)
    assert result.ingest.packets == result.simulation.packets
    exploit = result.exploit_series
    assert [r["date"] for r in exploit][:1] == ["2017-10-01"] and len(exploit) == 79
    assert _mean(exploit, "all", False) > 5 * _mean(exploit, "all", True)
    telnet = [r for r in result.telnet_series if r["port"] == "23/tcp"]
    assert _mean(telnet, "domestic", False) > 5 * _mean(telnet, "domestic", True)
    assert _mean(telnet, "foreign", False) < 1.5 * _mean(telnet, "foreign", True)
    for chart in result.charts:
        assert chart.read_bytes().startswith(b"\x89PNG")
    weeks = weekly(exploit)
    assert weeks[0]["week"] == "2017-09-25" and len(weeks) == 13


def test_demo_command_prints_tables(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        cli,
        ["demo", "--out", str(tmp_path / "d"), "--scale", "0.02"],
        env={"TEITEN_CONFIG": ""},
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    for words in ("Top ports", "52869/TCP by week", "domestic (JP-allocated) vs foreign", "chart:"):
        assert words in r.output


def test_demo_without_pdftotext_skips_the_pdfs_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh machine without poppler-utils still runs the demo: HTML reports, PDFs noted."""
    real_which = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name, *a, **k: None if name == "pdftotext" else real_which(name)
    )
    r = CliRunner().invoke(
        cli,
        ["demo", "--out", str(tmp_path / "d"), "--scale", "0.02"],
        env={"TEITEN_CONFIG": ""},
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    written = sorted(p.name for p in (tmp_path / "d").glob("report.*"))
    assert written == ["report.en.html", "report.ja.html"]
    assert "skipped report.ja.pdf: " in r.output and "pdftotext" in r.output
