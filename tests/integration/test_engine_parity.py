"""DuckDB and Spark give the same answers over the same store.

Every statement of ``teiten.sql`` runs on both engines over the simulator's
seed scenario (plus IPv6 packets, a Cowrie log and back-check rows) and must
return the same rows; every view too; and the analysis commands print the
same text with ``--engine spark`` as without.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner

from teiten.analysis.window import Window
from teiten.app.engine import scope
from teiten.app.ingest import ingest
from teiten.cli.main import cli
from teiten.config import Settings
from teiten.engine import Engine, connect
from teiten.enrich.country import country_code
from teiten.fingerprint import registry
from teiten.schema import HOUR_NS
from teiten.simulate import SimulationResult
from teiten.sql import portview as pv  # the dashboard's port page
from teiten.sql import sessions, sources, traffic
from teiten.sql.dialect import Dialect
from teiten.sql.statement import STATEMENTS
from teiten.store.lake import Lake

pytestmark = pytest.mark.spark

DATA = Path(__file__).parent.parent / "data"
HOME = country_code("JP")
FPS = [(f.bit, f.name) for f in registry.registered()]
PORTS = [("tcp", 23), ("tcp", 2323), ("tcp", 52869), ("udp", 53)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, npa_small: SimulationResult) -> Settings:
    from teiten.config import load_settings

    root = tmp_path_factory.mktemp("parity")
    settings = load_settings(
        env={},
        overrides={
            "data": str(root / "store"),
            "sensor_networks": ["203.0.113.0/24"],
            "tz": "Asia/Tokyo",
        },
    )
    inputs = [*npa_small.pcaps, DATA / "eth_ipv6.pcap", DATA / "cowrie" / "cowrie.json"]
    ingest(inputs, settings)
    env = {"TEITEN_CONFIG": ""}
    data = str(settings.data_dir)
    r = CliRunner().invoke(
        cli, ["backcheck", "import", str(DATA / "scans" / "nmap.xml"), "--data", data], env=env
    )
    assert r.exit_code == 0, r.output
    return settings


@pytest.fixture(scope="module")
def engines(store: Settings) -> Iterator[dict[str, Engine]]:
    with Lake(store.data_dir) as lake:
        opened = {
            name: connect(name, lake, scope(store.replace(engine=name, spark_master="local[2]")))
            for name in ("duckdb", "spark")
        }
        try:
            yield opened
        finally:
            for e in opened.values():
                e.close()


def _window(by: str = "day") -> Window:
    return Window.from_dates(dt.date(2017, 10, 1), dt.date(2017, 12, 18), "Asia/Tokyo", by)


def _hours(w: Window) -> tuple[int, int]:
    return w.start_ns // HOUR_NS, w.end_ns // HOUR_NS


def _slice(segment: str, port: int = 23) -> traffic.Slice:
    w = Window.from_dates(dt.date(2017, 11, 1), dt.date(2017, 11, 14), "Asia/Tokyo")
    return traffic.Slice("tcp", port, segment, w.start_ns, w.end_ns, HOME)


def _nov(start: bool) -> int:
    w = Window.from_dates(dt.date(2017, 11, 1), dt.date(2017, 11, 30), "Asia/Tokyo")
    return w.start_ns if start else w.end_ns


Case = Callable[[Dialect], str]

SOURCES = [
    sources.Source.of(ipaddress.ip_address(a))
    for a in (
        "202.250.118.220",  # npa_small (seed 5): a Mirai bot that also sent a CVE-2014-8361 exploit
        "198.51.100.23",  # the Cowrie log's SSH client (sessions, logins)
        "2001:db8:1::10",  # eth_ipv6.pcap's and the Cowrie log's IPv6 client
        "192.0.2.10",  # the Cowrie log's sensor: received sessions
        "2001:db8:2::1",  # eth_ipv6.pcap's server: received packets
    )
]
SUSPICION = sources.Suspicion(0, 0.5, 2)
NETWORKS = [
    sources.Network(),
    sources.Network.prefix(ipaddress.ip_network("202.250.118.0/24")),
    sources.Network.prefix(ipaddress.ip_network("2001:db8:1::/48")),
    sources.Network(asn=0),
]


def _each_source(build: Callable[[Dialect, sources.Source], str]) -> list[Case]:
    """One case per address of :data:`SOURCES`."""

    def case(src: sources.Source) -> Case:
        return lambda d: build(d, src)

    return [case(s) for s in SOURCES]


def _suspects(network: sources.Network, start_ns: int, end_ns: int) -> Case:
    return lambda d: sources.suspect_sources(
        d, FPS, SUSPICION, start_ns=start_ns, end_ns=end_ns, network=network, limit=10_000
    )


CASES: dict[str, list[Case]] = {
    "traffic.span": [
        lambda d: traffic.span(d),
        lambda d: traffic.span(d, "2017-10-01", "2017-12-18"),
        lambda d: traffic.span(d, "2017-11-01", "2017-11-01"),
    ],
    "traffic.span_days": [lambda d: traffic.span_days(d)],
    "traffic.active_addresses": [
        lambda d: traffic.active_addresses(d, _window()),
        lambda d: traffic.active_addresses(d, _window("hour")),
    ],
    "traffic.port_series": [
        *(
            (
                lambda d, s=split: traffic.port_series(
                    d, _window(), PORTS, split=s, home=HOME, fingerprints=FPS, with_sources24=True
                )
            )
            for split in traffic.SPLITS
        ),
        lambda d: traffic.port_series(d, _window("hour"), PORTS[:1], split="domestic", home=HOME),
    ],
    "traffic.top_ports": [lambda d: traffic.top_ports(d, _window(), home=HOME, top=30)],
    # the day sketches (the store's day zone is Asia/Tokyo)
    "traffic.sketch_rows": [
        lambda d: traffic.sketch_rows(d, traffic.sketch_days(_window())),
        lambda d: traffic.sketch_rows(d, traffic.sketch_days(_window()), PORTS, country=HOME),
        lambda d: traffic.sketch_rows(d, traffic.sketch_days(_window()), within=(6, 20, 3000)),
    ],
    "traffic.segment_rows": [
        lambda d: traffic.segment_rows(d, traffic.sketch_days(_window()), PORTS),
        lambda d: traffic.segment_rows(d, traffic.sketch_days(_window()), within=(17, 0, 65535)),
    ],
    # the hour sketches of busy ports, and whether they hold every packet of the days
    "traffic.hour_sketch_gap": [
        lambda d: traffic.hour_sketch_gap(d, traffic.sketch_days(_window()), PORTS),
        lambda d: traffic.hour_sketch_gap(d, traffic.sketch_days(_window()), [("udp", 1)]),
    ],
    "traffic.hour_segment_rows": [
        lambda d: traffic.hour_segment_rows(
            d, traffic.sketch_days(_window()), _hours(_window("hour")), PORTS
        ),
    ],
    "traffic.port_candidates": [lambda d: traffic.port_candidates(d, _window(), top=5)],
    "traffic.busy_candidates": [
        lambda d: traffic.busy_candidates(d, traffic.sketch_days(_window()), min_sources=5),
        lambda d: traffic.busy_candidates(d, traffic.sketch_days(_window()), min_sources=1),
    ],
    "traffic.busy_port_days": [
        lambda d: traffic.busy_port_days(d, _window(), home=HOME, min_sources=5),
        lambda d: traffic.busy_port_days(d, _window(), home=HOME, min_sources=1),
    ],
    "traffic.slice_source_keys": [
        lambda d, s=seg: traffic.slice_source_keys(d, _slice(s), limit=500_000)
        for seg in ("domestic", "foreign", "all")
    ],
    "traffic.slice_fingerprint_shares": [
        lambda d: traffic.slice_fingerprint_shares(d, _slice("domestic"), FPS),
        lambda d: traffic.slice_fingerprint_shares(d, _slice("all", 52869), FPS),
    ],
    "traffic.slice_sources_and_share": [
        lambda d: traffic.slice_sources_and_share(d, _slice("domestic"), FPS[0][0]),
        lambda d: traffic.slice_sources_and_share(d, _slice("foreign"), None),
    ],
    "traffic.slice_busiest_sources": [
        lambda d: traffic.slice_busiest_sources(d, _slice("all", 52869), limit=10_000)
    ],
    "traffic.slice_sources": [
        lambda d: traffic.slice_sources(d, _slice("domestic")),
        lambda d: traffic.slice_sources(d, _slice("all"), among4=[0x0A000001, 0xC0A80001]),
        lambda d: traffic.slice_sources(d, _slice("all"), among4=[]),
    ],
    "sessions.session_list": [
        lambda d: sessions.session_list(d, sessions.SessionFilter(), limit=100_000),
        lambda d: sessions.session_list(
            d, sessions.SessionFilter(cve="CVE-2014-8361", start_ns=_nov(True)), limit=50
        ),
        lambda d: sessions.session_list(
            d, sessions.SessionFilter(signature="sig.mirai-telnet-credentials"), limit=50
        ),
    ],
    "sessions.session_count": [
        lambda d: sessions.session_count(d, sessions.SessionFilter()),
        lambda d: sessions.session_count(
            d, sessions.SessionFilter(cve="CVE-2014-8361", end_ns=_nov(False))
        ),
    ],
    "sessions.session_by_id": [lambda d: sessions.session_by_id(d, "s1-1")],
    "sessions.first_exploit": [
        lambda d: sessions.first_exploit(d, [52869, 37215], _nov(True), _nov(False))
    ],
    "sessions.malicious_sessions": [lambda d: sessions.malicious_sessions(d, ["exploit", "bot"])],
    "sessions.sensor_addresses": [lambda d: sessions.sensor_addresses(d)],
    "sessions.indicator_list": [lambda d: sessions.indicator_list(d)],
    "sessions.indicator_values": [lambda d: sessions.indicator_values(d)],
    # -- the dashboard's port page (teiten.sql.portview): rollups (Tokyo days, hours) and
    # packets (Kolkata's half-hour offset) --
    **{
        f"portview.{name}": [
            lambda d, f=fn: f(d, _window(), "tcp", 52869, limit=40),
            lambda d, f=fn: f(d, _window("hour"), "tcp", 23, limit=40),
            lambda d, f=fn: f(
                d,
                Window.from_dates(dt.date(2017, 11, 1), dt.date(2017, 11, 7), "Asia/Kolkata"),
                "tcp",
                23,
                limit=40,
            ),
            lambda d, f=fn: f(d, _window(), "udp", 53, limit=5),
        ]
        for name, fn in (
            ("port_sources", pv.port_sources),
            ("port_countries", pv.port_countries),
            ("port_asns", pv.port_asns),
        )
    },
    "portview.port_fingerprints": [
        lambda d: pv.port_fingerprints(d, _window(), "tcp", 23, FPS),
        lambda d: pv.port_fingerprints(
            d,
            Window.from_dates(dt.date(2017, 11, 1), dt.date(2017, 11, 7), "Asia/Kolkata"),
            "tcp",
            2323,
            FPS,
        ),
        lambda d: pv.port_fingerprints(d, _window(), "tcp", 52869, []),
    ],
    "portview.port_sessions": [
        lambda d: pv.port_sessions(d, "tcp", 52869, _nov(True), _nov(False), limit=5),
        lambda d: pv.port_sessions(d, "tcp", 23, _nov(True), _nov(False), limit=1000),
    ],
    # the port lists (day tables of the store's Tokyo days)
    "portview.port_group_rows": [
        lambda d: pv.port_group_rows(d, traffic.sketch_days(_window()), "tcp", 23),
        lambda d: pv.port_group_rows(d, traffic.sketch_days(_window()), "udp", 53),
    ],
    "portview.port_top_rows": [
        lambda d: pv.port_top_rows(d, traffic.sketch_days(_window()), "tcp", 23),
        lambda d: pv.port_top_rows(d, traffic.sketch_days(_window()), "udp", 9),
    ],
    # -- one source's profile and the notification feed (teiten.sql.sources) --
    "sources.source_packets": _each_source(lambda d, s: sources.source_packets(d, s, FPS)),
    "sources.source_ports": _each_source(lambda d, s: sources.source_ports(d, s, limit=100)),
    "sources.source_sessions": _each_source(lambda d, s: sources.source_sessions(d, s, limit=20)),
    "sources.source_session_kinds": _each_source(sources.source_session_kinds),
    "sources.source_logins": _each_source(lambda d, s: sources.source_logins(d, s, limit=20)),
    "sources.source_login_counts": _each_source(sources.source_login_counts),
    "sources.source_received": _each_source(sources.source_received),
    "sources.suspect_sources": [
        *(_suspects(n, 0, 1 << 62) for n in NETWORKS),
        _suspects(sources.Network(), _nov(True), _nov(False)),
    ],
    "sources.sources_top_ports": [
        lambda d: sources.sources_top_ports(d, SOURCES, start_ns=0, end_ns=1 << 62),
        lambda d: sources.sources_top_ports(d, [], start_ns=0, end_ns=1 << 62),
    ],
    "sources.sources_cves": [
        lambda d: sources.sources_cves(d, SOURCES, start_ns=_nov(True), end_ns=_nov(False))
    ],
    "sources.sensor_keys": [lambda d: sources.sensor_keys(d)],
    "sources.sources_fingerprints": [
        lambda d: sources.sources_fingerprints(d, SOURCES, FPS, start_ns=0, end_ns=1 << 62)
    ],
    "sources.sources_logins": [
        lambda d: sources.sources_logins(d, SOURCES, start_ns=0, end_ns=1 << 62)
    ],
    "sources.session_sources": [lambda d: sources.session_sources(d, ["exploit", "bot"])],
}

VIEWS = ("packets", "packets_raw", "series", "sessions", "logins", "indicators", "probes")


def _value(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 9) if math.isfinite(v) else v
    if isinstance(v, list):
        return [_value(x) for x in v]
    if isinstance(v, dict):
        return {k: _value(x) for k, x in v.items()}
    return v


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return [_value(r) for r in table.to_pylist()]


def _same(engines: dict[str, Engine], build: Case, *, ordered: bool) -> int:
    got = {n: _rows(e.query(build(e.dialect))) for n, e in engines.items()}
    duck, spark = got["duckdb"], got["spark"]
    if not ordered:
        duck, spark = sorted(duck, key=repr), sorted(spark, key=repr)
    assert spark == duck
    return len(duck)


def test_every_statement_has_a_parity_case() -> None:
    assert set(CASES) == set(STATEMENTS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_statement_parity(engines: dict[str, Engine], name: str) -> None:
    rows = 0
    for build in CASES[name]:
        sql = build(engines["duckdb"].dialect)
        rows += _same(engines, build, ordered="ORDER BY" in sql.rsplit(")", 1)[-1])
    if name not in ("sessions.session_by_id",):
        assert rows > 0, f"{name}: no rows on either engine, so the comparison proves nothing"


@pytest.mark.parametrize("view", VIEWS)
def test_view_parity(engines: dict[str, Engine], view: str) -> None:
    assert _same(engines, lambda d: f"SELECT * FROM {view}", ordered=False) > 0


def test_ipv6_text_is_the_same(engines: dict[str, Engine]) -> None:
    sql = "SELECT DISTINCT src FROM packets WHERE ip_version = 6"
    assert _same(engines, lambda d: sql, ordered=False) > 0


def _cli(store: Settings, engine: str, *args: str) -> str:
    env = {"TEITEN_CONFIG": ""}
    base = ["--data", str(store.data_dir), "--engine", engine]
    r = CliRunner().invoke(cli, [*args, *base], env=env)
    assert r.exit_code == 0, r.output
    return r.stdout


COMMANDS = [
    ("trend", "23/tcp", "2323/tcp", "--split", "domestic", "--format", "json"),
    ("trend", "52869/tcp", "--by", "hour", "--from", "2017-11-01", "--to", "2017-11-02",
     "--measure", "sources24", "--measure", "per_address", "--format", "json"),
    ("trend", "23/tcp", "--split", "fingerprint", "--tz", "Asia/Tokyo", "--format", "csv"),
    ("ports", "--top", "25", "--format", "json"),
    ("detect", "--format", "json"),
    ("payloads", "--cve", "CVE-2014-8361", "--limit", "20", "--format", "json"),
    ("indicators", "--format", "json"),
    ("indicators", "--format", "stix"),
    ("query", "SELECT dst_port, count(*) AS n FROM packets GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 9",
     "--format", "json"),
]  # fmt: skip


def _stable(text: str) -> str:
    """STIX bundles carry fresh ids and creation times: compare the rest."""
    if not text.startswith("{"):
        return text
    doc = json.loads(text)
    for obj in doc.get("objects", []):
        for key in ("id", "created", "modified", "valid_from"):
            obj.pop(key, None)
        for key in ("source_ref", "target_ref", "created_by_ref", "object_marking_refs"):
            obj.pop(key, None)
    doc.pop("id", None)
    return json.dumps(doc, sort_keys=True)


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_command_parity(store: Settings, args: tuple[str, ...]) -> None:
    duck = _cli(store, "duckdb", *args)
    assert duck.strip() not in ("", "[]")
    assert _stable(_cli(store, "spark", *args)) == _stable(duck)


def test_alerts_and_report_on_spark(store: Settings, tmp_path: Path) -> None:
    """Alert state written by one engine's ``detect`` is read by the other, and the
    report's Markdown is the same text from either engine."""
    _cli(store, "spark", "detect")
    duck_alerts = _cli(store, "duckdb", "alerts", "--format", "json")
    assert json.loads(duck_alerts) and _cli(store, "spark", "alerts", "--format", "json") == (
        duck_alerts
    )
    texts = {}
    for engine in ("duckdb", "spark"):
        out = tmp_path / engine
        _cli(store, engine, "report", "--lang", "en", "--format", "md", "--out", str(out))
        (md,) = sorted(out.glob("*.md"))
        texts[engine] = md.read_text()
    assert "52869" in texts["duckdb"]
    assert texts["spark"] == texts["duckdb"]
