"""Escaping of attacker-controlled text before it reaches a terminal, page or report.

Everything a sensor receives is attacker-controlled. :func:`terminal` makes a
value safe to print on one line and unambiguous to read back:

- a backslash becomes ``\\\\``, so the text ``\\x04`` can never pass for the byte 0x04;
- ASCII controls (C0, DEL) become ``\\xNN``;
- every other character that is not plain visible text becomes ``\\uNNNN`` (or
  ``\\UNNNNNNNN``): the Unicode categories Cc (C1 controls), Cf (format: bidi
  overrides and isolates, zero-width characters, U+061C, U+2060–2064, U+180E,
  U+FEFF), Zl and Zp (U+2028, U+2029), Cs (lone surrogates) and Cn
  (unassigned, which a later Unicode may make format characters), plus a few
  letters and marks that render as nothing (Hangul fillers, U+034F, U+17B4/5);
- bytes that are not UTF-8 become ``\\xNN`` (NN ≥ 80, which a character never
  produces: characters from U+0080 up are written ``\\u0080``…).

The escaping is one-to-one: distinct texts give distinct outputs (up to the
length limit), so what an operator reads is exactly what was received. An
escaped value is an :class:`Escaped` string; escaping it again returns it as is,
so a field escaped early (to cut it shorter) is not escaped twice by a table.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Candidates: every character outside printable ASCII that may need escaping is
# checked against its category; printable ASCII other than the backslash never is.
_CANDIDATES = re.compile(r"[^\x20-\x5b\x5d-\x7e]+")
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"})
# Visible-looking categories (letters, marks) whose members render as nothing.
_INVISIBLE = frozenset({0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0})
_RAW_BYTE = range(0xDC80, 0xDD00)  # how surrogateescape decoding keeps an undecodable byte


class Escaped(str):
    """Text already made safe by :func:`terminal` (escaping it again changes nothing)."""

    __slots__ = ()


@functools.lru_cache(maxsize=8192)
def _shown(c: str, raw_bytes: bool) -> str:
    """How one candidate character is written: itself, or its escape."""
    code = ord(c)
    if code == 0x5C:
        return "\\\\"
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if raw_bytes and code in _RAW_BYTE:
        return f"\\x{code - 0xDC00:02x}"
    if code in _INVISIBLE or unicodedata.category(c) in _UNSAFE_CATEGORIES:
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return c


def terminal(value: object, limit: int = 4096) -> Escaped:
    """Text safe for one terminal line, every unsafe character escaped; at most
    ``limit`` characters of the value are kept (the rest is counted).

    >>> terminal("ok\\x1b[31mred \\\\x04")
    'ok\\\\x1b[31mred \\\\\\\\x04'
    """
    if isinstance(value, Escaped):
        return value
    raw_bytes = False
    if isinstance(value, bytes | bytearray | memoryview):
        raw_bytes, text = True, bytes(value).decode("utf-8", "surrogateescape")
    else:
        text = str(value)
    more = ""
    if len(text) > limit:
        text, more = text[:limit], f"…(+{len(text) - limit} chars)"

    def esc(m: re.Match[str]) -> str:
        return "".join([_shown(c, raw_bytes) for c in m.group(0)])

    return Escaped(_CANDIDATES.sub(esc, text) + more)
