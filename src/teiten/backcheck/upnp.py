"""Parsing of UPnP device descriptions (``/picsdesc.xml``, ``/rootDesc.xml``) into a model.

XML is parsed only with ``defusedxml`` and DTDs forbidden: a description never
needs one, so billion-laughs documents, entity declarations and external
references are refused before anything is expanded. Only the descriptive
fields of the root device are kept; ``serialNumber``, ``UDN`` and other
identifiers are never read (nor the ``USN`` of an SSDP reply).

The same fields come from Nmap's ``upnp-info`` output (:func:`upnp_info_fields`),
and :func:`follow_location` decides whether an SSDP ``LOCATION`` may be
fetched: only on the target's own IP literal, an allowed port, a plain path.

>>> d = parse_description(b'<root xmlns="urn:schemas-upnp-org:device-1-0"><device>'
...     b'<manufacturer>Realtek Semiconductor</manufacturer><modelName>LAN-W300N/R</modelName>'
...     b'<modelNumber>2.27</modelNumber><UDN>uuid:kept-nowhere</UDN></device></root>')
>>> d.manufacturer, d.model_name, d.firmware, d.firmware_from
('Realtek Semiconductor', 'LAN-W300N/R', '2.27', 'modelNumber')
"""

from __future__ import annotations

import dataclasses
import importlib
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element, ParseError

from teiten.backcheck.model import BANNER_CAP, Probe, clip

MAX_DESCRIPTION = 64 * 1024
"""Bytes of a description that are parsed at most (longer ones are refused)."""

_defused = importlib.import_module("defusedxml")
_defused_et = importlib.import_module("defusedxml.ElementTree")
_fromstring = cast(Callable[..., Element], _defused_et.fromstring)
_REFUSED: tuple[type[Exception], ...] = (_defused.DefusedXmlException,)
# Nmap's upnp-info script prints description fields under these names.
_UPNP_INFO = {
    "manufacturer": "manufacturer",
    "model name": "model_name",
    "model version": "model_number",
    "model descr": "model_description",
    "name": "friendly_name",
}
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._~/-]{0,255}")

_FIELDS = {
    "manufacturer": "manufacturer",
    "modelname": "model_name",
    "modelnumber": "model_number",
    "friendlyname": "friendly_name",
    "modeldescription": "model_description",
}
# Non-standard children some vendors add to <device>; read before modelNumber.
_FIRMWARE_TAGS = ("firmwareversion", "softwareversion", "firmware", "fwversion")
# A modelNumber counts as a firmware version only when it looks like one:
# "2.27", "Ver2.27", "v1.13N3L" — never "HG532e", "1" or "RT-N12".
_VERSION_LIKE = re.compile(r"(?:v|ver|version)?[\s.:]*\d{1,4}(?:\.\d{1,4}){1,3}[a-z0-9]{0,6}", re.I)


class DescriptionError(ValueError):
    """A description was refused (DTD, entities), is not XML, or names no device."""


@dataclass(frozen=True)
class Description:
    """The descriptive fields of a UPnP root device (each capped, blanks collapsed)."""

    manufacturer: str = ""
    model_name: str = ""
    model_number: str = ""
    friendly_name: str = ""
    model_description: str = ""
    firmware: str = ""
    firmware_from: str = ""
    """Where ``firmware`` was read: a firmware element's name, ``modelNumber``, or empty."""


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1].casefold()


def _root_device(root: Element) -> Element | None:
    if _local(root.tag) == "device":
        return root
    for child in root:
        if _local(child.tag) == "device":
            return child
    return next((e for e in root.iter() if _local(e.tag) == "device"), None)


def _firmware(found: dict[str, str], extra: dict[str, str]) -> tuple[str, str]:
    for tag in _FIRMWARE_TAGS:
        if extra.get(tag):
            return extra[tag], tag
    number = found.get("model_number", "")
    if number and number != found.get("model_name") and _VERSION_LIKE.fullmatch(number):
        return number, "modelNumber"
    return "", ""


def parse_description(data: bytes) -> Description:
    """The root device's descriptive fields; :class:`DescriptionError` if refused or unreadable."""
    if len(data) > MAX_DESCRIPTION:
        raise DescriptionError(f"description longer than {MAX_DESCRIPTION} bytes")
    try:
        root = _fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except _REFUSED as e:
        raise DescriptionError(f"refused: {type(e).__name__} (DTDs and entities)") from None
    except ParseError as e:
        line, col = e.position
        raise DescriptionError(f"not well-formed XML at line {line}, column {col}") from None
    except (ValueError, LookupError) as e:
        raise DescriptionError(f"not readable XML: {type(e).__name__}") from None
    device = _root_device(root)
    if device is None:
        raise DescriptionError("no <device> element")
    found: dict[str, str] = {}
    extra: dict[str, str] = {}
    for child in device:
        name = _local(child.tag)
        text = clip(child.text or "")
        if name in _FIELDS:
            found.setdefault(_FIELDS[name], text)
        elif name in _FIRMWARE_TAGS:
            extra.setdefault(name, text)
    firmware, source = _firmware(found, extra)
    return Description(**found, firmware=firmware, firmware_from=source)


def looks_like_description(body: bytes) -> bool:
    """Whether a response body should be parsed as a UPnP description."""
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<?xml", b"<root")) and b"<" in head[1:]


def safe_path(path: str) -> bool:
    """Whether ``path`` may be requested: absolute, no query, escapes or blanks, ≤ 256 chars."""
    return bool(_SAFE_PATH.fullmatch(path))


def with_description(row: Probe, body: bytes | Description) -> Probe:
    """``row`` with the fields of a description (or of its bytes; a note if refused)."""
    try:
        d = body if isinstance(body, Description) else parse_description(body)
    except DescriptionError as e:
        return dataclasses.replace(row, note=f"description: {e}")
    note = f"firmware from {d.firmware_from}" if d.firmware_from else ""
    return dataclasses.replace(
        row,
        manufacturer=d.manufacturer,
        model=d.model_name,
        model_number=d.model_number,
        friendly_name=d.friendly_name,
        model_description=d.model_description,
        firmware=d.firmware,
        note=note,
    )


def ssdp_banner(data: bytes) -> bytes:
    """An SSDP reply without its USN line (a device identifier is not kept)."""
    lines = data[:BANNER_CAP].split(b"\n")
    return b"\n".join(x for x in lines if not x.lower().startswith(b"usn:"))


def follow_location(url: str, target: str, allowed: Callable[[int], bool]) -> tuple[int, str]:
    """The (port, path) a LOCATION may be fetched at; ValueError saying why not.

    Only ``http://`` on the same IP literal as the target, on an allowed port,
    with a plain path (no query, credentials or fragment), is followed.
    """
    parts = urlsplit(url.strip())
    if parts.scheme.lower() != "http" or parts.username or parts.password:
        raise ValueError("not a plain http:// URL")
    try:
        same = ipaddress.ip_address(parts.hostname or "") == ipaddress.ip_address(target)
        port = parts.port or 80
    except ValueError:
        raise ValueError("host is not an IP literal or port is invalid") from None
    if not same:
        raise ValueError("points at another host")
    if not allowed(port):
        raise ValueError(f"port {port} is not a probed HTTP port")
    path = parts.path or "/"
    if parts.query or parts.fragment or not safe_path(path):
        raise ValueError("path is not a plain path")
    return port, path


def upnp_info_fields(text: str) -> Description:
    """The description fields Nmap's ``upnp-info`` script printed (``Model Name: …`` lines)."""
    found: dict[str, str] = {}
    for line in text.splitlines()[:200]:
        key, colon, value = line.strip().partition(":")
        field = _UPNP_INFO.get(key.strip().casefold())
        if colon and field:
            found.setdefault(field, clip(value))
    firmware, source = _firmware(found, {})
    return Description(**found, firmware=firmware, firmware_from=source)
