"""Render a :class:`~teiten.report.model.Report` to HTML, Markdown or PDF in Japanese or English.

* HTML: one self-contained file (figures as ``data:`` URIs, no script, a print
  stylesheet), Jinja2 with autoescape on.
* Markdown: ``report.LANG.md`` with its figures (PNG and SVG) in
  ``report.LANG-files/``; attacker text is escaped for Markdown or put in
  fenced blocks whose fence is longer than any backtick run inside.
* PDF: the HTML printed by WeasyPrint, which may load nothing but ``data:`` URIs.

With a :class:`~teiten.secrecy.Secrecy`, every output (HTML, Markdown, SVG, and
the PDF's text layer) is checked for sensor addresses before :func:`render` returns.
"""

from __future__ import annotations

import base64
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from markupsafe import Markup, escape

from teiten.errors import ConfigError, DependencyError
from teiten.escape import terminal
from teiten.report.flow import flow_figure
from teiten.report.model import Report
from teiten.report.style import cjk_font, series_chart
from teiten.secrecy import Secrecy

FORMATS = ("html", "md", "pdf")
LANGS = ("ja", "en")
TEMPLATES = Path(__file__).parent / "templates"
_BACKTICKS = re.compile(r"`+")
SEGMENT = {"ja": {"all": "全体", "domestic": "国内", "foreign": "国外"},
           "en": {"all": "all", "domestic": "domestic", "foreign": "foreign"}}  # fmt: skip


def clean(value: object) -> str:
    """Attacker text with control characters made visible, line breaks kept."""
    return "\n".join(terminal(line, 20_000) for line in str(value).split("\n"))


# Always interpreted inline: escapes, code spans, emphasis, links, HTML/autolinks,
# GFM tables and strikethrough.
_MD_INLINE = re.compile(r"[\\`*\[\]<>|~]")
# ``_`` between two letters or digits can neither open nor close emphasis.
_UNDERSCORE = re.compile(r"_+")
# ``&`` only where it would start an entity or numeric character reference.
_ENTITY = re.compile(r"&(?=#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[A-Za-z][A-Za-z0-9]{0,31};)")
_IMAGE = re.compile(r"!(?=\\\[)")  # run after ``[`` became ``\[``
# GFM extended autolinks: ``scheme://``, ``www.`` and e-mail addresses.
_SCHEME = re.compile(r"(?<=[A-Za-z0-9]):(?=//)")
_WWW = re.compile(r"(?<![A-Za-z0-9])([wW]{3})\.")
_EMAIL = re.compile(r"(?<=[A-Za-z0-9._+-])@(?=[A-Za-z0-9])")
# Block syntax at the start of a line: headings, quotes, lists, breaks, setext, fences.
_LINE_START = re.compile(r"^(?:([#>+=\-])|([0-9]{1,9})([.)]))")
_CLOSING_HASHES = re.compile(r"(?<= )#+$")
_URL_SAFE = "/:?#[]@!$&*+,;=%~-._"


def _underscore(m: re.Match[str]) -> str:
    text, start, end = m.string, m.start(), m.end()
    inert = start > 0 and end < len(text) and text[start - 1].isalnum() and text[end].isalnum()
    return m.group(0) if inert else "\\_" * len(m.group(0))


def md_escape(value: object) -> str:
    """Inline Markdown showing exactly ``value``: only what Markdown would interpret is escaped.

    The text may stand at the start of a line, in a heading or in a table cell, so
    block markers at its start, a closing ``#`` run at its end and ``|`` are
    escaped; inside the line, ``\\ ` * [ ] < > ~ |`` always, ``_`` unless it sits
    between two letters, ``&`` where it would start an entity, ``!`` before ``[``
    and the parts of GFM autolinks (``http\\://``, ``www\\.``, ``a\\@b``).
    Line breaks become spaces and surrounding spaces are dropped (Markdown would
    drop them too), so the text stays one line and one paragraph.
    """
    text = " ".join(clean(value).split("\n")).strip()
    text = _MD_INLINE.sub(lambda m: "\\" + m.group(0), text)
    text = _UNDERSCORE.sub(_underscore, text)
    text = _ENTITY.sub(r"\\&", text)
    text = _IMAGE.sub(r"\\!", text)
    text = _SCHEME.sub(r"\\:", text)
    text = _WWW.sub(r"\1\\.", text)
    text = _EMAIL.sub(r"\\@", text)
    text = _LINE_START.sub(_line_start, text, count=1)
    return _CLOSING_HASHES.sub(lambda m: "\\" + m.group(0), text)


def _line_start(m: re.Match[str]) -> str:
    """``\\#``, ``\\-``, …; an ordered-list number keeps its digits and escapes its ``.``/``)``."""
    if m.group(1):
        return "\\" + m.group(1)
    return m.group(2) + "\\" + m.group(3)


def https_url(value: object) -> str | None:
    """``value`` as a link target if it is an https URL (unsafe characters %-encoded), else None.

    Only ``https://host...`` qualifies: other schemes (``javascript:``, ``data:``,
    ``http:``), URLs without a host, and hosts outside ASCII are not links.
    """
    url = str(value)
    if url[:8].lower() != "https://" or len(url) > 4096:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.hostname or not parts.netloc.isascii() or "\\" in parts.netloc:
        return None
    return quote(url, safe=_URL_SAFE)


def md_ref(ref: dict[str, str]) -> str:
    """A reference in Markdown: ``[title](https://…)``, or plain escaped text for other URLs."""
    title, url = str(ref.get("title") or ""), str(ref.get("url") or "")
    target = https_url(url)
    if target is None:
        return f"{md_escape(title)}: {md_escape(url)}" if title else md_escape(url)
    return f"[{md_escape(title or url)}]({target})"


def html_link(url: object) -> Markup:
    """An https URL as an escaped ``<a href rel="noreferrer noopener">``; anything else as text."""
    text = clean(url)
    target = https_url(url)
    if target is None:
        return escape(text)
    return Markup('<a href="{}" rel="noreferrer noopener">{}</a>').format(target, text)


def _longest_run(text: str) -> int:
    return max((len(m.group(0)) for m in _BACKTICKS.finditer(text)), default=0)


def md_code(value: object) -> str:
    """An inline code span that no backtick run inside can close."""
    text = " ".join(clean(value).split("\n"))
    ticks = "`" * (_longest_run(text) + 1)
    return f"{ticks} {text} {ticks}"


def md_fence(value: object) -> str:
    """A fenced block whose fence is longer than any backtick run in the text."""
    text = clean(value)
    fence = "`" * max(3, _longest_run(text) + 1)
    return f"{fence}text\n{text}\n{fence}"


def jdate(iso: str, lang: str) -> str:
    """``2017年11月1日`` in Japanese prose, ISO ``2017-11-01`` in English."""
    if lang != "ja" or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", iso):
        return iso
    y, m, d = (int(x) for x in iso.split("-"))
    return f"{y}年{m}月{d}日"


def ports_text(ports: list[str], lang: str) -> str:
    """``52869/TCP``; ``23/TCP 及び 2323/TCP`` / ``23/TCP and 2323/TCP``."""
    names = [p.upper() for p in ports]
    joiner = " 及び " if lang == "ja" else " and "
    return joiner.join([", ".join(names[:-1]), names[-1]] if len(names) > 2 else names)


def _environment(lang: str, autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES / lang),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        clean=clean, md=md_escape, code=md_code, fence=md_fence, md_ref=md_ref, link=html_link,
        date=lambda s: jdate(str(s), lang), ports=lambda p: ports_text(list(p), lang),
        segment=lambda s: SEGMENT[lang].get(str(s), str(s)),
        pct=lambda x: f"{float(x) * 100:.1f}%",
    )  # fmt: skip
    return env


def draw_figures(report: Report, lang: str, folder: Path) -> dict[int, list[Path]]:
    """Every figure of the report as PNG and SVG in ``folder``, by figure number."""
    out: dict[int, list[Path]] = {}
    for section in report.sections:
        for chart in section.charts:
            out[chart.number] = series_chart(chart, folder / f"fig{chart.number}", lang, report.tz)
        if section.flow is not None:
            n = section.figures["flow"]
            out[n] = flow_figure(section.flow, folder / f"fig{n}", lang)
    return out


def _context(report: Report, lang: str, images: dict[int, str]) -> dict[str, Any]:
    return {"r": report.to_dict(), "lang": lang, "img": images, "css": CSS}


def render_html(report: Report, lang: str, workdir: Path) -> str:
    """The self-contained HTML page (figures drawn into ``workdir`` and embedded)."""
    figures = draw_figures(report, lang, workdir)
    images = {
        n: "data:image/png;base64," + base64.b64encode(paths[0].read_bytes()).decode("ascii")
        for n, paths in figures.items()
    }
    return (
        _environment(lang, True)
        .get_template("report.html.j2")
        .render(_context(report, lang, images))
    )


def render_markdown(report: Report, lang: str, out: Path) -> list[Path]:
    """``report.LANG.md`` and its figure files beside it."""
    folder = out / f"report.{lang}-files"
    figures = draw_figures(report, lang, folder)
    images = {n: f"{folder.name}/{paths[0].name}" for n, paths in figures.items()}
    text = (
        _environment(lang, False)
        .get_template("report.md.j2")
        .render(_context(report, lang, images))
    )
    path = out / f"report.{lang}.md"
    path.write_text(text, encoding="utf-8")
    return [path] + [p for n in sorted(figures) for p in figures[n]]


def _fetcher() -> Any:
    """A WeasyPrint URL fetcher allowed ``data:`` URIs only (never the network)."""
    try:
        from weasyprint.urls import URLFetcher  # type: ignore[import-untyped]

        return URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)
    except ImportError:  # WeasyPrint < 66 takes a function
        from weasyprint.urls import (  # type: ignore[import-untyped, attr-defined, unused-ignore]
            default_url_fetcher,
        )

        def fetch(url: str, *args: Any, **kwargs: Any) -> Any:
            if not url.startswith("data:"):
                raise ValueError(f"report PDFs load no external resource: {url[:60]}") from None
            return default_url_fetcher(url)

        return fetch


def render_pdf(report: Report, lang: str, out: Path) -> Path:
    """``report.LANG.pdf`` printed from the HTML by WeasyPrint."""
    try:
        import weasyprint  # type: ignore[import-untyped]
    except ImportError:
        raise DependencyError(
            "PDF reports need WeasyPrint: pip install 'weasyprint>=62' "
            "(Debian: libpango-1.0-0 libpangoft2-1.0-0)"
        ) from None
    with tempfile.TemporaryDirectory(prefix="teiten-report-") as tmp:
        html = render_html(report, lang, Path(tmp))
    path = out / f"report.{lang}.pdf"
    weasyprint.HTML(string=html, url_fetcher=_fetcher()).write_pdf(path)
    return path


def check_leaks(paths: list[Path], secrecy: Secrecy) -> None:
    """Delete the output and raise if a sensor address appears in any file written
    (HTML, Markdown, SVG text; a PDF's text layer), in any notation."""
    secrecy.check_files(paths)


def render(
    report: Report, fmt: str, lang: str, out: Path, *, redactor: Secrecy | None = None
) -> list[Path]:
    """Write the report in ``fmt`` (html, md, pdf) and ``lang`` (ja, en) into ``out``."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if lang not in LANGS:
        raise ConfigError(f"--lang must be ja or en, not {lang!r}")
    if lang == "ja":
        cjk_font()
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "md":
        paths = render_markdown(report, lang, out)
    elif fmt == "pdf":
        paths = [render_pdf(report, lang, out)]
    else:
        with tempfile.TemporaryDirectory(prefix="teiten-report-") as tmp:
            html = render_html(report, lang, Path(tmp))
        paths = [out / f"report.{lang}.html"]
        paths[0].write_text(html, encoding="utf-8")
    if redactor is not None and not report.internal:
        check_leaks(paths, redactor)
    return paths


CSS = """
@page { size: A4; margin: 18mm 16mm 20mm 16mm;
  @bottom-center { content: counter(page) " / " counter(pages); font-size: 8pt; color: #666; } }
html { font-family: "Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", "DejaVu Sans", sans-serif;
  font-size: 10.5pt; line-height: 1.7; color: #222; }
body { max-width: 46em; margin: 2em auto; padding: 0 1em; }
header { border-bottom: 2px solid #1f4e79; margin-bottom: 1.2em; }
.date { text-align: right; margin: 0; }
.topic { font-size: 8.5pt; color: #1f4e79; letter-spacing: .1em; margin: .4em 0 0; }
h1 { font-size: 15pt; line-height: 1.45; margin: .2em 0 .6em; }
h2 { font-size: 12.5pt; border-left: 5px solid #1f4e79; padding-left: .5em; margin-top: 1.8em; }
h3 { font-size: 11pt; margin-top: 1.3em; }
.summary { background: #f2f6fa; padding: .7em 1em; border-radius: 3px; }
figure { margin: 1.2em 0; break-inside: avoid; page-break-inside: avoid; }
figure img { width: 100%; }
figcaption { text-align: center; font-size: 9pt; margin-top: .3em; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: .6em .8em; font-size: 7.5pt;
  line-height: 1.45; white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-all; }
.label { font-size: 8.5pt; font-weight: bold; margin: .6em 0 .2em; }
table { border-collapse: collapse; width: 100%; font-size: 9pt; margin: .8em 0; }
th, td { border: 1px solid #bfbfbf; padding: .25em .5em; text-align: left; }
th { background: #e9eef4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
ol.refs { font-size: 8.5pt; overflow-wrap: anywhere; }
footer { margin-top: 2.5em; border-top: 1px solid #bfbfbf; font-size: 8pt; color: #666; }
@media print { body { margin: 0; max-width: none; padding: 0; } a { color: inherit; }
  h2, h3 { break-after: avoid; page-break-after: avoid; } }
"""
