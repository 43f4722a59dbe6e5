"""The JSON API of ``teiten serve`` over a real store: the CLI's numbers, errors as JSON,
the guards (token, loopback Host, read only, request budget, headers), and secrecy."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from teiten.app.payloads import sensor_secrecy
from teiten.cli.analysis import ports_command, trend_command
from teiten.cli.detect import alerts_command
from teiten.cli.payloads import payloads_command
from teiten.config import Settings
from teiten.export.jsonable import jsonable
from teiten.secrecy import Secrecy
from teiten.serve import ServeOptions, create_app

TOKEN = "t" * 24
LOCAL = "http://127.0.0.1"


def _client(settings: Settings, **options: Any) -> TestClient:
    options.setdefault("rate", 0)
    return TestClient(create_app(settings, ServeOptions(**options)), base_url=LOCAL)


@pytest.fixture(scope="module")
def client(seed_store: Settings) -> Iterator[TestClient]:
    with _client(seed_store) as c:
        yield c


@pytest.fixture(scope="module")
def secrecy(seed_store: Settings) -> Secrecy:
    return sensor_secrecy(seed_store)


def _cli(command: Any, args: list[str], settings: Settings) -> Any:
    result = CliRunner().invoke(command, [*args, "--format", "json"], obj=settings)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _ok(client: TestClient, url: str) -> Any:
    r = client.get(url)
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    return r.json()


@pytest.mark.parametrize(
    ("url", "args"),
    [
        ("/api/v1/ports", []),
        ("/api/v1/ports?from=2017-11-01&to=2017-11-30&top=5", ["--from", "2017-11-01",
                                                               "--to", "2017-11-30", "--top", "5"]),
        ("/api/v1/ports?tz=UTC&to=2017-10-31", ["--tz", "UTC", "--to", "2017-10-31"]),
    ],
)  # fmt: skip
def test_ports_are_the_cli_rows(
    client: TestClient, seed_store: Settings, url: str, args: list[str]
) -> None:
    rows = _ok(client, url)
    assert rows and rows == _cli(ports_command, args, seed_store)


@pytest.mark.parametrize(
    ("query", "args"),
    [
        ("port=23/tcp&port=2323/tcp&split=domestic",
         ["23/tcp", "2323/tcp", "--split", "domestic"]),
        ("port=52869/tcp&from=2017-10-25&to=2017-11-05&tz=UTC",
         ["52869/tcp", "--from", "2017-10-25", "--to", "2017-11-05", "--tz", "UTC"]),
        ("port=52869/tcp&by=hour&from=2017-11-01&to=2017-11-01&measure=sources24",
         ["52869/tcp", "--by", "hour", "--from", "2017-11-01", "--to", "2017-11-01",
          "--measure", "sources24"]),
        ("port=23/tcp&split=fingerprint&from=2017-11-01&to=2017-11-03",
         ["23/tcp", "--split", "fingerprint", "--from", "2017-11-01", "--to", "2017-11-03"]),
    ],
)  # fmt: skip
def test_trend_is_the_cli_rows(
    client: TestClient, seed_store: Settings, query: str, args: list[str]
) -> None:
    rows = _ok(client, f"/api/v1/trend?{query}")
    assert rows and rows == _cli(trend_command, args, seed_store)


def test_the_seed_case_through_the_api(client: TestClient, seed_store: Settings) -> None:
    alerts = _ok(client, "/api/v1/alerts")
    assert alerts == _cli(alerts_command, [], seed_store)
    onsets = {(a["port"], a["segment"]): a["onset"] for a in alerts}
    assert onsets[("52869/tcp", "all")] == "2017-11-01"
    assert onsets[("23/tcp", "domestic")] == "2017-11-01"
    listed = _ok(client, "/api/v1/campaigns")
    (seed,) = [c for c in listed if "52869/tcp" in c["ports"]]
    assert seed["headline"] and {"23/tcp", "2323/tcp"} <= set(seed["ports"])
    assert "CVE-2014-8361" in seed["cves"]
    detail = _ok(client, f"/api/v1/campaigns/{seed['id']}")
    section = detail["section"]
    assert "okiru" in section["sample"]["request"] or section["sample"]["downloads"]
    models = {p["model"] for a in section["advisories"] for p in a["products"]}
    assert len(models) == 11
    r = client.get("/api/v1/campaigns/c19990101-nothing")
    assert r.status_code == 404 and r.json()["error"] == "no campaign c19990101-nothing"


def test_sessions_match_the_cli_and_mask_the_sensor(
    client: TestClient, seed_store: Settings, secrecy: Secrecy
) -> None:
    page = _ok(client, "/api/v1/sessions?cve=CVE-2014-8361&limit=5")
    cli = _cli(payloads_command, ["--cve", "CVE-2014-8361", "--limit", "5"], seed_store)
    assert page["total"] > 5 and page["sessions"] == secrecy.redact_data(cli)
    one = _ok(client, f"/api/v1/sessions/{page['sessions'][0]['id']}")
    assert one["dst"] == "[redacted]" and "CVE-2014-8361" in one["cves"]
    assert "Host: [redacted]" in one["client_bytes"]
    assert not secrecy.leaks(json.dumps(one))
    assert client.get("/api/v1/sessions/s1-999999999").status_code == 404
    bad = client.get("/api/v1/sessions/not-an-id")
    assert bad.status_code == 400 and "not a session id" in bad.json()["error"]


def test_internal_shows_sensor_addresses(seed_store: Settings) -> None:
    with _client(seed_store, internal=True) as c:
        sid = _ok(c, "/api/v1/sessions?cve=CVE-2014-8361&limit=1")["sessions"][0]["id"]
        assert _ok(c, f"/api/v1/sessions/{sid}")["dst"].startswith("203.0.113.")


def test_indicators_in_three_formats(client: TestClient, secrecy: Secrecy) -> None:
    rows = _ok(client, "/api/v1/indicators")
    assert any(r["value"].endswith("okiru.sh") or "bins.sh" in r["value"] for r in rows)
    csv = client.get("/api/v1/indicators?format=csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("type,value")
    stix = client.get("/api/v1/indicators?format=stix&limit=10")
    bundle = stix.json()
    assert bundle["type"] == "bundle" and any(o["type"] == "indicator" for o in bundle["objects"])
    for text in (json.dumps(rows), csv.text, stix.text):
        assert not secrecy.leaks(text)


def test_advisory_check(client: TestClient) -> None:
    v = _ok(client, "/api/v1/advisories/check?model=LAN-W300N/R&version=Ver2.27")
    assert v["status"] == "affected" and v["fixed_version"] == "2.33"
    ja = _ok(client, "/api/v1/advisories/check?model=LAN-W300N/R&version=2.33&lang=ja")
    assert ja["status"] == "fixed" and ja["lang"] == "ja"
    assert _ok(client, "/api/v1/advisories/check?model=nothing&version=1")["status"] == (
        "unknown_model"
    )


@pytest.mark.parametrize(
    ("url", "status", "says"),
    [
        ("/api/v1/ports?from=2017-13-01", 400, "2017-13-01"),
        ("/api/v1/ports?to=7880-01-20", 400, "outside the dates"),
        ("/api/v1/ports?from=yesterday", 422, "from"),
        ("/api/v1/ports?top=0", 422, "top"),
        ("/api/v1/ports?tz=Mars/Olympus", 400, "Mars/Olympus"),
        ("/api/v1/trend", 422, "port"),
        ("/api/v1/trend?port=http", 400, "http"),
        ("/api/v1/trend?port=23/tcp&split=planet", 422, "split"),
        ("/api/v1/sessions?cve=CVE-1", 422, "cve"),
        ("/api/v1/sessions?limit=100000", 422, "limit"),
        ("/api/v1/indicators?format=xml", 422, "format"),
        ("/api/v1/advisories/check?model=x", 422, "version"),
        ("/api/v1/nothing", 404, "Not Found"),
    ],
)
def test_errors_are_json(client: TestClient, url: str, status: int, says: str) -> None:
    r = client.get(url)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == status and says in body["error"] and "\n" not in body["error"]


def test_read_only_and_headers(client: TestClient) -> None:
    r = client.post("/api/v1/ports")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    ok = client.get("/api/v1/ports")
    csp = ok.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert ok.headers["x-content-type-options"] == "nosniff"
    assert client.get("/api/v1/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 404  # no Swagger UI from a CDN


def test_without_token_only_a_loopback_host_is_answered(seed_store: Settings) -> None:
    with TestClient(create_app(seed_store), base_url="http://dashboard.example") as c:
        r = c.get("/api/v1/ports")
    assert r.status_code == 421 and "loopback" in r.json()["error"]
    with TestClient(create_app(seed_store), base_url="http://[::1]:8080") as c:
        assert c.get("/api/v1/alerts").status_code == 200


def test_token(seed_store: Settings) -> None:
    with _client(seed_store, token=TOKEN) as c:
        denied = c.get("/api/v1/alerts")
        assert denied.status_code == 401 and denied.headers["www-authenticate"].startswith("Basic")
        assert c.get("/api/v1/alerts", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/v1/alerts", headers={"Authorization": f"Bearer {TOKEN}"}).is_success
        basic = base64.b64encode(f"analyst:{TOKEN}".encode()).decode()
        assert c.get("/api/v1/alerts", headers={"Authorization": f"Basic {basic}"}).is_success
        assert c.get("/api/v1/alerts", headers={"Authorization": "Basic !!"}).status_code == 401


def test_request_budget(seed_store: Settings) -> None:
    with _client(seed_store, rate=0.001, burst=3) as c:
        codes = [c.get("/api/v1/alerts").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_openapi_documents_the_contract(client: TestClient) -> None:
    paths = _ok(client, "/api/v1/openapi.json")["paths"]
    for path in (
        "/api/v1/ports", "/api/v1/trend", "/api/v1/alerts", "/api/v1/campaigns/{campaign_id}",
        "/api/v1/sessions", "/api/v1/sessions/{session_id}", "/api/v1/sources/{address}",
        "/api/v1/indicators", "/api/v1/advisories/check", "/api/v1/notify",
    ):  # fmt: skip
        assert path in paths
    assert not any(p == "/" or p.startswith("/ports/") for p in paths)  # pages are not API


def _busiest_source(settings: Settings) -> str:
    from teiten.app.engine import run_query

    rows = run_query(
        settings,
        "SELECT src, count(*) AS n FROM sessions WHERE list_contains(cves, 'CVE-2014-8361') "
        "GROUP BY src ORDER BY n DESC, src LIMIT 1",
    ).to_pylist()
    return str(rows[0]["src"])


def test_sources(client: TestClient, seed_store: Settings, secrecy: Secrecy) -> None:
    from teiten.app.sources import source_profile

    address = _busiest_source(seed_store)
    profile = _ok(client, f"/api/v1/sources/{address}")
    assert profile == secrecy.redact_data(jsonable(source_profile(seed_store, address)))
    assert profile["address"] == address and "CVE-2014-8361" in json.dumps(profile)
    assert client.get("/api/v1/sources/198.18.0.1").status_code == 404
    bad = client.get("/api/v1/sources/not-an-address")
    assert bad.status_code == 400 and "not-an-address" in bad.json()["error"]
    sensor = client.get("/api/v1/sources/203.0.113.5")
    assert sensor.status_code == 404 and "203.0.113" not in sensor.text


def test_notify(client: TestClient, seed_store: Settings, secrecy: Secrecy) -> None:
    from teiten.app.notify import notify_feed

    address = _busiest_source(seed_store)
    prefix = ".".join(address.split(".")[:3]) + ".0/24"
    rows = _ok(client, f"/api/v1/notify?prefix={prefix}")
    assert rows == jsonable(notify_feed(seed_store, "prefix", network=prefix))
    assert any(s["address"] == address for r in rows for s in r["sources"])
    assert not secrecy.leaks(json.dumps(rows))
    both = client.get(f"/api/v1/notify?prefix={prefix}&asn=4713")
    assert both.status_code == 400 and "exactly one" in both.json()["error"]
    no_asn = client.get("/api/v1/notify?asn=4713")
    assert no_asn.status_code == 400 and "asn_source" in no_asn.json()["error"]


def test_warm_start_fills_the_caches(seed_store: Settings) -> None:
    import time

    app = create_app(seed_store, ServeOptions(rate=0, warm=True))
    context = app.state.context
    with TestClient(app, base_url=LOCAL):
        deadline = time.monotonic() + 120
        files = {"report-file:ja:html:False", "report-file:en:html:False"}
        while not files <= set(context._cache) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert {"sensor_addresses", "secrecy", "report:False", *files} <= set(context._cache)
