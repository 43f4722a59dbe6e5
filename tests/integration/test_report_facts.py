"""The report's sentences against its facts, in both languages, on seven small scenarios.

Each scenario is a real capture written with the simulator's packet writer:
per port, how many domestic and foreign sources send SYNs each day. The
stores are reported with in-memory detection (nothing stored) and the text of
BOTH languages is checked against the facts: which segment rose, whether the
rise goes on, headline or other observation, how many sources a sweep had.

Golden reports (Markdown, ja and en) of three scenarios are kept in
``tests/baselines/report/``; regenerate them deliberately with
``TEITEN_UPDATE_GOLDEN=1 pytest tests/integration/test_report_facts.py``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from teiten.app.ingest import ingest
from teiten.app.report import build_report
from teiten.config import Settings, load_settings
from teiten.report.facts import RiseFact
from teiten.report.model import Report
from teiten.report.render import render
from teiten.simulate.pcapwriter import PacketColumns, concat, write_pcap
from teiten.simulate.scenario import Context
from teiten.simulate.traffic import day_times, host_syns

BASELINES = Path(__file__).parents[1] / "baselines" / "report"
UPDATE = os.environ.get("TEITEN_UPDATE_GOLDEN") == "1"
SENSOR_NET = "203.0.113.0/24"
FIRST = dt.date(2017, 10, 1)
DAYS = 60
ONSET = 40


def level(base: int, high: int, start: int = ONSET, end: int = DAYS) -> list[int]:
    """``base`` sources a day, ``high`` from day ``start`` up to (not including) ``end``."""
    return [high if start <= d < end else base for d in range(DAYS)]


@dataclass(frozen=True)
class Flow:
    """SYNs to one TCP port: distinct domestic and foreign sources per day."""

    port: int
    domestic: list[int]
    foreign: list[int]
    packets: int = 2
    """SYNs each source sends a day."""
    heavy: tuple[int, int, int] | None = None
    """(first day, last day, packets a day) sent by one foreign source: a sweep."""


SCENARIOS: dict[str, list[Flow]] = {
    "domestic": [Flow(23, level(3, 60), level(20, 20))],
    "foreign": [Flow(7547, level(10, 10), level(5, 80))],
    "both": [Flow(52869, level(2, 50), level(3, 50))],
    "falling": [Flow(8080, level(4, 70, 30, 42), level(4, 4))],
    "spike": [
        Flow(5555, level(6, 6), level(6, 90, ONSET, ONSET + 3)),
        Flow(445, level(8, 8), level(8, 200, ONSET + 10, ONSET + 11)),
    ],
    "sweep": [Flow(22, level(8, 8), level(8, 8), heavy=(ONSET, ONSET + 3, 3000))],
    "below-earlier": [
        Flow(
            3389,
            level(5, 5),
            [150 if 20 <= d < 23 else (40 if d >= ONSET else 5) for d in range(DAYS)],
        ),
    ],
}
GOLDEN = ("domestic", "foreign", "sweep")


def _capture(path: Path, flows: list[Flow], seed: int = 11) -> Path:
    start = dt.datetime.combine(FIRST, dt.time(), dt.UTC)
    ctx = Context(
        seed=seed, scale=1.0, start_ns=int(start.timestamp()) * 1_000_000_000, days=DAYS,
        first_day=FIRST, network=ipaddress.IPv4Network(SENSOR_NET),
    )  # fmt: skip
    rng = ctx.rng("report-facts")
    domestic, foreign = ctx.addresses(rng, 300, 300)
    parts: list[PacketColumns] = []

    def syns(src: np.ndarray, day: int, port: int) -> None:
        ts = day_times(rng, ctx.start_ns, np.full(src.size, day))
        parts.append(host_syns(rng, ts, src, ctx.hosts(rng, src.size), port, 1, 12))

    for f in flows:
        for day in range(DAYS):
            for pool, n in ((domestic, f.domestic[day]), (foreign, f.foreign[day])):
                if n:
                    syns(np.repeat(rng.choice(pool, n, replace=False), f.packets), day, f.port)
            if f.heavy and f.heavy[0] <= day <= f.heavy[1]:
                syns(np.full(f.heavy[2], foreign[-1], dtype=np.uint32), day, f.port)
    write_pcap(path, concat(parts).sorted_by_time(), [SENSOR_NET])
    return path


_REPORTS: dict[str, Report] = {}


def _report(name: str, factory: pytest.TempPathFactory) -> Report:
    """The report of scenario ``name`` (built once per test run)."""
    if name not in _REPORTS:
        folder = factory.mktemp(f"facts-{name}")
        settings: Settings = load_settings(
            env={},
            overrides={"data": str(folder / "store"), "sensor_networks": [SENSOR_NET], "tz": "UTC"},
        )
        ingest([_capture(folder / f"{name}.pcap", SCENARIOS[name])], settings)
        _REPORTS[name] = build_report(settings)
    return _REPORTS[name]


@pytest.fixture(params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[
        str, Report]:  # fmt: skip
    name = str(request.param)
    return name, _report(name, tmp_path_factory)


def _texts(report: Report, tmp_path: Path) -> dict[str, str]:
    return {
        lang: render(report, "md", lang, tmp_path / lang)[0].read_text(encoding="utf-8")
        for lang in ("ja", "en")
    }


def _rises(report: Report) -> list[RiseFact]:
    return [r for s in report.sections for r in s.rises] + report.others


def _sentences(text: str, needle: str) -> list[str]:
    """The sentences (ja or en) of ``text`` that name ``needle``."""
    return [s for s in re.split(r"(?<=[。.])\s*|\n", text) if needle in s]


def test_sentences_follow_the_facts(scenario: tuple[str, Report], tmp_path: Path) -> None:
    name, report = scenario
    texts = _texts(report, tmp_path)
    en, ja = texts["en"], texts["ja"]
    assert report.alerts_from == "memory"
    assert "neither stored nor delivered" in en and "保存も通知もしていません" in ja
    rises = _rises(report)
    rose_ja = re.compile(r"日本国内[^。]*急増")
    rose_abroad_ja = re.compile(r"日本国外[^。]*急増")
    if name in ("domestic", "foreign", "both", "falling"):
        (rise,) = rises
        assert len(report.sections) == 1
        assert rise.headline and rise.sustained and not report.others
        port = rise.port.upper()
        assert f"# Rise in accesses to destination port {port}" in en
        assert f"# 宛先ポート {port} に対するアクセスの増加について" in ja
        assert rise.rising and rise.after > rise.before
        assert f"{rise.before} → {rise.after}" in en and f"{rise.before} → {rise.after}" in ja
    if name == "domestic":
        assert rise.rose_in == "domestic" and rise.segment == "domestic"
        assert f"{port} from addresses allocated to JP rose sharply" in en
        assert "from addresses allocated to other countries there was no notable rise" in en
        assert "countries other than JP rose" not in en
        assert rose_ja.search(ja) and not rose_abroad_ja.search(ja)
    elif name == "foreign":
        assert rise.rose_in == "foreign" and rise.segment == "foreign"
        assert f"{port} from addresses allocated to countries other than JP rose sharply" in en
        assert "from addresses allocated to JP there was no notable rise" in en
        assert "allocated to JP rose" not in en
        assert rose_abroad_ja.search(ja) and not rose_ja.search(ja)
        assert "日本国内に割り当てられた IP アドレスからは顕著な増加は見られませんでした" in ja
    elif name == "both":
        assert rise.rose_in == "both" and rise.segment == "all"
        assert "both from addresses allocated to JP and from other countries" in en
        assert "no notable rise" not in en
        assert "日本国内・日本国外のいずれに割り当てられた IP アドレスからも増加" in ja
        assert "顕著な増加は見られませんでした" not in ja
    elif name == "falling":
        assert not rise.ongoing and rise.last == "2017-11-11"
        assert "The rise has ended: after 2017-11-11 the level fell back" in en
        assert "この増加は 2017年11月11日を最後に収まっています" in ja
        assert rose_ja.search(ja) and "countries other than JP rose" not in en
    elif name == "spike":
        assert not report.sections and [r.port for r in rises] == ["5555/tcp"]
        (short,) = rises
        assert "short" in short.reasons and not short.headline and short.days == 3
        assert "# Sensor observations" in en and "# 定点観測の結果について" in ja
        assert "Other observations" in en and "その他の観測" in ja
        assert "lasted fewer than 7 full days" in en and "継続が 7 日未満" in ja
        assert "445/TCP" not in en and "445/TCP" not in ja  # one day: not a rise at all
        assert "no rise that meets the headline rule" in en
        assert "見出しの基準を満たすアクセスの増加は観測されませんでした" in ja
    elif name == "sweep":
        assert not report.sections
        (sweep,) = rises
        assert sweep.kind == "sweep" and sweep.behind == 1 and sweep.measure == "packets"
        assert "sweep" in sweep.reasons and not sweep.headline
        assert "# Sensor observations" in en and "# 定点観測の結果について" in ja
        (line,) = _sentences(en, "22/TCP: from")
        assert "1 source (foreign) sent most of the extra packets" in line
        assert "the number of sources did not rise" in en
        assert "国外の発信元 1 件からのパケットが増加しました" in ja
        assert "発信元数は増加していません" in ja
    elif name == "below-earlier":  # sustained, many sources, but no bigger than day 20
        assert not report.sections
        (rise,) = [r for r in rises if r.onset >= "2017-11-01"]
        assert rise.sustained and rise.reasons == ["not_above_earlier"]
        assert rise.after <= rise.largest_before
        assert "no higher than the largest earlier day" in en
        assert "増加前の最大の日を上回らない" in ja
        assert "# Sensor observations" in en and "# 定点観測の結果について" in ja
    # the same numbers in both languages, and in the HTML pages
    pairs = re.compile(r"\d+\.\d → \d+\.\d")
    assert pairs.findall(en) == pairs.findall(ja)
    for lang in ("ja", "en"):
        (page,) = render(report, "html", lang, tmp_path / f"html-{lang}")
        html = page.read_text(encoding="utf-8")
        assert pairs.findall(html) == pairs.findall(en)
        heading = "その他の観測" if lang == "ja" else "Other observations"
        assert (heading in html) == bool(report.others)


def _golden(name: str, text: str) -> None:
    path = BASELINES / name
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs (TEITEN_UPDATE_GOLDEN=1)"


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_scenario_reports(
    name: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    for lang, text in _texts(_report(name, tmp_path_factory), tmp_path).items():
        _golden(f"scenario-{name}.{lang}.md", text)
