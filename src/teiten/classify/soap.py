"""Read the action and arguments of a SOAP call, refusing XML bombs and external entities.

XML is parsed only with ``defusedxml`` with DTDs forbidden, so billion-laughs
documents, entity declarations and external references are refused at the
first ``<!DOCTYPE`` instead of being expanded. Namespace prefixes are ignored
(``u:``, ``m:``, ``s:`` or none all give the same names). When the document is
not well-formed XML (exploit bodies often are) or was refused, the arguments
are recovered by a forward-only scan of leaf elements, which expands nothing
but the five XML entities and character references; the parse then says so
in ``notes``.

>>> m = parse_soap(b'<s:Envelope xmlns:s="e"><s:Body><u:Ping xmlns:u="p">'
...                b'<Host>a&amp;b</Host></u:Ping></s:Body></s:Envelope>')
>>> m.action, m.args
('Ping', (('Host', 'a&b'),))
"""

from __future__ import annotations

import html
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import cast
from xml.etree.ElementTree import Element, ParseError

MAX_BODY = 64 * 1024
MAX_ARGS = 64
MAX_VALUE = 8 * 1024
CACHE_SIZE = 256
CACHE_BODY = 4096

_defused = importlib.import_module("defusedxml")
_defused_et = importlib.import_module("defusedxml.ElementTree")
_fromstring = cast(Callable[..., Element], _defused_et.fromstring)
_REFUSED: tuple[type[Exception], ...] = (_defused.DefusedXmlException,)
_BROKEN: tuple[type[Exception], ...] = (ParseError, ValueError, LookupError, UnicodeError)

_NAME = r"[A-Za-z_][\w.-]{0,127}"
_START = re.compile(rf"<(?:{_NAME}:)?({_NAME})(?:\s[^<>]{{0,2048}})?>")
_LEAF = re.compile(
    rf"<(?:({_NAME}):)?({_NAME})(?:\s[^<>]{{0,2048}})?>([^<]{{0,{MAX_VALUE}}})</(?:\1:)?\2\s*>"
)
_BODY_OPEN = re.compile(rf"<(?:{_NAME}:)?Body\b[^<>]{{0,2048}}>")
_WRAPPERS = frozenset({"Envelope", "Body", "Header"})


@dataclass(frozen=True)
class SoapMessage:
    """A SOAP call: the action element's name, its namespace and its arguments in order."""

    action: str
    namespace: str
    args: tuple[tuple[str, str], ...]
    header_action: str = ""
    """The ``SOAPAction`` header without quotes (``urn:…:1#AddPortMapping``), if sent."""
    notes: tuple[str, ...] = ()

    @property
    def arguments(self) -> dict[str, str]:
        """The arguments as name → text (the first wins when a name repeats)."""
        out: dict[str, str] = {}
        for name, value in self.args:
            out.setdefault(name, value)
        return out

    def actions(self) -> tuple[str, ...]:
        """The names a signature's ``soap_action`` is tried against: body element, header."""
        return tuple(a for a in (self.action, self.header_action) if a)


def looks_like_soap(body: bytes, soap_action: str | None, content_type: str | None) -> bool:
    """Whether a request body should be read as SOAP/XML."""
    if soap_action is not None or (content_type and "xml" in content_type.lower()):
        return True
    head = body[:512].lstrip()
    return head.startswith(b"<") and (b"Envelope" in body[:4096] or head.startswith(b"<?xml"))


def header_action(value: str | None) -> str:
    """A ``SOAPAction`` header value without surrounding quotes and blanks."""
    return (value or "").strip().strip('"').strip()


def parse_soap(body: bytes, soap_action: str | None = None) -> SoapMessage:
    """The SOAP call in ``body``; never raises, and never expands a DTD or entity.

    Bots send the same body to every address they scan, so the results for the
    last :data:`CACHE_SIZE` distinct small bodies (≤ :data:`CACHE_BODY` bytes)
    are kept; a cached result is immutable and equal to a fresh one.
    """
    if len(body) <= CACHE_BODY:
        return _parse_cached(bytes(body), soap_action)
    return _parse(body, soap_action)


@lru_cache(maxsize=CACHE_SIZE)
def _parse_cached(body: bytes, soap_action: str | None) -> SoapMessage:
    return _parse(body, soap_action)


def _parse(body: bytes, soap_action: str | None) -> SoapMessage:
    notes: list[str] = []
    if len(body) > MAX_BODY:
        notes.append(f"XML cut at {MAX_BODY} bytes")
        body = body[:MAX_BODY]
    hdr = header_action(soap_action)
    try:
        root = _fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except _REFUSED as e:
        notes.append(f"XML refused ({type(e).__name__}); arguments read leniently")
    except _BROKEN as e:
        notes.append(f"XML not well-formed ({str(e)[:80]}); arguments read leniently")
    else:
        action, namespace, args, cut = _from_tree(root)
        return SoapMessage(action, namespace, args, hdr, tuple(notes + cut))
    action, args = _lenient(body.decode("utf-8", "backslashreplace"))
    if len(args) == MAX_ARGS:
        notes.append(f"arguments after the first {MAX_ARGS} not read")
    return SoapMessage(action, "", args, hdr, tuple(notes))


def _split(tag: str) -> tuple[str, str]:
    """``{ns}local`` → (local, ns)."""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return local, ns
    return tag.rpartition(":")[2], ""


def _from_tree(root: Element) -> tuple[str, str, tuple[tuple[str, str], ...], list[str]]:
    """Action, namespace, arguments and notes on what was cut (values, arguments)."""
    call = root
    if _split(root.tag)[0] == "Envelope":
        body = next((c for c in root if _split(c.tag)[0] == "Body"), None)
        call = next(iter(body), root) if body is not None else root
    if call is root and _split(root.tag)[0] in _WRAPPERS:
        return "", "", (), []
    action, namespace = _split(call.tag)
    children, notes, args = list(call), [], []
    for c in children[:MAX_ARGS]:
        name, text = _split(c.tag)[0], "".join(c.itertext())
        if len(text) > MAX_VALUE:
            notes.append(f"argument {name[:128]} cut at {MAX_VALUE} characters")
        args.append((name, text[:MAX_VALUE]))
    if len(children) > MAX_ARGS:
        notes.append(f"{len(children) - MAX_ARGS} arguments after the first {MAX_ARGS} not read")
    return action, namespace, tuple(args), notes


def _lenient(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Action and leaf arguments by a forward scan; only standard entities are decoded."""
    body = _BODY_OPEN.search(text)
    start = body.end() if body else 0
    action = ""
    for m in _START.finditer(text, start):
        if m[1] not in _WRAPPERS:
            action, start = m[1], m.end()
            break
    args: list[tuple[str, str]] = []
    for m in _LEAF.finditer(text, start):
        args.append((m[2], html.unescape(m[3])))
        if len(args) == MAX_ARGS:
            break
    return action, tuple(args)
