"""Markdown and HTML escaping of attacker text in reports."""

from __future__ import annotations

import re

from teiten.report.render import clean, jdate, md_code, md_escape, md_fence, ports_text


def test_md_escape_leaves_nothing_markdown_can_interpret() -> None:
    text = md_escape("[x](javascript:alert(1)) <img src=x onerror=alert(1)> *a* _b_ `c` | # h")
    assert re.search(r"(?<!\\)[\[\]()<>*_`|#]", text) is None
    assert "\n" not in md_escape("line\n# heading")


def test_fence_is_longer_than_any_backtick_run() -> None:
    body = "a ``` b\n````\nc"
    block = md_fence(body)
    fence = block.split("\n", 1)[0].removesuffix("text")
    assert fence == "`" * 5 and block.endswith("\n" + fence) and body in block


def test_code_span_cannot_be_closed_from_inside() -> None:
    assert md_code("a``b") == "``` a``b ```"


def test_control_characters_become_visible() -> None:
    assert clean("ok\x1b[31m\nnext") == "ok\\x1b[31m\nnext"


def test_dates_and_ports_in_each_language() -> None:
    assert jdate("2017-11-01", "ja") == "2017年11月1日"
    assert jdate("2017-11-01", "en") == "2017-11-01"
    assert ports_text(["23/tcp", "2323/tcp"], "ja") == "23/TCP 及び 2323/TCP"
    assert ports_text(["1/tcp", "2/tcp", "3/tcp"], "en") == "1/TCP, 2/TCP and 3/TCP"
