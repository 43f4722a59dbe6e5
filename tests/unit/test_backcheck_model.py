"""The probes table (schema, Parquet round trip), advisory matching and the summary sentence."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from teiten.backcheck import model
from teiten.backcheck.model import PROBES_SCHEMA, Probe, match_advisories, summarize, to_table

T = datetime(2017, 11, 1, tzinfo=UTC)


def test_doctests() -> None:
    assert doctest.testmod(model).failed == 0


def test_schema_matches_the_dataclass() -> None:
    row = Probe("198.51.100.7", 52869, probed_at=T).to_row()
    assert list(row) == PROBES_SCHEMA.names


def test_table_round_trips_through_parquet(tmp_path: Path) -> None:
    probes = [
        match_advisories(
            Probe(
                "198.51.100.7",
                52869,
                probe="http",
                path="/picsdesc.xml",
                http_status=200,
                manufacturer="Realtek Semiconductor",
                model="LAN-W300N/R",
                firmware="2.27",
                banner=b"\x1b[2J\xff",
                probed_at=T,
            )
        ),
        Probe("198.51.100.8", 1900, proto="udp", probe="ssdp", state="filtered", probed_at=T),
    ]
    table = to_table(probes)
    assert table.schema == PROBES_SCHEMA and table.num_rows == 2
    pq.write_table(table, tmp_path / "p.parquet")
    back = pq.read_table(tmp_path / "p.parquet").to_pylist()
    assert back[0]["banner"] == b"\x1b[2J\xff" and back[0]["probed_at"] == T
    assert back[0]["advisory_ids"] == ["logitec-2017-12-19", "realtek-sdk-miniigd-cve-2014-8361"]
    assert back[0]["advisory_statuses"] == ["affected", "possibly_affected"]
    assert back[1]["http_status"] is None and back[1]["advisory_ids"] == []
    assert to_table([]).num_rows == 0


def test_matching_uses_firmware_then_banners() -> None:
    fixed = match_advisories(Probe("t", 1, model="LAN-W300N/R", firmware="2.33"))
    assert dict(zip(fixed.advisory_ids, fixed.advisory_statuses, strict=True)) == {
        "logitec-2017-12-19": "fixed"  # the firmware verdict is final, the banner's is not
    }
    unsure = match_advisories(Probe("t", 1, model="LAN-W300N/R", firmware="2.9"))
    assert unsure.advisory_statuses == ("possibly_affected",)  # cannot_compare < banner
    both = match_advisories(
        Probe("t", 1, model="LAN-W300N/R", firmware="2.33", server_header="miniupnpd/1.0")
    )
    assert both.advisory_ids == ("realtek-sdk-miniigd-cve-2014-8361", "logitec-2017-12-19")
    assert both.advisory_statuses == ("possibly_affected", "fixed")
    hg = match_advisories(Probe("t", 1, manufacturer="Huawei", model="HG532e"))
    assert (hg.advisory_status, hg.advisory_ids) == ("affected", ("huawei-hg532-cve-2017-17215",))
    server = match_advisories(Probe("t", 1, server_header="Linux UPnP/1.0 miniupnpd/1.0"))
    assert server.advisory_ids == ("realtek-sdk-miniigd-cve-2014-8361",)
    nothing = match_advisories(Probe("t", 1, server_header="Apache"))
    assert nothing.advisory_status == "" and nothing.advisory_ids == ()


def test_summary_in_the_words_of_the_npa_report() -> None:
    rows = [
        Probe("198.51.100.7", 52869),
        match_advisories(
            Probe(
                "198.51.100.7",
                52869,
                probe="http",
                friendly_name="Wireless Router",
                manufacturer="Realtek Semiconductor",
                model="LAN-W300N/R",
                firmware="2.27",
                server_header="miniupnpd/1.0",
            )
        ),
        match_advisories(Probe("198.51.100.7", 1900, proto="udp", server_header="miniupnpd/1.0")),
        Probe("198.51.100.8", 52869),
        Probe("198.51.100.8", 80, probe="http", title="Wireless Router"),
        Probe("198.51.100.9", 52869, state="closed"),
        Probe("198.51.100.10", 23, probe="telnet", banner=b"Realtek login: "),
        match_advisories(Probe("198.51.100.11", 37215, model="HG532e")),
    ]
    s = summarize(rows)
    assert (s.sources, s.open_on_port) == (5, 2)
    assert s.banners == {"Realtek": 2, "Wireless Router": 2}
    got = [(m.model, m.firmware, m.advisory_id, m.status, m.sources) for m in s.matches]
    assert got == [
        ("HG532e", "", "huawei-hg532-cve-2017-17215", "affected", 1),
        ("LAN-W300N/R", "2.27", "logitec-2017-12-19", "affected", 1),
        ("LAN-W300N/R", "2.27", "realtek-sdk-miniigd-cve-2014-8361", "possibly_affected", 1),
    ]
    assert s.sentence.startswith(
        "of 5 sources checked, 2 had 52869 open; banners: Realtek (2), Wireless Router (2); "
        "models matched to advisories: HG532e → huawei-hg532-cve-2017-17215 affected (1), "
    )
    assert s.to_dict()["banners"] == s.banners
    assert summarize([]).sentence.endswith("models matched to advisories: none")
