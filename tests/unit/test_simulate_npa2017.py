"""Tests for the npa-2017 scenario: the surge, its onset, its sources and the responder sessions."""

from __future__ import annotations

import ipaddress
import json
import socket
from collections import defaultdict
from pathlib import Path
from typing import Any, NamedTuple

import dpkt
import iptocc
import numpy as np
import pytest

from teiten.simulate import simulate
from teiten.simulate.payloads import MIRAI_CREDENTIALS, REALTEK_VARIANTS

ONSET = "2017-11-01"
Streams = dict[tuple[str, int, str, int], bytes]


class Sim(NamedTuple):
    truth: dict[str, Any]
    streams: Streams
    syn_sources: dict[str, set[str]]
    """Sources of plain SYNs: ``"mirai"`` (seq == dst) and ``"52869"``."""


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Sim:
    result = simulate("npa-2017", tmp_path_factory.mktemp("npa"), scale=0.02, seed=7)
    return Sim(json.loads(result.truth.read_text()), *_read(result.pcap))


def _read(pcap: Path) -> tuple[Streams, dict[str, set[str]]]:
    """Client→sensor TCP payload per connection (reassembled by seq), and SYN sources."""
    segments: defaultdict[tuple[str, int, str, int], dict[int, bytes]] = defaultdict(dict)
    syn_sources: dict[str, set[str]] = {"mirai": set(), "52869": set()}
    with pcap.open("rb") as fh:
        for _, buf in dpkt.pcap.Reader(fh):
            ip = dpkt.ethernet.Ethernet(buf).data
            tcp = ip.data
            if not isinstance(tcp, dpkt.tcp.TCP):
                continue
            src = socket.inet_ntoa(ip.src)
            if tcp.data:
                segments[(src, tcp.sport, socket.inet_ntoa(ip.dst), tcp.dport)][tcp.seq] = (
                    bytes(tcp.data))  # fmt: skip
            elif tcp.flags == dpkt.tcp.TH_SYN and tcp.seq == int.from_bytes(ip.dst, "big"):
                syn_sources["mirai"].add(src)
            elif tcp.flags == dpkt.tcp.TH_SYN and tcp.dport == 52869:
                syn_sources["52869"].add(src)
    streams = {k: b"".join(v[s] for s in sorted(v)) for k, v in segments.items()}
    return streams, syn_sources


def _daily(truth: dict[str, Any], port: str, segment: str, field: str) -> dict[str, int]:
    out = {r["date"]: r[field] for r in truth["series"]
           if r["port"] == port and r["segment"] == segment}  # fmt: skip
    return out


def _means(series: dict[str, int], days: int = 79) -> tuple[float, float]:
    before = sum(v for d, v in series.items() if d < ONSET) / 31
    after = sum(v for d, v in series.items() if d >= ONSET) / (days - 31)
    return before, after


def test_onsets_and_period(sim: Sim) -> None:
    truth = sim.truth
    assert truth["onsets"] == {"52869/tcp": ONSET, "23/tcp": ONSET, "2323/tcp": ONSET}
    assert truth["onset_segment"] == "domestic" and truth["home_country"] == "JP"
    assert {"port": "23/tcp", "segment": "foreign"} in truth["no_surge"]
    assert truth["period"]["start"] == "2017-10-01T00:00:00Z"
    assert truth["period"]["end"] == "2017-12-18T23:59:59Z"


@pytest.mark.parametrize("port", ["23/tcp", "2323/tcp", "52869/tcp"])
def test_domestic_sources_surge_at_the_onset(sim: Sim,
                                             port: str) -> None:  # fmt: skip
    truth = sim.truth
    series = _daily(truth, port, "domestic", "sources")
    before, after = _means(series)
    assert after >= 5 * max(before, 0.5)
    assert series.get("2017-10-31", 0) < series.get("2017-11-02", 0)
    first_week = np.mean([series.get(f"2017-11-0{d}", 0) for d in range(1, 4)])
    plateau = np.mean([v for d, v in series.items() if d >= "2017-11-20"])
    assert first_week < plateau  # it grows, then levels off


def test_foreign_telnet_stays_flat(sim: Sim) -> None:
    truth = sim.truth
    for port in ("23/tcp", "2323/tcp"):
        before, after = _means(_daily(truth, port, "foreign", "packets"))
        assert before > 0 and 1 / 1.5 < after / before < 1.5
    before, after = _means(_daily(truth, "445/tcp", "foreign", "packets"))
    assert 1 / 1.5 < after / before < 1.5


def test_telnet_and_52869_bots_overlap(sim: Sim) -> None:
    def domestic(addrs: set[str]) -> set[str]:
        ordered = sorted(addrs)
        return {a for a, c in zip(ordered, iptocc.country_code(ordered), strict=True)
                if c == "JP"}  # fmt: skip

    mirai, upnp = domestic(sim.syn_sources["mirai"]), domestic(sim.syn_sources["52869"])
    assert len(upnp & mirai) >= 0.5 * len(upnp) > 10
    assert len(upnp & mirai) >= 0.4 * len(mirai)


def test_sessions_cover_every_kind_and_variant(sim: Sim) -> None:
    truth = sim.truth
    sessions = truth["sessions"]
    kinds = defaultdict(list)
    for s in sessions:
        kinds[s["kind"]].append(s)
    assert len(kinds["exploit.huawei-hg532"]) == 1
    assert kinds["benign.upnp"] and kinds["telnet.login"]
    paths = {s["request"]["path"] for s in kinds["exploit.realtek-miniigd"]}
    assert paths == {v.path for v in REALTEK_VARIANTS}
    assert {s["request"]["soap_prefix"] for s in kinds["exploit.realtek-miniigd"]} == {"u", "m"}
    assert all(s["cves"] == ["CVE-2014-8361"] for s in kinds["exploit.realtek-miniigd"])
    assert kinds["exploit.huawei-hg532"][0]["cves"] == ["CVE-2017-17215"]
    assert any(s["split"] for s in sessions) and any(s["retransmit"] for s in sessions)
    assert all(s["start"] >= "2017-11-01" for s in kinds["exploit.realtek-miniigd"])


def test_indicators_never_name_a_real_host(sim: Sim) -> None:
    truth = sim.truth
    docs = ipaddress.IPv4Network("198.51.100.0/24")
    for s in truth["sessions"]:
        for host in s["indicators"]["hosts"]:
            assert host.endswith(".example") or ipaddress.IPv4Address(host) in docs


def test_streams_carry_the_payloads(sim: Sim) -> None:
    truth, streams = sim.truth, sim.streams
    for s in truth["sessions"]:
        data = streams[(s["src"], s["sport"], s["dst"], s["dport"])]
        for url in s["indicators"]["urls"]:
            assert url.encode() in data
        if s["kind"] == "exploit.realtek-miniigd":
            head, body = data.split(b"\r\n\r\n", 1)
            assert head.startswith(f"POST {s['request']['path']} HTTP/1.1".encode())
            assert b"#AddPortMapping" in head and b"<NewInternalClient>" in body
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            assert length == len(body)
            assert (b"`cd /tmp/" in body) or (b"$(cd /tmp/" in body)
        elif s["kind"] == "benign.upnp":
            assert b"<NewInternalClient>192.168.1." in data and b"`" not in data
        elif s["kind"] == "exploit.huawei-hg532":
            assert data.startswith(b"POST /ctrlt/DeviceUpgrade_1 HTTP/1.1")
            assert b"<NewStatusURL>$(" in data
        else:
            for login in s["logins"]:
                assert f"\r\n{login['username']}\r\n{login['password']}\r\n".encode() in (
                    b"\r\n" + data.split(b"\xff\xf0", 1)[1].split(b"\xff\xfd\x03", 1)[1]
                )
                assert login["mirai_dict"] == (
                    (login["username"], login["password"]) in MIRAI_CREDENTIALS)  # fmt: skip
            for cmd in s["commands"]:
                assert f"{cmd}\r\n".encode() in data


def test_seed_sample_headers_appear(sim: Sim) -> None:
    joined = b"".join(sim.streams.values())
    assert b"User-Agent: python-requests/2.18.4" in joined
    assert b"SOAPAction: urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping" in joined
    assert b"/bin/busybox MIRAI\r\n" in joined
    logins = [x for s in sim.truth["sessions"] for x in s.get("logins", [])]
    assert any(x["mirai_dict"] for x in logins) and any(x["success"] for x in logins)
