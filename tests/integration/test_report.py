"""``teiten report`` on the seed scenario: structure, golden text, redaction, escaping, PDF,
one time zone for both languages, and a report that reads without writing or sending."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from teiten.analysis.payloads import sensor_addresses
from teiten.analysis.window import resolve_window
from teiten.app.detect import run_detection
from teiten.app.engine import open_engine
from teiten.app.ingest import ingest
from teiten.app.report import build_report, report_tz, write_report
from teiten.backcheck.model import Match, Probe
from teiten.config import Settings, load_settings
from teiten.report.facts import BackcheckFact, section_sources
from teiten.report.model import Report, Section
from teiten.report.render import render
from teiten.secrecy import Secrecy
from teiten.simulate import SimulationResult

BASELINES = Path(__file__).parents[1] / "baselines" / "report"
SENSOR_NET = "203.0.113.0/24"
UPDATE = os.environ.get("TEITEN_UPDATE_GOLDEN") == "1"
MODELS = ("LAN-WH300N/DR", "LAN-W300N/R", "LAN-W300N3L", "LAN-WH300N/DGRU")
INJECTIONS = (
    "<script>document.title='pwned'</script>",
    "<img src=x onerror=\"document.body.appendChild(document.createElement('pwned'))\">",
    "[click](javascript:document.title='pwned')",
    "```\n# heading\n``````\n| a | b |",
    "</pre><svg onload=document.title='pwned'>",
)


@pytest.fixture(scope="module")
def store(npa_small: SimulationResult, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = load_settings(
        env={},
        overrides={
            "data": str(tmp_path_factory.mktemp("report") / "store"),
            "sensor_networks": [SENSOR_NET],
            "sensor": "test-sensor",
            "tz": "Asia/Tokyo",
        },
    )
    ingest(npa_small.pcaps, settings)
    return settings


@pytest.fixture(scope="module")
def reports(store: Settings) -> dict[str, Report]:
    return {lang: build_report(store, tz=report_tz(store)) for lang in ("ja", "en")}


@pytest.fixture(scope="module")
def guard(store: Settings) -> Secrecy:
    with open_engine(store) as engine:
        return Secrecy([SENSOR_NET], sensor_addresses(engine))


def _golden(name: str, text: str) -> None:
    path = BASELINES / name
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs (TEITEN_UPDATE_GOLDEN=1)"


def test_one_section_per_campaign_with_numbered_figures(reports: dict[str, Report]) -> None:
    r = reports["ja"]
    assert r.tz == reports["en"].tz == "Asia/Tokyo" and r.date == r.last
    assert r.to_json() == reports["en"].to_json()  # one report, whatever the language
    (s,) = r.sections
    assert s.ports[0] == "52869/tcp" and s.onset == "2017-11-01"
    assert s.figures == {"trend": 1, "sample": 2, "segments": 3, "flow": 4}
    assert s.sample is not None and "[redacted]" in s.sample["request"]
    assert any("busybox wget http://[redacted]/" in c for c in s.sample["injected"])
    assert s.mirai_ports == ["23/tcp", "2323/tcp"] and s.backcheck is None
    assert s.flow is not None and s.flow["scan_ports"] == ["23/tcp", "2323/tcp"]
    logitec = next(a for a in s.advisories if a["vendor"]["en"] == "Logitec")
    assert logitec["vendor"]["ja"] == "ロジテック社"
    assert len(logitec["products"]) == 11
    json.loads(r.to_json())


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_markdown_and_chart_data_match_the_golden_files(
    reports: dict[str, Report], tmp_path: Path, lang: str
) -> None:
    paths = render(reports[lang], "md", lang, tmp_path)
    _golden(f"report.{lang}.md", paths[0].read_text(encoding="utf-8"))
    charts = [c for s in reports[lang].sections for c in s.charts]
    _golden(f"charts-{lang}.json", json.dumps([c.__dict__ for c in charts], indent=1) + "\n")
    assert all(p.exists() for p in paths[1:]) and {p.suffix for p in paths[1:]} == {".png", ".svg"}


def _texts(paths: list[Path]) -> dict[Path, str]:
    out = {}
    for p in paths:
        if p.suffix == ".pdf":
            out[p] = subprocess.run(
                ["pdftotext", "-layout", str(p), "-"], check=True, capture_output=True, text=True
            ).stdout
        elif p.suffix in (".html", ".md", ".svg"):
            out[p] = p.read_text(encoding="utf-8")
    return out


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_no_output_names_a_sensor_address(
    reports: dict[str, Report], guard: Secrecy, tmp_path: Path, lang: str
) -> None:
    paths = [p for fmt in ("html", "md", "pdf") for p in render(reports[lang], fmt, lang, tmp_path)]
    texts = _texts(paths)
    assert len(texts) == len(paths) - 3  # every file but the three PNGs
    for path, text in texts.items():
        assert guard.leaks(text) == [], path.name
        assert "198.51.100." not in text, path.name  # download hosts masked too
    pdf = re.sub(r"\s+", "", texts[tmp_path / f"report.{lang}.pdf"])
    for words in ("52869/TCP", "2017-11-01", "CVE-2014-8361", *MODELS):
        assert words in pdf, words
    mirai = "Mirai ボットの特徴を有していました" if lang == "ja" else "theMiraifeature"
    assert mirai.replace(" ", "") in pdf


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="needs poppler-utils")
def test_pdf_pages_render(reports: dict[str, Report], tmp_path: Path) -> None:
    (pdf,) = render(reports["ja"], "pdf", "ja", tmp_path)
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert 3 <= len(pages) <= 8


def test_internal_report_keeps_sensor_addresses(store: Settings, tmp_path: Path) -> None:
    r = build_report(store, tz="UTC", internal=True)
    assert r.sections[0].sample is not None
    assert re.search(r"Host: 203\.0\.113\.\d+", r.sections[0].sample["request"])


def _hostile(report: Report) -> Report:
    r = copy.deepcopy(report)
    section: Section = r.sections[0]
    assert section.sample is not None
    section.sample["request"] = "POST /" + "\n".join(INJECTIONS) + " HTTP/1.1"
    section.sample["injected"] = list(INJECTIONS)
    section.backcheck = BackcheckFact(
        len(INJECTIONS), 52869, 1, {s: 1 for s in INJECTIONS},
        [Match(s, s, "logitec-2017-12-19", "affected", 1) for s in INJECTIONS],
    )  # fmt: skip
    return r


def test_markdown_interprets_no_attacker_text(reports: dict[str, Report], tmp_path: Path) -> None:
    (md, *_) = render(_hostile(reports["en"]), "md", "en", tmp_path)
    text = md.read_text(encoding="utf-8")
    outside = re.sub(r"(?ms)^(`{3,})text\n.*?\n\1$", "", text)
    for raw in ("<script>", "<img", "](javascript:", "<svg", "```\n# heading"):
        assert re.search(r"(?<!\\)" + re.escape(raw), outside) is None, raw
    assert "\\<script\\>" in text  # the back-check banners and models, escaped inline


def test_html_escapes_attacker_text(reports: dict[str, Report], tmp_path: Path) -> None:
    (page,) = render(_hostile(reports["en"]), "html", "en", tmp_path)
    html = page.read_text(encoding="utf-8")
    for raw in ("<script>", "<img src=x", "<svg onload"):
        assert raw not in html
    assert "&lt;script&gt;" in html and "data:image/png;base64," in html
    assert not re.search(r"""src=["']?(?:https?:|//)""", html)  # nothing loaded from outside
    # links only to https references, never opening the report to the target
    for anchor in re.findall(r"<a\b[^>]*>", html):
        assert re.fullmatch(r'<a href="https://[^"\s]+" rel="noreferrer noopener">', anchor)


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium")
def test_no_script_runs_in_a_browser(reports: dict[str, Report], tmp_path: Path) -> None:
    (page,) = render(_hostile(reports["en"]), "html", "en", tmp_path)
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [
            "chromium", "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--no-first-run",
            "--disable-sync", "--disable-quic", f"--user-data-dir={profile}",
            "--virtual-time-budget=2000", "--dump-dom", page.as_uri(),
        ],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    assert "<title>Internet observation report" in dom
    assert "pwned</title>" not in dom and "<pwned" not in dom and "<script" not in dom
    assert "&lt;script&gt;document.title" in dom


def test_report_command(store: Settings, tmp_path: Path) -> None:
    from teiten.cli.report import report_command

    result = CliRunner().invoke(
        report_command,
        ["--lang", "en", "--format", "md", "--out", str(tmp_path / "r"), "--to", "2017-12-18"],
        obj=store,
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "report.en.md" in result.output
    assert "2017-12-18" in (tmp_path / "r" / "report.en.md").read_text(encoding="utf-8")


def _numbers(text: str) -> list[str]:
    """Every 'before → after' pair and every date of a rendered report, in order."""
    return re.findall(r"\d+\.\d → \d+\.\d|\d{4}-\d{2}-\d{2}", text)


def test_ja_and_en_state_the_same_numbers(reports: dict[str, Report], tmp_path: Path) -> None:
    texts = {
        lang: render(reports[lang], "md", lang, tmp_path)[0].read_text(encoding="utf-8")
        for lang in ("ja", "en")
    }
    tables = {
        lang: [line for line in text.splitlines() if line.startswith("| ") and "→" in line]
        for lang, text in texts.items()
    }
    assert tables["ja"] and [_numbers(x) for x in tables["ja"]] == [
        _numbers(x) for x in tables["en"]
    ]
    # the seed's capture starts and ends at UTC midnight: in JST both edge days are partial
    assert reports["en"].partial == ["2017-10-01", "2017-12-19"]
    assert "2017-12-19 (partial)" in texts["en"] and "2017-12-19(一部)" in texts["ja"]
    assert "Asia/Tokyo" in texts["en"] and "Asia/Tokyo" in texts["ja"]
    (s,) = reports["en"].sections
    assert all(c.partial == ["2017-10-01", "2017-12-19"] and c.tz == "Asia/Tokyo" for c in s.charts)
    for rise in s.rises:  # partial days are left out of the means
        assert rise.partial_edge == ["2017-12-19"] and rise.days == 48


def test_japanese_report_is_japanese(reports: dict[str, Report], tmp_path: Path) -> None:
    (md, *_) = render(reports["ja"], "md", "ja", tmp_path)
    text = md.read_text(encoding="utf-8")
    body = re.sub(r"(?ms)^(`{3,})text\n.*?\n\1$", "", text)  # the captured request is data
    body = re.sub(r"\]\(https?://[^)]*\)|\(report\.ja-files/[^)]*\)", "", body)
    for english in ("Logitec", "SDK used by many vendors", "command injection", "notice on",
                    "alert on", "Mirai variant activity"):  # fmt: skip
        assert english not in body, english
    assert "ロジテック社は" in body and "全 0 モデル" not in body
    assert "本節の発信元" not in body  # no back-check was stored: no back-check paragraph


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        _Hook.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _snapshot(settings: Settings) -> dict[str, str]:
    """Every file of the data directory and its SHA-256.

    SQLite's shared-memory index (``-shm``) is left out, and a write-ahead log
    counts only when it holds something: a reader of a WAL database may create
    both, empty, without changing the database.
    """
    root = settings.data_dir
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and not p.name.endswith("-shm")
        and not (p.name.endswith("-wal") and p.stat().st_size == 0)
    }


def _alert_rows(settings: Settings) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(settings.data_dir / "catalog.sqlite")
    try:
        return db.execute("SELECT * FROM alerts ORDER BY id").fetchall()
    finally:
        db.close()


def test_report_is_a_pure_read(
    settings: Settings, npa_small: SimulationResult, tmp_path: Path
) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        s = settings.replace(
            webhook_url=f"http://127.0.0.1:{server.server_port}/hook",
            webhook_secret="k3y",
        )
        ingest(npa_small.pcaps, s)
        _Hook.received = []
        before = _snapshot(s)
        for lang in ("ja", "en"):  # nothing stored yet: detected in memory, and said so
            (md, *_) = write_report(s, tmp_path / "a", lang=lang, fmts=("md",))
            said = "保存も通知もしていません" if lang == "ja" else "neither stored nor delivered"
            assert said in md.read_text(encoding="utf-8")
        assert _snapshot(s) == before and _Hook.received == []

        found = run_detection(s)  # teiten detect stores and delivers
        assert found.alerts and _Hook.received
        _Hook.received = []
        before, rows = _snapshot(s), _alert_rows(s)
        for window in ((None, None), ("2017-10-01", "2017-10-31")):
            for lang in ("ja", "en"):
                (md, *_) = write_report(
                    s, tmp_path / "b", lang=lang, fmts=("md",), first=window[0], last=window[1]
                )
        assert _snapshot(s) == before and _alert_rows(s) == rows and _Hook.received == []
        assert {a[12] for a in rows} == {"new"}  # no state was ended by the October report
        full = write_report(s, tmp_path / "c", lang="en", fmts=("md",))[0]
        assert "neither stored nor delivered" not in full.read_text(encoding="utf-8")
        # a window starting after the stored onset still reads the baseline before it
        whole, late = build_report(s), build_report(s, first="2017-11-15", last="2017-12-18")
        assert late.alerts_from == "stored" and late.sections
        assert [r.before for r in late.sections[0].rises] == [
            r.before for r in whole.sections[0].rises
        ]
        assert _snapshot(s) == before and _Hook.received == []
    finally:
        server.shutdown()
        server.server_close()


def test_back_check_per_section_in_the_report_language(
    store: Settings, reports: dict[str, Report], tmp_path: Path
) -> None:
    (section,) = reports["en"].sections
    with open_engine(store) as engine:
        window = resolve_window(engine, None, None, "Asia/Tokyo")
        assert window is not None
        sources = sorted(section_sources(engine, section.rises, window, "JP"))
    probes = [
        Probe(sources[0], 52869, server_header="Realtek/1.0"),
        Probe(sources[1], 52869, state="closed"),
        Probe("192.0.2.77", 52869, server_header="Realtek/1.0"),  # not a source of the section
    ]
    r = build_report(store, tz="Asia/Tokyo", probes=probes)
    b = r.sections[0].backcheck
    assert b is not None and (b.checked, b.open_on_port, b.banners) == (2, 1, {"Realtek": 1})
    ja = render(r, "md", "ja", tmp_path / "ja")[0].read_text(encoding="utf-8")
    en = render(r, "md", "en", tmp_path / "en")[0].read_text(encoding="utf-8")
    assert "調査した 2 件のうち 1 件で宛先ポート 52869 が開いていました" in ja
    assert "of 2 sources checked, 1 had port 52869 open" in en
    assert "sources checked" not in ja and "192.0.2.77" not in ja + en
