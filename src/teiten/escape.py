"""Escaping of attacker-controlled text before it reaches a terminal, page or report.

Everything a sensor receives is attacker-controlled. ``terminal`` makes a value
safe to print: control characters, escape sequences, invalid UTF-8 and
bidirectional overrides become visible ``\\xNN`` / ``\\u….`` escapes, and the
length is bounded.
"""

from __future__ import annotations

import re

# C0/C1 controls, DEL, and Unicode bidi/format characters that can reorder or hide text.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _esc(m: re.Match[str]) -> str:
    c = m.group(0)
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal(value: object, limit: int = 4096) -> str:
    """Text safe for a terminal line: no control characters, at most ``limit`` characters.

    >>> terminal("ok\\x1b[31mred")
    'ok\\\\x1b[31mred'
    """
    if isinstance(value, bytes | bytearray | memoryview):
        text = bytes(value).decode("utf-8", "backslashreplace")
    else:
        text = str(value)
    if len(text) > limit:
        text = text[:limit] + f"…(+{len(text) - limit} chars)"
    return _UNSAFE.sub(_esc, text)
