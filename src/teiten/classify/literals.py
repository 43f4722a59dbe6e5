"""The text every match of a regular expression contains, to skip searches that cannot match.

Signature regexes mostly start with an alternation or a lookbehind (``(?:^|[;&|]\\s*)``,
``(?<![\\w-])``), so the regex engine tries every position of every command and body.
Most of them also spell out a word every match must contain (``busybox``, ``echo``,
``()``): :func:`required_text` finds the longest run of plain characters at the top level
of the pattern, where each is matched as written, one after the other, and a caller can
test ``needle in text`` (a C substring search) before the regex.

The pattern is read with the standard library's regex parser (``re._parser``, which
``re.compile`` itself uses); anything it does not recognise gives the empty needle,
which every text contains, so an unusual pattern is only searched as before.
"""

from __future__ import annotations

import re
from typing import Any

try:
    from re import _constants, _parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - a Python without the parser
    _constants = _parser = None


def required_text(pattern: re.Pattern[str]) -> str:
    """The longest run of characters every match of ``pattern`` contains ("" if none known).

    Only top-level literal characters count (not those inside groups, alternations or
    repeats), and none when the pattern ignores case or is not a ``str`` pattern.
    """
    if _parser is None or not isinstance(pattern.pattern, str):
        return ""
    if pattern.flags & (re.IGNORECASE | re.VERBOSE):
        return ""
    try:
        items: Any = _parser.parse(pattern.pattern, pattern.flags)
    except Exception:  # an unreadable pattern gets no needle
        return ""
    if items.state.flags & (re.IGNORECASE | re.VERBOSE):
        return ""
    best, run = "", []
    for op, value in items.data:
        if op is _constants.LITERAL:
            run.append(chr(value))
            continue
        best = max(best, "".join(run), key=len)
        run = []
    return max(best, "".join(run), key=len)
