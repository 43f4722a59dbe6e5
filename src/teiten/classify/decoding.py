"""Undo the encodings droppers hide commands in, fast enough for every distinct payload.

:func:`decode` runs up to three rounds, for double encoding, each undoing in
this order: HTML/XML entities, ``+`` as a space (first round only), URL
encoding, ``\\x41`` then ``\\101`` escapes, ``${IFS}``/``$IFS``. A round that
changes nothing ends it, and a round none of whose steps could change anything
(no ``&`` starting a reference, ``%NN``, ``\\x``/octal escape, ``$IFS`` or, in
the first round, ``+``) is not run: one C scan instead of a scan per step.
Three steps are written here instead of taken from the standard library, each
giving exactly what the library call gives (the unit tests check it with
hypothesis): :func:`unescape` calls back into Python only for an ``&`` that
starts a character reference or an entity name, :func:`unhex` splits at
``\\x`` instead of calling back for each regex match, and :func:`unquote`
decodes each run of ``%NN`` in one regex pass where
:func:`urllib.parse.unquote` converts every ASCII run between two non-ASCII
characters through bytes.

Random bytes are most of what a darknet's payloads hold. Classified as text,
the bytes that are not UTF-8 are spelled ``\\xNN`` (``backslashreplace``), which
costs a call per byte to spell and another per escape to undo. :func:`decode_escaped`
instead takes them as ``surrogateescape`` gives them (U+DC80–U+DCFF, one C pass)
and :func:`byte_values` turns those into the characters U+0080–U+00FF, which is
what the first round's ``\\xNN`` step makes of the spelled form; both forms
decode alike because nothing a round undoes can start, end or cross a ``\\xNN``
of value 0x80 or more or such a character (entity names, ``%NN`` and escapes
are ASCII and stop at a ``\\`` or a character beyond ASCII, and UTF-8 never
continues into an ASCII byte). The one place the two characters differ, ``\\s``
in ``${IFS…}``, is written out for the escaped form.
"""

from __future__ import annotations

import html
import re

MAX_TEXT = 64 * 1024
"""Characters of text decoded; the rest is cut off before the first round."""
MAX_BYTES = MAX_TEXT // 4
"""Bytes :func:`decode_bytes` decodes in escaped form: ``backslashreplace`` spells a
byte with at most four characters, so up to here the spelled form is never cut."""

_IFS = r"\$\{{IFS[^}}\s{}]{{0,8}}\}}|\$IFS\$\d|\$IFS(?![A-Za-z0-9_])"
_IFS_TEXT = re.compile(_IFS.format(""))
_IFS_ESCAPED = re.compile(_IFS.format("\udc85\udca0"))
"""``${IFS…}`` where the stand-ins of the bytes 0x85 and 0xA0 count as the white space
their characters (NEL, NBSP) are."""
_CHANGES = r"&(?:#[0-9]|#[xX][0-9a-fA-F]|[A-Za-z0-9]{2})|%[0-9A-Fa-f]{2}|\\x[0-9A-Fa-f]{2}"
_CHANGES += r"|\\0?[0-3][0-7]{2}|\$\{IFS|\$IFS"
_ROUND_CHANGES = (re.compile(_CHANGES + r"|\+"), re.compile(_CHANGES), re.compile(_CHANGES))
"""What a round's first change needs (the first round also changes ``+``); each branch
starts with its own character, so one scan skips to the few ``&%\\$+`` in the text."""
_REFERENCE = re.compile(r"&(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z0-9]{2,32};?)")
_OCT = re.compile(r"\\0?([0-3][0-7]{2})")
_PERCENT_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_HEX_DIGITS = "0123456789abcdefABCDEF"
_HEX_PAIRS = {a + b: chr(int(a + b, 16)) for a in _HEX_DIGITS for b in _HEX_DIGITS}
_BYTE_VALUES = {0xDC80 + b: 0x80 + b for b in range(128)}
"""``surrogateescape``'s stand-ins for the bytes 0x80–0xFF → the characters of those values."""


def decode(text: str) -> str:
    """``text`` with the encodings droppers use undone (see the module notes)."""
    return _decode(text[:MAX_TEXT], _IFS_TEXT)


def decode_bytes(data: bytes) -> str:
    """``decode(data.decode("utf-8", "backslashreplace"))``, by way of the escaped form
    when ``data`` is short enough that the spelled form would not be cut."""
    if len(data) > MAX_BYTES:
        return decode(data.decode("utf-8", "backslashreplace"))
    return byte_values(decode_escaped(data))


def decode_escaped(data: bytes) -> str:
    """``data`` (at most :data:`MAX_BYTES`) decoded in escaped form: non-UTF-8 bytes stay
    U+DC80–U+DCFF; :func:`byte_values` of the result is :func:`decode_bytes`'s."""
    return _decode(data[:MAX_BYTES].decode("utf-8", "surrogateescape"), _IFS_ESCAPED)


def byte_values(text: str) -> str:
    """``text`` with each stand-in U+DC80–U+DCFF of a non-UTF-8 byte made the character of
    the byte's value, as decoding its ``\\xNN`` spelling gives."""
    return text.translate(_BYTE_VALUES)


def _decode(text: str, ifs: re.Pattern[str]) -> str:
    for changes in _ROUND_CHANGES:
        if not changes.search(text):
            break  # no step of this round can change the text, so none of the next can
        before = text
        if "&" in text:
            text = unescape(text)
        if changes is _ROUND_CHANGES[0] and "+" in text:
            text = text.replace("+", " ")
        if "%" in text:
            text = unquote(text)
        if "\\" in text:
            text = unhex(text)
            if "\\" in text:
                text = _OCT.sub(_char_8, text)
        if "$" in text:
            text = ifs.sub(" ", text)
        if text == before:
            break
    return text


def unescape(text: str) -> str:
    """``html.unescape(text)``, calling it only on what can be a reference.

    :func:`html.unescape` reads ``&`` and up to 32 characters that are not white
    space, ``<``, ``&``, ``#`` or ``;`` as a name and replaces its longest prefix
    that is an HTML5 entity. Entity names are two or more ASCII letters or digits
    (and an optional ``;``), so only the run of those after the ``&`` can change:
    the rest of the name comes back as it was, and holds no ``&``.
    """
    return _REFERENCE.sub(_reference, text) if "&" in text else text


def _reference(m: re.Match[str]) -> str:
    return html.unescape(m[0])


def unhex(text: str) -> str:
    """``text`` with each ``\\xNN`` (two hex digits) replaced by the character ``chr(0xNN)``.

    Equal to ``re.sub(r"\\\\x([0-9A-Fa-f]{2})", ...)``: the regex tries each ``\\x``
    left to right, and a match's two digits can never hold the next ``\\x``.
    """
    parts = text.split("\\x")
    if len(parts) == 1:
        return text
    out = [parts[0]]
    for part in parts[1:]:
        char = _HEX_PAIRS.get(part[:2])
        if char is None:
            out += ("\\x", part)
        else:
            out += (char, part[2:])
    return "".join(out)


def unquote(text: str) -> str:
    """``urllib.parse.unquote(text, errors="replace")``, one regex pass.

    The library decodes each ASCII run of ``text`` as UTF-8 after replacing its
    ``%NN``; an ASCII byte never continues a UTF-8 sequence, so decoding each run
    of consecutive ``%NN`` on its own gives the same characters.
    """
    return _PERCENT_RUN.sub(_percent_run, text) if "%" in text else text


def _percent_run(m: re.Match[str]) -> str:
    return bytes.fromhex(m[0].replace("%", "")).decode("utf-8", "replace")


def _char_8(m: re.Match[str]) -> str:
    return chr(int(m[1], 8))
