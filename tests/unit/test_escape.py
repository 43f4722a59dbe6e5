from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from teiten.escape import terminal


def test_control_and_bidi_are_visible() -> None:
    assert terminal("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert terminal("x\u202eevil") == "x\\u202eevil"
    assert terminal(b"\xff\xfeok") == "\\xff\\xfeok"


def test_bounded() -> None:
    out = terminal("A" * 10_000, limit=100)
    assert out.startswith("A" * 100) and len(out) < 130


@given(st.text())
def test_never_emits_controls(s: str) -> None:
    out = terminal(s, limit=10**6)
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in out)
