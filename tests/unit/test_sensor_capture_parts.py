"""The passive capture's parts: the ring walker on made-up blocks, the files it writes (read
back with teiten's own pcap reader), filters, rotation on a fake clock, crash leftovers,
the retention of ingested files, and one real capture on the loopback device (root)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from teiten.capture import open_source
from teiten.config import load_settings
from teiten.errors import ConfigError
from teiten.sensor import bpf
from teiten.sensor.capture import Capture
from teiten.sensor.config import EXAMPLE, CaptureConfig, SensorConfig, parse_config
from teiten.sensor.health import Health
from teiten.sensor.metrics import render
from teiten.sensor.retention import DAY, prune
from teiten.sensor.ring import (
    BLOCK_HEADER,
    PACKET_OUTGOING,
    TP_STATUS_VLAN_VALID,
    Layout,
    walk_block,
)
from teiten.sensor.rotation import Rotator, pcap_header, recover
from teiten.sensor.service import Sensor
from teiten.sensor.status import sensor_status

ROOT = os.geteuid() == 0
MAC = 80
"""Where the walker's made-up packets start, after the ring header and ``sockaddr_ll``."""


def _frame(i: int, size: int) -> bytes:
    eth = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + b"\x08\x00"
    return (eth + bytes((i + k) % 251 for k in range(size)))[: max(size, 14)]


def _block(packets: list[dict[str, int | bytes]], size: int = 1 << 16) -> np.ndarray:
    """A retired TPACKET_V3 block as the kernel lays it out (``linux/if_packet.h``)."""
    buf = bytearray(size)
    struct.pack_into("=IIIII", buf, 0, 3, 0, 1, len(packets), BLOCK_HEADER)
    off = BLOCK_HEADER
    for n, p in enumerate(packets):
        data = bytes(p["data"])
        nxt = 0 if n == len(packets) - 1 else (MAC + len(data) + 15) & ~15
        struct.pack_into("=IIIIIIHHIIHH", buf, off, nxt, p["sec"], p["nsec"], len(data),
                         p.get("wire", len(data)), p.get("status", 0), MAC, MAC + 14, 0,
                         p.get("tci", 0), p.get("tpid", 0), 0)  # fmt: skip
        buf[off + 48 + 10] = int(p.get("pkttype", 0))
        buf[off + MAC : off + MAC + len(data)] = data
        off += nxt
    return np.frombuffer(bytes(buf), np.uint8).copy()


def _read_back(path: Path) -> list[tuple[int, int, bytes]]:
    """``(ts_ns, origlen, bytes)`` of every record, by teiten's pcap reader (no damage)."""
    source = open_source(path)
    out = []
    for chunk in source.chunks():
        for i in range(len(chunk)):
            start = int(chunk.offset[i])
            data = bytes(chunk.data[start : start + int(chunk.caplen[i])])
            out.append((int(chunk.ts_ns[i]), int(chunk.origlen[i]), data))
    assert not source.stats.skipped
    return out


def _walk(block: np.ndarray, *, ether: bool = True, skip_outgoing: bool = False) -> bytes:
    out = np.zeros(block.size, np.uint8)
    pos, packets, wire = walk_block(block, 0, block.size, out, 0, ether, skip_outgoing)
    assert packets >= 0 and wire >= 0
    return bytes(out[:pos])


def test_walker_writes_records_teiten_reads_back(tmp_path: Path) -> None:
    packets = [{"sec": 1_700_000_000 + i, "nsec": 123_456_789 + i, "data": _frame(i, 60 + 97 * i),
                "wire": 60 + 97 * i + (1000 if i == 2 else 0)} for i in range(5)]  # fmt: skip
    records = _walk(_block(packets))  # type: ignore[arg-type]
    path = tmp_path / "walk.pcap"
    path.write_bytes(pcap_header(65535, bpf.LINKTYPE_ETHERNET) + records)
    got = _read_back(path)
    assert got == [
        ((int(p["sec"]) * 10**9 + int(p["nsec"])), int(p["wire"]), bytes(p["data"]))  # type: ignore[call-overload]
        for p in packets
    ]


def test_walker_puts_back_a_stripped_vlan_tag_and_skips_outgoing(tmp_path: Path) -> None:
    frame = _frame(1, 80)
    packets = [
        {"sec": 1, "nsec": 2, "data": frame, "status": TP_STATUS_VLAN_VALID, "tci": 0x0123},
        {"sec": 3, "nsec": 4, "data": _frame(2, 70), "pkttype": PACKET_OUTGOING},
        {"sec": 5, "nsec": 6, "data": _frame(3, 70)},
    ]
    block = _block(packets)  # type: ignore[arg-type]
    path = tmp_path / "vlan.pcap"
    path.write_bytes(pcap_header(65535, 1) + _walk(block, skip_outgoing=True))
    got = _read_back(path)
    assert [ts for ts, _, _ in got] == [1_000_000_002, 5_000_000_006]
    assert got[0][2] == frame[:12] + b"\x81\x00\x01\x23" + frame[12:] and got[0][1] == 84
    assert len(_walk(block, skip_outgoing=False)) > len(_walk(block, skip_outgoing=True))
    raw = tmp_path / "raw.pcap"  # no link header to put a tag into: bytes as they are
    raw.write_bytes(pcap_header(65535, bpf.LINKTYPE_RAW) + _walk(block, ether=False))
    assert _read_back(raw)[0][2] == frame


def test_walker_stops_at_offsets_outside_the_block() -> None:
    block = _block([{"sec": 1, "nsec": 0, "data": _frame(0, 64)}] * 3)
    struct.pack_into("=I", block.data, 12, 1000)  # claims 1000 packets; the last says "no next"
    assert len(_walk(block)) == 3 * (16 + 64)
    struct.pack_into("=I", block.data, BLOCK_HEADER + 12, 1 << 20)  # a snaplen past the block's end
    assert _walk(block) == b""


def test_layout_fits_the_largest_packet_in_a_block() -> None:
    small, big = Layout.choose(64, 65535), Layout.choose(16, 262144)
    assert (small.block_size, small.block_nr) == (1 << 20, 64)
    assert big.block_size >= big.frame_size > 262144 and big.block_size & (big.block_size - 1) == 0
    assert big.frame_nr == (big.block_size // big.frame_size) * big.block_nr


def test_filters_compile_or_fail_in_one_line() -> None:
    program = bpf.compile_filter("dst net 198.18.0.0/15 or dst net 2001:db8::/32", 1, 1500)
    assert program.instructions()[-2:] == [(bpf.BPF_RET_K, 0, 0, 1500), (bpf.BPF_RET_K, 0, 0, 0)]
    assert len(program) == len(program.code) // 8 > 2
    for bad in ("tcp port 99999", "dst net 198.18.0.0/15 and (", "src net 10.0.0.0/33"):
        with pytest.raises(ConfigError) as e:
            bpf.compile_filter(bad, 1, 1500)
        assert str(e.value).startswith(f"capture.filter {bad!r}: ") and "\n" not in str(e.value)
    assert bpf.accept_all(96).instructions() == [(bpf.BPF_RET_K, 0, 0, 96)]
    assert bpf.default_expression(("192.0.2.0/24", "2001:db8::/32")) == (
        "dst net 192.0.2.0/24 or dst net 2001:db8::/32"
    )
    assert bpf.program_for("", (), 1, 200).expression == ""
    assert bpf.program_for(" ", ("192.0.2.0/24",), 1, 200).expression == "dst net 192.0.2.0/24"


def test_missing_libpcap_and_interfaces_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(name: str) -> None:
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr("teiten.sensor.bpf.ctypes.CDLL", refuse)
    bpf.libpcap.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"libpcap is not installed .*libpcap0\.8"):
            bpf.compile_filter("tcp", 1, 100)
    finally:
        monkeypatch.undo()
        bpf.libpcap.cache_clear()
    assert bpf.interface_linktype("lo") == bpf.LINKTYPE_ETHERNET
    for name in ("no-such-if0", "../lo", ""):
        with pytest.raises(ConfigError, match=r"capture\.interface"):
            bpf.interface_linktype(name)


def _records(n: int, size: int, t0: int = 1_700_000_000) -> bytes:
    return b"".join(struct.pack("<IIII", t0 + i, i, size, size) + _frame(i, size) for i in range(n))


def test_rotation_by_time_on_a_fake_clock(tmp_path: Path) -> None:
    now = [1_750_000_000.0]
    rot = Rotator(tmp_path, "lab-1-eth0", pcap_header(65535, 1), 60, 1 << 30, lambda: now[0])
    assert rot.write(memoryview(b""), 0) is None and not list(tmp_path.iterdir())
    assert rot.write(memoryview(_records(3, 60)), 3) is None
    [part] = tmp_path.iterdir()
    assert part.name == ".lab-1-eth0-20250615T150640.000000Z.pcap.part"
    now[0] += 59.9
    assert not rot.due()
    rot.write(memoryview(_records(2, 70)), 2)
    now[0] += 0.1
    assert rot.due()
    path = rot.close()
    assert path is not None and path.name == "lab-1-eth0-20250615T150640.000000Z.pcap"
    assert [p.name for p in tmp_path.iterdir()] == [path.name] and rot.closed_packets == 5
    assert [len(d) for _, _, d in _read_back(path)] == [60, 60, 60, 70, 70]
    assert not rot.due() and rot.close() is None  # nothing open: no empty file appears
    now[0] -= 60  # a clock stepped back: a second file under the same name
    rot.write(memoryview(_records(1, 60)), 1)
    assert rot.close() == tmp_path / "lab-1-eth0-20250615T150640.000000Z-1.pcap"


def test_rotation_by_size(tmp_path: Path) -> None:
    rot = Rotator(tmp_path, "s", pcap_header(65535, 1), 3600, 1000, lambda: 1e9)
    published = [rot.write(memoryview(_records(4, 84)), 4) for _ in range(7)]
    files = [p for p in published if p is not None]
    assert published.index(files[0]) == 2 and len(files) == 2  # 24 + 3 × 400 ≥ 1000, twice
    assert all(p.stat().st_size == 24 + 3 * 400 for p in files)
    assert rot.packets == 4 and len(list(tmp_path.glob(".*.part"))) == 1


def test_crash_leftovers_are_finished_or_removed(tmp_path: Path) -> None:
    head = pcap_header(65535, 1)
    full = _records(5, 100)
    (tmp_path / ".a-1.pcap.part").write_bytes(head + full + full[:50])  # cut inside a record
    (tmp_path / ".b-2.pcap.part").write_bytes(head + full[:10])  # no complete record
    (tmp_path / ".c-3.pcap.part").write_bytes(b"garbage" * 10)
    (tmp_path / "a-1.pcap").write_bytes(b"taken")  # a name already used: published beside it
    (tmp_path / ".d-4.pcap.part").mkdir()  # cannot be opened: one line, the others go on
    done, errors = recover(tmp_path)
    assert errors == [".d-4.pcap.part: Is a directory"]
    assert [(p.name, n) for p, n in done] == [("a-1-1.pcap", 5)]
    assert len(_read_back(done[0][0])) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".d-4.pcap.part",
        "a-1-1.pcap",
        "a-1.pcap",
    ]


def test_capture_config_keys_and_mistakes() -> None:
    base: dict[str, object] = {"name": "t", "data": "d", "spool": "s"}
    resp = [{"kind": "http", "listen": ["127.0.0.1:8080"]}]

    def parse(capture: object, **sensor: object) -> object:
        doc = {"sensor": base | sensor, "responder": resp, "capture": capture}
        return parse_config(doc)

    config = parse({"interface": "eth0", "rotate_seconds": 5, "rotate_bytes": 1 << 20,
                    "snaplen": 1500, "ring_mb": 8, "filter": "tcp"})  # fmt: skip
    assert config.capture == CaptureConfig("eth0", "tcp", 5.0, 1 << 20, 1500, 8)  # type: ignore[attr-defined]
    assert parse({"interface": "eth0", "enabled": False}).capture is None  # type: ignore[attr-defined]
    kept = parse({"interface": "eth0"}, keep_ingested_days=0, keep_ingested_gb=0.5)
    assert (kept.keep_ingested_days, kept.keep_ingested_gb) == (0.0, 0.5)  # type: ignore[attr-defined]
    for capture, message in [
        ({}, "capture.interface: a non-empty string"),
        ({"interface": "eth0", "snaplen": 10}, "capture.snaplen: an integer from 64"),
        ({"interface": "eth0", "rotate_seconds": 0}, "capture.rotate_seconds"),
        ({"interface": "eth0", "ring_mb": True}, "capture.ring_mb"),
        ({"interface": "eth0", "enabled": "yes"}, "capture.enabled"),
        ({"interface": "eth0", "filter": 3}, "capture.filter"),
        ({"interface": "eth0", "promisc": True}, "capture: unknown key 'promisc'"),
        ("eth0", "capture: a table is required"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse(capture)
    with pytest.raises(ConfigError, match=r"sensor\.keep_ingested_days: a number ≥ 0"):
        parse(None, keep_ingested_days=-1)


def _aged(folder: Path, name: str, size: int, days: float, now: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"x" * size)
    os.utime(path, (now - days * DAY, now - days * DAY))
    return path


def test_retention_by_age_then_size(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    ev, cap = tmp_path / "events" / "ingested", tmp_path / "captures" / "ingested"
    _aged(ev, "old.jsonl", 10, 8, now)
    _aged(cap, "a.pcap", 100, 3, now)
    _aged(cap, "b.pcap", 100, 2, now)
    _aged(ev, "c.jsonl", 100, 1, now)
    failed = _aged(tmp_path / "captures" / "failed", "bad.pcap", 10, 30, now)
    done = prune([ev, cap, tmp_path / "missing"], 7, 250, now)
    assert (done.files, done.bytes, done.errors) == (2, 110, ())
    assert sorted(p.name for p in [*ev.iterdir(), *cap.iterdir()]) == ["b.pcap", "c.jsonl"]
    assert prune([ev, cap], 7, 250, now).files == 0
    assert prune([ev, cap], 0, 1 << 30, now).files == 2 and failed.exists()
    _aged(ev, "d.jsonl", 5, 0, now)
    assert prune([ev, cap], 7, 0, now).files == 1


def test_sensor_round_prunes_and_counts(tmp_path: Path) -> None:
    doc = {"sensor": {"name": "t", "data": str(tmp_path / "d"), "spool": str(tmp_path / "s"),
                      "keep_ingested_days": 1, "keep_ingested_gb": 1},
           "responder": [{"kind": "http", "listen": ["127.0.0.1:8080"]}]}  # fmt: skip
    sensor = Sensor(parse_config(doc), load_settings(env={}), lambda line: None)
    now = time.time()
    _aged(tmp_path / "s" / "captures" / "ingested", "old.pcap", 64, 2, now)
    _aged(tmp_path / "s" / "captures" / "ingested", "new.pcap", 64, 0, now)
    asyncio.run(sensor.prune())
    assert (sensor.health.ingested_removed, sensor.health.ingested_removed_bytes) == (1, 64)
    text = render(sensor.health, 0).decode()
    assert "teiten_sensor_ingested_removed_total 1\n" in text
    sensor.save_state()
    assert sensor_status(sensor.config)["ingested_removed"] == 1


def test_capture_metrics_are_rendered() -> None:
    health = Health(capture_running=1, capture_packets=7, capture_kernel_drops=3, capture_files=2)
    text = render(health, 0).decode()
    for line in ("teiten_sensor_capture_running 1", "teiten_sensor_capture_packets_total 7",
                 "teiten_sensor_capture_kernel_drops_total 3",
                 "teiten_sensor_capture_files_total 2",
                 "# TYPE teiten_sensor_capture_freeze_q_total counter"):  # fmt: skip
        assert line + "\n" in text


@pytest.mark.skipif(not ROOT, reason="a packet socket needs CAP_NET_RAW (root)")
def test_capture_on_loopback_publishes_every_packet_at_stop(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    doc = {"sensor": {"name": "lab-1", "data": str(tmp_path / "d"), "spool": str(tmp_path / "s")},
           "capture": {"interface": "lo", "filter": f"udp and dst port {port}", "ring_mb": 4,
                       "rotate_seconds": 3600},
           "responder": [{"kind": "http", "listen": ["127.0.0.1:8080"]}]}  # fmt: skip
    config = parse_config(doc)
    health, lines = Health(), list[str]()
    capture = Capture(config, health, lines.append)
    try:
        _capture_udp(capture, config, health, port)
    finally:
        capture.stop()
    assert any("500 packets" in line for line in lines)


def _capture_udp(capture: Capture, config: SensorConfig, health: Health, port: int) -> None:
    config.captures_dir.mkdir(parents=True)
    (config.captures_dir / ".lab-1-lo-old.pcap.part").write_bytes(pcap_header(65535, 1))
    capture.start()
    assert not (config.captures_dir / ".lab-1-lo-old.pcap.part").exists()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(500):
            s.sendto(i.to_bytes(2, "big") * 20, ("127.0.0.1", port))
    time.sleep(0.3)
    assert health.capture_running == 1 and not list(config.captures_dir.glob("*.pcap"))
    capture.stop()  # rotate_seconds is an hour away: stopping publishes the file
    [path] = config.captures_dir.glob("*.pcap")
    records = _read_back(path)
    assert [d[-40:] for _, _, d in records] == [i.to_bytes(2, "big") * 20 for i in range(500)]
    assert all(d[12:14] == b"\x08\x00" for _, _, d in records)  # Ethernet, once per packet
    assert (health.capture_packets, health.capture_files, health.capture_kernel_drops) == (
        500, 1, 0)  # fmt: skip
    assert health.capture_kernel_packets == 500 and health.capture_running == 0
    assert not list(config.captures_dir.glob(".*"))


def test_docs_and_example_name_every_capture_key_and_metric() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "sensor.md").read_text()
    keys = [f.name for f in dataclasses.fields(CaptureConfig)] + ["enabled"]
    for key in [*keys, "keep_ingested_days", "keep_ingested_gb"]:
        assert f"| `{key}` |" in docs, key
        assert re.search(rf"^(# )?{key} = ", EXAMPLE, re.M), key
    names = re.findall(r"^# TYPE (teiten_sensor_\w+) ", render(Health(), 0).decode(), re.M)
    assert len(names) > 20
    for name in names:
        assert f"`{name}" in docs, name
    assert "not yet supported" not in docs and "not built yet" not in docs


@pytest.mark.skipif(not ROOT, reason="a packet socket needs CAP_NET_RAW (root)")
def test_a_file_that_cannot_be_published_is_counted_and_the_capture_goes_on(
    tmp_path: Path,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        doc = {"sensor": {"name": "t", "data": str(tmp_path / "d"), "spool": str(tmp_path / "s")},
               "capture": {"interface": "lo", "filter": f"udp and dst port {port}",
                           "rotate_seconds": 1, "ring_mb": 4},
               "responder": [{"kind": "http", "listen": ["127.0.0.1:8080"]}]}  # fmt: skip
        config = parse_config(doc)
        inbox = config.captures_dir
        inbox.mkdir(parents=True)
        health, lines = Health(), list[str]()
        capture = Capture(config, health, lines.append)
        capture.start()
        try:
            _send(port, 100)
            _wait(lambda: bool(list(inbox.glob(".*.part"))))
            inbox.rename(tmp_path / "moved")  # the open file's folder is gone
            inbox.mkdir()
            _wait(lambda: health.dropped["capture_write_failed"] == 100)
            _send(port, 50)
        finally:
            capture.stop()
    assert any("capture: cannot write to" in x and "(100 packets lost)" in x for x in lines)
    [path] = inbox.glob("*.pcap")
    assert len(_read_back(path)) == 50 and health.capture_files == 1
    assert not list(inbox.glob(".*"))


def _send(port: int, n: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(n):
            s.sendto(i.to_bytes(4, "big"), ("127.0.0.1", port))


def _wait(ok: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not ok():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
