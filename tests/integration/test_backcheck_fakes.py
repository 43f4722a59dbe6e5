"""The prober against fake devices on 127.0.0.1 (tests/fakes/devices.py), and the CLI.

Every socket the prober opens goes through a guard that fails the test on any
address outside 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from fakes.devices import HUAWEI_PATH, Device, Lab, LabThread, closed_port, closed_udp_port
from teiten.backcheck import prober
from teiten.backcheck.model import Probe, RunResult
from teiten.backcheck.prober import ProbeConfig, backcheck
from teiten.cli.backcheck import backcheck_group

DATA = Path(__file__).resolve().parents[1] / "data" / "scans"
FAST_CLI = ["--enable", "--allow", "127.0.0.0/8", "--ssdp-port", "0", "--rate", "1000"]
FAST_CLI += ["--interval", "0", "--timeout", "0.5"]
FAST = {"rate": 1000.0, "interval": 0.0, "connect_timeout": 0.5, "read_timeout": 0.3}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Fail on any connection or datagram to an address that is not loopback."""
    contacted: list[tuple[str, int]] = []
    real_tcp, real_udp = prober.open_tcp, prober.exchange_udp

    def check(target: str, port: int) -> None:
        assert ipaddress.ip_address(target).is_loopback, f"tried to contact {target}"
        contacted.append((target, port))

    async def tcp(target: str, port: int) -> Any:
        check(target, port)
        return await real_tcp(target, port)

    async def udp(target: str, port: int, *args: Any) -> Any:
        check(target, port)
        return await real_udp(target, port, *args)

    monkeypatch.setattr(prober, "open_tcp", tcp)
    monkeypatch.setattr(prober, "exchange_udp", udp)
    return contacted


def config(
    tcp: list[Device],
    telnet: list[Device] = (),
    ssdp: Device | None = None,
    closed: tuple[int, ...] = (),
    **kw: Any,
) -> ProbeConfig:
    ports = tuple(d.port for d in [*tcp, *telnet]) + closed
    return ProbeConfig(
        enabled=True,
        allow=("127.0.0.0/8",),
        ports=ports,
        telnet_ports=tuple(d.port for d in telnet),
        ssdp_port=ssdp.port if ssdp else None,
        **{**FAST, **kw},
    )


def rows(result: RunResult, port: int, probe: str = "http") -> list[Probe]:
    return [p for p in result.probes if p.port == port and p.probe == probe]


def test_identifies_every_fake(tmp_path: Path) -> None:
    async def go() -> None:
        async with Lab() as lab:
            realtek, huawei, generic = await lab.realtek(), await lab.huawei(), await lab.generic()
            telnet = await lab.telnet()
            ssdp = await lab.ssdp(f"http://127.0.0.1:{huawei.port}{HUAWEI_PATH}")
            closed = closed_port()
            cfg = config(
                [realtek, huawei, generic],
                [telnet],
                ssdp,
                (closed,),
                log_path=tmp_path / "sent.jsonl",
            )
            result = await backcheck(["127.0.0.1"], cfg)
            check_identities(result, realtek, huawei, generic, telnet, closed)
            check_log(tmp_path / "sent.jsonl", result, lab)

    asyncio.run(go())


def check_identities(
    result: RunResult, realtek: Device, huawei: Device, generic: Device, telnet: Device, closed: int
) -> None:
    pics = rows(result, realtek.port)[0]
    assert (pics.path, pics.http_status, pics.server_header) == (
        "/picsdesc.xml",
        200,
        "miniupnpd/1.0 UPnP/1.0",
    )
    assert (pics.manufacturer, pics.model, pics.model_number, pics.firmware) == (
        "Realtek Semiconductor",
        "LAN-W300N/R",
        "2.27",
        "2.27",
    )
    assert pics.friendly_name == "Wireless Router" and pics.advisory_status == "affected"
    assert pics.advisory_ids[0] == "logitec-2017-12-19"
    hg = [p for p in rows(result, huawei.port) if p.path == HUAWEI_PATH]
    assert len(hg) == 1 and hg[0].note.startswith("from SSDP LOCATION")
    assert (hg[0].manufacturer, hg[0].model, hg[0].advisory_status) == (
        "Huawei Technologies Co., Ltd.",
        "HG532e",
        "affected",
    )
    page = [p for p in rows(result, generic.port) if p.path == "/"]
    assert page[0].title == "Broadband Router" and page[0].server_header == "httpd"
    assert page[0].advisory_ids == () and rows(result, generic.port)[0].http_status == 404
    (banner,) = rows(result, telnet.port, "telnet")
    assert banner.banner == b"\r\nRealtek Wireless Router\r\nlogin: " and telnet.received == []
    assert [p.state for p in rows(result, closed, "connect")] == ["closed"]
    (ssdp,) = [p for p in result.probes if p.probe == "ssdp"]
    assert ssdp.server_header.endswith("miniupnpd/1.0") and b"uuid" not in ssdp.banner
    s = result.summary(port=realtek.port)
    assert (s.sources, s.open_on_port, s.banners["Realtek"]) == (1, 1, 1)


def check_log(log: Path, result: RunResult, lab: Lab) -> None:
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(lines) == result.sent
    for device in lab.devices:
        sent = [x for x in lines if x["port"] == device.port and x["what"] != "connect"]
        connects = [x for x in lines if x["port"] == device.port and x["what"] == "connect"]
        if device.proto == "tcp":
            assert len(connects) == device.connections, device.name
        assert sorted(x["data"].encode() for x in sent) == sorted(device.received), device.name
    gets = [x for x in lines if x["what"].startswith("GET")]
    assert all("User-Agent: teiten/" in x["data"] for x in gets)


def test_bad_devices_are_bounded(loopback_only: list[tuple[str, int]]) -> None:
    async def go() -> None:
        async with Lab() as lab:
            tarpit, garbage, endless = await lab.tarpit(), await lab.garbage(), await lab.endless()
            silent = await lab.tarpit()  # a Telnet port that never greets
            cfg = config([tarpit, garbage, endless], [silent], max_bytes=8192, read_timeout=0.4)
            started = time.monotonic()
            result = await backcheck(["127.0.0.1"], cfg)
            elapsed = time.monotonic() - started
            assert elapsed < 2.0  # the 0.4 s read timeouts overlap; nothing waits for more
            (stuck,) = rows(result, tarpit.port)
            assert stuck.note == "no answer; timed out; other paths skipped"
            (junk,) = rows(result, garbage.port)
            assert junk.note.startswith("not an HTTP response") and junk.http_status is None
            cut = rows(result, endless.port)
            assert len(cut) == 3 and all(p.truncated and p.bytes_read == 8192 for p in cut)
            assert all(p.note.startswith("cut at 8192 bytes") for p in cut)
            (quiet,) = rows(result, silent.port, "telnet")
            assert quiet.note == "no banner" and quiet.banner == b""

    asyncio.run(go())


def test_refused_targets_are_not_contacted(loopback_only: list[tuple[str, int]]) -> None:
    async def go() -> None:
        async with Lab() as lab:
            realtek = await lab.realtek()
            cfg = ProbeConfig(
                enabled=True, allow=("127.0.0.1/32",), ports=(realtek.port,), ssdp_port=None, **FAST
            )
            result = await backcheck(["192.0.2.1", "127.0.0.1", "127.0.0.2", "router.lan"], cfg)
            assert [r.target for r in result.refused] == ["192.0.2.1", "127.0.0.2", "router.lan"]
            assert {t for t, _ in loopback_only} == {"127.0.0.1"}

    asyncio.run(go())


def test_location_elsewhere_is_not_fetched(loopback_only: list[tuple[str, int]]) -> None:
    async def go() -> None:
        async with Lab() as lab:
            realtek = await lab.realtek()
            ssdp = await lab.ssdp(f"http://198.51.100.9:{realtek.port}/picsdesc.xml")
            result = await backcheck(["127.0.0.1"], config([realtek], ssdp=ssdp))
            (row,) = [p for p in result.probes if p.probe == "ssdp"]
            assert row.note == "LOCATION not followed: points at another host"
            assert realtek.connections == 3  # the three default paths, nothing more

    asyncio.run(go())


def test_ssdp_without_a_responder() -> None:
    cfg = ProbeConfig(
        enabled=True, allow=("127.0.0.1/32",), ports=(), ssdp_port=closed_udp_port(), **FAST
    )
    (row,) = asyncio.run(backcheck(["127.0.0.1"], cfg)).probes
    assert (row.proto, row.probe) == ("udp", "ssdp")
    assert (row.state, row.note) in {
        ("closed", "port unreachable"),
        ("filtered", "no reply (UDP: open or filtered)"),
    }


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(backcheck_group, list(args), catch_exceptions=False)


def test_cli_refuses_without_enable(loopback_only: list[tuple[str, int]]) -> None:
    r = run_cli("run", "127.0.0.1", "--allow", "127.0.0.1/32")
    assert r.exit_code == 1 and loopback_only == []
    assert len(r.output.strip().splitlines()) == 1 and "--enable" in r.output
    r = run_cli("run", "127.0.0.1", "--enable")
    assert r.exit_code == 1 and "needs an allowlist" in r.output
    r = run_cli("run", "--enable", "--allow", "127.0.0.1")
    assert r.exit_code == 1 and "no targets" in r.output
    r = run_cli("run", "127.0.0.1", "127.0.0.2", *FAST_CLI, "--max-targets", "1")
    assert r.exit_code == 1 and "2 targets but at most 1 per run" in r.output
    assert loopback_only == []


def test_cli_run_against_fakes(tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("# sources seen on 23/tcp\n127.0.0.1  192.0.2.1\n")
    with LabThread() as lt:
        realtek = lt.call(lt.lab.realtek())
        files = ["--from-file", str(targets), "--log", str(tmp_path / "log.jsonl")]
        files += ["--out", str(tmp_path / "p.parquet")]
        ports = ["--ports", str(realtek.port), "--summary-port", str(realtek.port)]
        args = ["run", *FAST_CLI, *files, *ports]
        r = run_cli(*args, "--format", "json")
        table = run_cli(*args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [x["probe"] for x in out] == ["connect", "http", "http", "http"]
    assert (
        out[1]["model"] == "LAN-W300N/R" and "logitec-2017-12-19:affected" in out[1]["advisories"]
    )
    assert "refused 192.0.2.1: outside the allowlist" in r.stderr
    assert "sent 6 probes" in r.stderr and "of 1 sources checked, 1 had" in r.stderr
    assert pq.read_table(tmp_path / "p.parquet").num_rows == 4
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 12  # two runs
    assert table.exit_code == 0 and "LAN-W300N/R" in table.stdout and "affected" in table.stdout


def test_cli_import(tmp_path: Path) -> None:
    r = run_cli(
        "import",
        str(DATA / "zgrab2.jsonl"),
        "--format",
        "json",
        "--out",
        str(tmp_path / "z.parquet"),
    )
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)) == 5 and "read 5 records (zgrab2)" in r.stderr
    assert "HG532e → huawei-hg532-cve-2017-17215 affected (1)" in r.stderr
    assert pq.read_table(tmp_path / "z.parquet").num_rows == 5
    r = run_cli("import", str(DATA / "nmap.xml"), "--format-in", "zgrab2")
    assert r.exit_code == 1 and "line 1" in r.output and len(r.output.splitlines()) == 1


def test_cli_escapes_device_text() -> None:
    async def evil(lab: Lab) -> Device:
        page = b"<html><title>\x1b[2J\xe2\x80\xaeevil</title></html>"
        return await lab.http("evil", {"/": (200, page)}, "x\x1b]0;pwn\x07")

    with LabThread() as lt:
        device = lt.call(evil(lt.lab))
        r = run_cli("run", "127.0.0.1", *FAST_CLI, "--ports", str(device.port))
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.output and "\u202e" not in r.output and "\\x1b" in r.output
