"""Tags for sources (teiten.tags): scanner lists, derived tags, the classification rule."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from teiten.config import load_settings
from teiten.errors import ConfigError
from teiten.tags import (
    Evidence,
    ScannerList,
    Tag,
    classify,
    classify_many,
    load_scanners,
    shipped_scanners,
    tags_for,
)
from teiten.tags.derive import BRUTEFORCE_LOGINS, FINGERPRINT_SHARE
from teiten.tags.scanners import parse_scanners, read_scanner_file

TEST_LIST = Path(__file__).resolve().parents[1] / "data" / "tags" / "scanners.toml"
DOCUMENTATION = [
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
]


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


# --- the shipped list ------------------------------------------------------------------


def test_shipped_list_is_cited_and_holds_no_test_ranges() -> None:
    found = shipped_scanners()
    assert found, "the shipped list is empty"
    for s in found:
        assert s.category == "benign" and s.origin == "data:scanners.toml"
        assert s.source.startswith(("http://", "https://")), s.name
        assert dt.date.fromisoformat(s.checked) <= dt.date.today()
        for net in s.ranges:
            assert not any(net.version == d.version and net.overlaps(d) for d in DOCUMENTATION), (
                f"{s.name}: {net} is a documentation range"
            )
            assert net.is_global, f"{s.name}: {net} is not a public range"


def test_shipped_list_tags_a_published_research_range() -> None:
    scanners = load_scanners()
    tags = scanners.tags(_ip("141.212.121.7"))
    assert [t.cls for t in tags] == ["benign"]
    assert "141.212.121.0/24" in tags[0].evidence and "http" in tags[0].evidence
    assert scanners.tags(_ip("141.212.123.7")) == []


# --- operators' files ------------------------------------------------------------------


def test_operator_file_is_added_to_the_shipped_list() -> None:
    scanners = load_scanners([TEST_LIST])
    assert len(scanners) == len(shipped_scanners()) + 2
    (tag,) = scanners.tags(_ip("198.51.100.23"))
    assert tag.cls == "benign" and tag.source == "file:scanners.toml"
    assert tag.name == "scanner:Example Research Scanner"
    (v6,) = scanners.tags(_ip("2001:db8:1::10"))
    assert v6.cls == "benign"
    assert scanners.tags(_ip("2001:db8:2::1")) == []


def test_tag_files_setting_reads_a_comma_separated_list() -> None:
    s = load_settings(env={"TEITEN_TAG_FILES": f"{TEST_LIST}, /x/other.toml"})
    assert s.tag_files == (str(TEST_LIST), "/x/other.toml")
    assert load_settings(env={}).tag_files == ()


GOOD = """
[[scanner]]
name = "X"
category = "benign"
ranges = ["198.51.100.0/24"]
source = "https://x.example/"
checked = 2026-01-01
"""


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[[scanner]\nname = 1", "not valid TOML"),
        (GOOD.replace('"198.51.100.0/24"', '"198.51.100.1/24"'), "host bits"),
        (GOOD.replace('"198.51.100.0/24"', '"not-a-net"'), "not a CIDR"),
        (GOOD.replace("ranges = [", "ranges = [1, "), "is not text"),
        (GOOD.replace('ranges = ["198.51.100.0/24"]', "ranges = []"), "non-empty list"),
        (GOOD.replace('category = "benign"', 'category = "nice"'), "'category'"),
        (GOOD.replace('source = "https://x.example/"', ""), "'source'"),
        (GOOD.replace("checked = 2026-01-01", 'checked = "yesterday"'), "'checked'"),
        (GOOD + 'colour = "red"\n', "unknown key 'colour'"),
        ("scanner = 3\n", "array of tables"),
        ("other = 3\n" + GOOD, "unknown top-level key"),
        (GOOD.replace('name = "X"', 'name = "' + "x" * 600 + '"'), "longer than"),
    ],
)
def test_broken_file_is_one_line_naming_the_file(tmp_path: Path, text: str, said: str) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_scanners([path])
    message = str(e.value)
    assert "\n" not in message and str(path) in message and said in message


def test_unreadable_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        read_scanner_file(tmp_path / "missing.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b"name = '\xe9'")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_scanner_file(bad)


_v4 = st.tuples(st.integers(0, (1 << 32) - 1), st.integers(8, 32)).map(
    lambda t: ipaddress.ip_network((t[0] >> (32 - t[1]) << (32 - t[1]), t[1]))
)
_v6 = st.tuples(st.integers(0, (1 << 128) - 1), st.integers(16, 128)).map(
    lambda t: ipaddress.ip_network((t[0] >> (128 - t[1]) << (128 - t[1]), t[1]))
)
_names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(
    lambda s: s.strip() != ""
)


def _toml_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(
    st.lists(
        st.tuples(_names, st.sampled_from(["benign", "malicious", "unknown"]),
                  st.lists(st.one_of(_v4, _v6), min_size=1, max_size=5)),
        max_size=4,
    )
)  # fmt: skip
def test_written_lists_read_back(
    entries: list[tuple[str, str, list[ipaddress.IPv4Network | ipaddress.IPv6Network]]],
) -> None:
    text = "".join(
        f'[[scanner]]\nname = {_toml_string(name)}\ncategory = "{cat}"\n'
        f"ranges = [{', '.join(_toml_string(str(n)) for n in nets)}]\n"
        'source = "https://x.example/"\nchecked = 2026-01-02\n'
        for name, cat, nets in entries
    )
    got = parse_scanners(text, "file:t.toml")
    assert [(s.name, s.category, list(s.ranges)) for s in got] == [
        (name.strip(), cat, nets) for name, cat, nets in entries
    ]
    listed = ScannerList(got)
    for _, cat, nets in entries:
        assert cat in {t.cls for t in listed.tags(nets[0].network_address)}


@given(st.text(max_size=300))
def test_any_text_is_a_list_or_one_value_error(text: str) -> None:
    try:
        parse_scanners(text, "file:t.toml")
    except ValueError as e:
        assert "\n" not in str(e) or "TOML" in str(e)


# --- derived tags and the classification -----------------------------------------------


def test_mirai_fingerprint_share_makes_a_bot() -> None:
    half = Evidence("192.0.2.9", packets=100, fingerprints={"mirai": 50})
    less = Evidence("192.0.2.9", packets=100, fingerprints={"mirai": 49})
    (tag,) = tags_for(half)
    assert (tag.name, tag.cls, tag.source) == ("mirai", "malicious", "derived")
    assert "50 of 100 packets" in tag.evidence
    assert tags_for(less) == []
    assert classify(tags_for(half)).classification == "malicious"
    assert classify(tags_for(less)).classification == "unknown"


def test_tool_fingerprints_describe_but_do_not_judge() -> None:
    ev = Evidence("192.0.2.9", packets=10, fingerprints={"masscan": 10, "zmap": 0})
    assert [(t.name, t.cls) for t in tags_for(ev)] == [("masscan", "unknown")]
    assert classify(tags_for(ev)).classification == "unknown"


def test_exploits_and_bruteforce_are_malicious() -> None:
    ev = Evidence(
        "192.0.2.9", cves={"CVE-2014-8361": 3, "CVE-2017-17215": 1}, sessions=4,
        logins=BRUTEFORCE_LOGINS, credential_pairs=7,
    )  # fmt: skip
    tags = {t.name: t for t in tags_for(ev)}
    assert set(tags) == {"exploit:CVE-2014-8361", "exploit:CVE-2017-17215", "bruteforce"}
    assert "3 session(s)" in tags["exploit:CVE-2014-8361"].evidence
    assert "7 distinct credential pairs" in tags["bruteforce"].evidence
    fewer = Evidence("192.0.2.9", logins=BRUTEFORCE_LOGINS - 1)
    assert tags_for(fewer) == []


def test_telnet_scanner() -> None:
    ev = Evidence("192.0.2.9", packets=10, ports={"23/tcp": 4, "2323/tcp": 1, "80/tcp": 5})
    assert [(t.name, t.cls) for t in tags_for(ev)] == [("telnet-scanner", "unknown")]


def test_attack_evidence_wins_over_a_scanner_list() -> None:
    scanners = load_scanners([TEST_LIST])
    listed = Evidence("198.51.100.23", packets=5)
    assert classify(tags_for(listed, scanners)).classification == "benign"
    attacking = Evidence("198.51.100.23", packets=5, cves={"CVE-2014-8361": 1})
    verdict = classify(tags_for(attacking, scanners))
    assert verdict.classification == "malicious"
    assert "CVE-2014-8361" in verdict.evidence and "Example Research Scanner" in verdict.evidence
    bad_range = Evidence("192.0.2.200")
    assert classify(tags_for(bad_range, scanners)).classification == "malicious"


def test_tag_class_is_checked() -> None:
    with pytest.raises(ValueError, match="class"):
        Tag("x", "good", "", "derived")
    assert Tag("x", "benign", "e", "derived").as_dict()["class"] == "benign"


def test_evidence_from_a_profile() -> None:
    profile = {
        "address": "192.0.2.9", "packets": 10, "fingerprints": {"mirai": 9},
        "ports": [{"port": "23/tcp", "packets": 10}], "cves": {"CVE-2014-8361": 2},
        "sessions": {"count": 2}, "logins": {"count": 12, "pairs": 3},
    }  # fmt: skip
    ev = Evidence.from_profile(profile)
    assert ev == Evidence("192.0.2.9", 10, {"mirai": 9}, {"23/tcp": 10},
                          {"CVE-2014-8361": 2}, 2, 12, 3)  # fmt: skip


@given(
    st.lists(
        st.tuples(st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 3),
                  st.integers(0, 20), st.sampled_from(["198.51.100.7", "192.0.2.200",
                                                        "192.0.2.7", "141.212.121.1"])),
        min_size=1, max_size=30,
    )
)  # fmt: skip
def test_batch_classification_equals_the_one_by_one_rule(
    rows: list[tuple[int, int, int, int, str]],
) -> None:
    scanners = load_scanners([TEST_LIST])
    rows = [(p, min(b, p), e, g, a) for p, b, e, g, a in rows]
    one_by_one = [
        classify(
            tags_for(
                Evidence(
                    a,
                    packets=p,
                    fingerprints={"mirai": b},
                    cves={"CVE-2014-8361": e} if e else {},
                    logins=g,
                ),
                scanners,
            )
        ).classification
        for p, b, e, g, a in rows
    ]
    columns = {
        "packets": np.array([r[0] for r in rows]),
        "bot_packets": np.array([r[1] for r in rows]),
        "exploits": np.array([r[2] for r in rows]),
        "logins": np.array([r[3] for r in rows]),
        "a4": np.array([int(ipaddress.IPv4Address(r[4])) for r in rows]),
    }
    assert classify_many(columns, scanners).tolist() == one_by_one


def test_share_threshold_is_a_half() -> None:
    assert FINGERPRINT_SHARE == 0.5
