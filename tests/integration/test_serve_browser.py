"""The dashboard in a real browser: ``teiten serve`` on loopback, Debian's Chromium driven by
Playwright. Every page renders with no console error (a CSP violation is one), the SVG charts
have their lines drawn, screenshots are kept, and sessions carrying ``<script>``,
``"><img onerror>`` and ``javascript:`` URLs never run anything.

Screenshots go to ``$TEITEN_ARTEFACTS/serve`` when that variable is set (CI keeps them),
else to the test's temporary folder.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api as playwright_sync
from test_serve_pages import hostile_settings

from teiten.config import Settings

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium"),
]

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
]  # fmt: skip
STARTED = re.compile(r"serving (http://127\.0\.0\.1:\d+)/")


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """``teiten serve`` over ``settings``' store on a free loopback port; yields its base URL."""
    env = {
        **os.environ,
        "TEITEN_CONFIG": "",
        "TEITEN_SENSOR_NETWORKS": ",".join(settings.sensor_networks),
        "TEITEN_TZ": str(settings.tz),
        "TEITEN_HOME_COUNTRY": str(settings.home_country),
    }
    command = [sys.executable, "-m", "teiten", "serve", "--data", str(settings.data_dir),
               "--port", "0", "--rate", "0"]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    reader: list[threading.Thread] = []
    try:
        yield _started(proc, reader)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for thread in reader:
            thread.join(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()


def _started(
    proc: subprocess.Popen[str], reader: list[threading.Thread], timeout: float = 120
) -> str:
    """The URL the server prints once it listens (its other lines are drained in a thread)."""
    found: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            m = STARTED.search(line)
            if m and not found:
                found.append(m.group(1))
                ready.set()
        ready.set()

    reader.append(threading.Thread(target=read, daemon=True))
    reader[0].start()
    ready.wait(timeout)
    assert found, f"teiten serve did not start (exit status {proc.poll()})"
    return found[0]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    root = os.environ.get("TEITEN_ARTEFACTS")
    folder = Path(root) / "serve" if root else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Watched:
    """A page whose dialogs, console messages and page errors are recorded."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, url: str) -> Any:
        response = self.page.goto(url, wait_until="load")
        assert response is not None and response.status == 200, (url, response and response.status)
        return self.page

    def close(self) -> None:
        self.context.close()


def _shot(page: Any, folder: Path, name: str) -> Path:
    path = folder / ((re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "overview") + ".png")
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    return path


def _inert(page: Any) -> None:
    """No script element, no image, every link on this origin, the title the server gave."""
    assert page.evaluate("document.querySelectorAll('script, img, iframe').length") == 0
    assert page.evaluate("[...document.links].every(a => a.origin === location.origin)")
    assert page.title().endswith("— teiten")


@pytest.fixture(scope="module")
def seed_url(seed_store: Settings) -> Iterator[str]:
    with serving(seed_store) as url:
        yield url


def test_every_page_renders_in_chromium(browser: Any, seed_url: str, artefacts: Path) -> None:
    w = Watched(browser)
    try:
        page = w.open(seed_url + "/")
        campaign = page.locator("#campaigns a").first.get_attribute("href")
        pages = ["/", "/?lang=en", "/ports/52869/tcp", "/ports/23/tcp?split=domestic",
                 "/ports/23/tcp?by=hour&split=fingerprint", campaign,
                 "/advisories?model=LAN-W300N%2FR&version=Ver2.27"]  # fmt: skip
        page = w.open(seed_url + "/ports/52869/tcp")
        pages.append(page.locator("#sources a").first.get_attribute("href"))
        pages.append(page.locator("#sessions a").first.get_attribute("href"))
        for url in pages:
            page = w.open(seed_url + url)
            _inert(page)
            assert page.locator("h1").inner_text().strip()
            _shot(page, artefacts, url)
        assert w.dialogs == [] and w.console == []
    finally:
        w.close()


def test_charts_have_their_lines_drawn(browser: Any, seed_url: str, artefacts: Path) -> None:
    w = Watched(browser)
    try:
        page = w.open(seed_url + "/ports/23/tcp?split=domestic&lang=en")
        charts = page.locator("svg.chart")
        assert charts.count() == 2
        lines = page.locator("svg.chart path.series")
        assert lines.count() == 4  # domestic and foreign, packets and sources
        for i in range(lines.count()):
            box = lines.nth(i).bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 10, box
        markers = page.locator("svg.chart g.marker line")
        assert markers.count() == 2  # the domestic rise of 23/tcp: its onset on both charts
        x = markers.first.bounding_box()
        plot = charts.first.bounding_box()
        assert x is not None and plot is not None
        assert plot["x"] + plot["width"] * 0.3 < x["x"] < plot["x"] + plot["width"] * 0.5
        _shot(page, artefacts, "chart-23-tcp-domestic")
        assert w.console == []
    finally:
        w.close()


@pytest.fixture(scope="module")
def hostile_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(hostile_settings(tmp_path_factory.mktemp("hostile-browser"))) as url:
        yield url


def test_hostile_sessions_never_run(browser: Any, hostile_url: str, artefacts: Path) -> None:
    w = Watched(browser)
    seen: set[str] = set()
    try:
        todo = ["/", "/ports/52869/tcp", "/ports/80/tcp", "/ports/23/tcp"]
        while todo and len(seen) < 30:
            url = todo.pop()
            if url in seen:
                continue
            seen.add(url)
            page = w.open(hostile_url + url)
            page.wait_for_timeout(200)
            _inert(page)
            hrefs = page.eval_on_selector_all("a", "xs => xs.map(a => a.getAttribute('href'))")
            todo += [h for h in hrefs if re.match(r"/(sessions|sources)/", h)]
            if url.startswith("/sessions/"):
                text = page.locator("main").inner_text()
                assert "<script>alert(1)</script>" in text or "javascript:alert(1)" in text
                _shot(page, artefacts, "hostile" + url)
        assert any(u.startswith("/sessions/") for u in seen)
        assert w.dialogs == [], w.dialogs
        assert w.console == [], w.console
    finally:
        w.close()
