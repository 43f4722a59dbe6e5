"""UPnP descriptions: descriptive fields only, conservative firmware, XML bombs refused."""

from __future__ import annotations

import doctest

import pytest

from teiten.backcheck import upnp
from teiten.backcheck.model import Probe
from teiten.backcheck.upnp import (
    MAX_DESCRIPTION,
    DescriptionError,
    follow_location,
    parse_description,
    safe_path,
    ssdp_banner,
    upnp_info_fields,
    with_description,
)

NS = b'<root xmlns="urn:schemas-upnp-org:device-1-0">'


def desc(fields: bytes) -> bytes:
    return b'<?xml version="1.0"?>' + NS + b"<device>" + fields + b"</device></root>"


def test_doctests() -> None:
    assert doctest.testmod(upnp).failed == 0


def test_fields_of_the_root_device_and_no_identifiers() -> None:
    d = parse_description(
        desc(
            b"<friendlyName> Wireless\n Router </friendlyName>"
            b"<manufacturer>Realtek Semiconductor</manufacturer>"
            b"<modelDescription>Gateway</modelDescription>"
            b"<modelName>LAN-W300N/R</modelName><modelNumber>2.27</modelNumber>"
            b"<serialNumber>SN-123</serialNumber><UDN>uuid:secret</UDN>"
            b"<deviceList><device><manufacturer>Inner</manufacturer>"
            b"<modelName>inner</modelName></device></deviceList>"
        )
    )
    assert (d.manufacturer, d.model_name, d.model_number) == (
        "Realtek Semiconductor",
        "LAN-W300N/R",
        "2.27",
    )
    assert d.friendly_name == "Wireless Router" and d.model_description == "Gateway"
    assert (d.firmware, d.firmware_from) == ("2.27", "modelNumber")
    assert "SN-123" not in repr(d) and "secret" not in repr(d)


@pytest.mark.parametrize(
    ("number", "firmware"),
    [
        ("2.27", "2.27"),
        ("Ver2.27", "Ver2.27"),
        ("1.13N3L", "1.13N3L"),
        ("HG532e", ""),
        ("1", ""),
        ("RT-N12", ""),
        ("", ""),
    ],
)
def test_model_number_is_firmware_only_when_it_looks_like_one(number: str, firmware: str) -> None:
    d = parse_description(
        desc(b"<modelName>X</modelName><modelNumber>%s</modelNumber>" % number.encode())
    )
    assert d.firmware == firmware


def test_explicit_firmware_element_wins() -> None:
    d = parse_description(
        desc(
            b"<modelName>X</modelName><modelNumber>9.9</modelNumber><firmwareVersion>1.02</firmwareVersion>"
        )
    )
    assert (d.firmware, d.firmware_from) == ("1.02", "firmwareversion")


def test_no_namespace_and_bare_device() -> None:
    assert parse_description(b"<device><modelName>A</modelName></device>").model_name == "A"
    assert (
        parse_description(b"<root><device><modelName>B</modelName></device></root>").model_name
        == "B"
    )


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<root><device><modelName>&lol3;</modelName></device></root>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><root><device><modelName>&x;</modelName></device></root>"""


@pytest.mark.parametrize("data", [BOMB, EXTERNAL, b"<!DOCTYPE root><root><device/></root>"])
def test_dtds_and_entities_are_refused(data: bytes) -> None:
    with pytest.raises(DescriptionError, match="refused"):
        parse_description(data)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"<root><device>", "not well-formed"),
        (b"\x00\xff garbage", "not well-formed"),
        (b"<root><other/></root>", "no <device>"),
        (b"<a>" + b" " * MAX_DESCRIPTION + b"</a>", "longer"),
    ],
)
def test_unreadable_descriptions(data: bytes, why: str) -> None:
    with pytest.raises(DescriptionError, match=why):
        parse_description(data)


def test_with_description_notes_a_refusal() -> None:
    row = with_description(Probe("127.0.0.1", 80), BOMB)
    assert row.model == "" and row.note.startswith("description: refused")


def test_location_is_followed_only_to_the_same_ip_and_an_allowed_port() -> None:
    allowed = {52869, 80}.__contains__
    url = "http://127.0.0.1:52869/picsdesc.xml"
    assert follow_location(url, "127.0.0.1", allowed) == (52869, "/picsdesc.xml")
    assert follow_location("HTTP://[::1]/d.xml", "::1", allowed) == (80, "/d.xml")
    for bad, why in [
        ("http://198.51.100.9:52869/picsdesc.xml", "another host"),
        ("http://127.0.0.2:52869/x.xml", "another host"),
        ("http://localhost:52869/x.xml", "not an IP literal"),
        ("https://127.0.0.1:52869/x.xml", "plain http"),
        ("http://user:pw@127.0.0.1:52869/x.xml", "plain http"),
        ("http://127.0.0.1:8081/x.xml", "not a probed"),
        ("http://127.0.0.1:52869/x.xml?a=b", "plain path"),
        ("http://127.0.0.1:52869/a%0d%0aX: y", "plain path"),
        ("http://127.0.0.1:99999/x.xml", "invalid"),
    ]:
        with pytest.raises(ValueError, match=why):
            follow_location(bad, "127.0.0.1", allowed)


def test_safe_paths() -> None:
    assert safe_path("/rootDesc.xml") and safe_path("/")
    for bad in ("rootDesc.xml", "/a b", "/a\r\nHost: x", "/?x", "/" + "a" * 300, "/%2e"):
        assert not safe_path(bad)


def test_ssdp_banner_drops_the_usn() -> None:
    reply = b"HTTP/1.1 200 OK\r\nSERVER: x\r\nUSN: uuid:abc::upnp:rootdevice\r\nusn: y\r\n\r\n"
    assert b"uuid" not in ssdp_banner(reply) and b"SERVER: x" in ssdp_banner(reply)


def test_nmap_upnp_info_output() -> None:
    text = (
        "\n  Server: Linux\n    Name: Wireless Router\n    Manufacturer: Realtek\n"
        "    Model Name: LAN-W300N/R\n    Model Version: 2.27\n"
    )
    d = upnp_info_fields(text)
    assert (d.friendly_name, d.manufacturer, d.model_name, d.firmware) == (
        "Wireless Router",
        "Realtek",
        "LAN-W300N/R",
        "2.27",
    )
