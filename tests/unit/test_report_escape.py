"""Markdown and HTML escaping of attacker text in reports, and reference links."""

from __future__ import annotations

import re
from html import unescape

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from teiten.report.render import (
    clean,
    html_link,
    https_url,
    jdate,
    md_code,
    md_escape,
    md_fence,
    md_ref,
    ports_text,
)

# CommonMark plus the GFM extensions markdown-it ships (tables, strikethrough).
MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])
# Where the templates put escaped text (a paragraph, list items, a heading, a quote,
# a table cell), with the text each must render to.
CONTEXTS = [
    ("{}", "{}"),
    ("- {}", "{}"),
    ("1. {}", "{}"),
    ("### 1.2 {}", "1.2 {}"),
    ("> {}", "{}"),
    ("| {} | b |\n| --- | --- |", "{}"),
]
MARKUP = "\\`*_[]<>|~!&#+-=.():/@ \n\t;0123456789wxhtps"
attacker_text = st.text(
    alphabet=st.one_of(st.sampled_from(MARKUP), st.characters(codec="utf-8")), max_size=60
)


def _inline(source: str) -> list[Token]:
    """The inline tokens of the rendered source, with block structure checked."""
    tokens = MD.parse(source)
    inline = [t for t in tokens if t.type == "inline"]
    kinds = {t.type for t in tokens} - {"inline"}
    blocks = ("paragraph", "bullet_list", "ordered_list", "list_item", "heading", "blockquote",
              "table", "thead", "tbody", "tr", "th", "td")  # fmt: skip
    allowed = {f"{b}_{end}" for b in blocks for end in ("open", "close")}
    assert kinds <= allowed, (source, kinds - allowed)
    return inline


def _visible(value: str) -> str:
    return " ".join(clean(value).split("\n")).strip()


def _text(token: Token) -> str:
    """The text of an inline token, which must hold nothing but text."""
    children = token.children or []
    assert {c.type for c in children} <= {"text"}, children
    return "".join(c.content for c in children)


@settings(max_examples=400, deadline=None)
@given(attacker_text, st.sampled_from(CONTEXTS))
def test_escaped_text_renders_as_exactly_that_text(value: str, context: tuple[str, str]) -> None:
    assume(_visible(value))
    source = context[0].format(md_escape(value))
    texts = [_text(t) for t in _inline(source)]
    expected = context[1].format(_visible(value))
    assert texts == ([expected, "b"] if source.startswith("|") else [expected]), source


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("CVE-2014-8361", "CVE-2014-8361"),
        ("LAN-W300N/DR", "LAN-W300N/DR"),
        ("Logitec: firmware (Ver1.01)", "Logitec: firmware (Ver1.01)"),
        ("snake_case_name", "snake_case_name"),
        ("AT&T and &amp;", "AT&T and \\&amp;"),
        ("- item", "\\- item"),
        ("12. twelve", "12\\. twelve"),
        ("# title #", "\\# title \\#"),
        ("![i](x) [l](javascript:alert(1))", "\\!\\[i\\](x) \\[l\\](javascript:alert(1))"),
        ("<img src=x onerror=alert(1)>", "\\<img src=x onerror=alert(1)\\>"),
        ("a|b *c* _d_ `e` ~~f~~", "a\\|b \\*c\\* \\_d\\_ \\`e\\` \\~\\~f\\~\\~"),
        ("http://x.example/p www.x.example", "http\\://x.example/p www\\.x.example"),
        ("mail a@x.example", "mail a\\@x.example"),
    ],
)  # fmt: skip
def test_only_what_markdown_interprets_is_escaped(raw: str, escaped: str) -> None:
    assert md_escape(raw) == escaped


def test_md_escape_keeps_one_line() -> None:
    assert md_escape("line\n# heading") == "line # heading"


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


NOT_LINKS = [
    "javascript:alert(1)",
    " javascript:alert(1)",
    "JaVaScRiPt:alert(document.domain)",
    "http://jvn.jp/jp/JVN.html",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "https:/no-host",
    "https://",
    "//evil.example/x",
    "ftp://evil.example/",
]


@pytest.mark.parametrize("url", NOT_LINKS)
def test_only_https_urls_become_links(url: str) -> None:
    assert https_url(url) is None
    html = str(html_link(url))
    assert "<a" not in html and "href" not in html
    md = md_ref({"title": "T", "url": url})
    links = [t for tok in _inline(md) for t in tok.children or [] if t.type == "link_open"]
    assert links == []


def test_https_reference_is_an_escaped_link() -> None:
    url = 'https://x.example/a b(c)?q="<script>"&r=1'
    html = str(html_link(url))
    assert html.startswith('<a href="https://x.example/a%20b%28c%29?q=%22%3Cscript%3E%22&amp;r=1"')
    assert 'rel="noreferrer noopener"' in html and "<script>" not in html
    md = md_ref({"title": "Advisory [1]", "url": url})
    children = _inline(md)[0].children or []
    hrefs = [t.attrs["href"] for t in children if t.type == "link_open"]
    assert hrefs == ["https://x.example/a%20b%28c%29?q=%22%3Cscript%3E%22&r=1"]
    assert "".join(t.content for t in children if t.type == "text") == "Advisory [1]"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_no_reference_links_anywhere_but_https(title: str, tail: str) -> None:
    for url in (tail, "https://x.example/" + tail, "javascript:" + tail):
        md = md_ref({"title": title, "url": url})
        hrefs = [
            t.attrs["href"]
            for tok in _inline(md)
            for t in tok.children or []
            if t.type == "link_open"
        ]
        assert all(str(h).startswith("https://") for h in hrefs)
        assert len(hrefs) <= (1 if https_url(url) else 0)
        html = str(html_link(url))
        hrefs = [unescape(h) for h in re.findall(r'href="([^"]*)"', html)]
        assert hrefs == ([https_url(url)] if https_url(url) else [])
