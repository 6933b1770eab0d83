"""report.html in a real headless Chromium (Debian's `chromium`, driven through playwright).

Checks what only a browser can: no console errors, no network request (only file: and data:
URLs), every plot laid out with a size, no sideways scrolling of the page on a phone-width
viewport, and no style leaking out of the report when it is embedded in a host page (a notebook
cell). Screenshots land in pytest's tmp_path.

Skipped when chromium or playwright is missing, except under CI (env var CI set), where a
missing browser fails the test instead of silently skipping it. Never runs `playwright install`:
the system chromium is used.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import reports

FIX = Path(__file__).parent / "fixtures"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE, DESKTOP = 390, 1280


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def _require_browser():
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install playwright)")
    executable = _chromium()
    if executable is None:
        missing.append("Debian's chromium (apt-get install chromium)")
    if missing:
        message = "the HTML report browser test needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must not skip it")
        pytest.skip(message)
    return executable


@pytest.fixture(scope="module")
def browser():
    executable = _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A comparison of the batch sweep (oom/error/skipped cases, a partial run) and the natural
    run: every kind of plot, table and banner in one page."""
    out = tmp_path_factory.mktemp("browser-report")
    files = reports.render([FIX / "sweep_oom.json", FIX / "natural.json"], out, formats=["html"])
    assert not files.skipped
    return files.html


class Page:
    def __init__(self, browser, width: int):
        self.context = browser.new_context(viewport={"width": width, "height": 900}, device_scale_factor=1)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def close(self):
        self.context.close()


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_report_opens_cleanly_in_chromium(browser, report, tmp_path, width):
    view = Page(browser, width)
    try:
        page = view.page
        page.goto(report.as_uri(), wait_until="load")
        assert view.errors == []
        assert view.requests and all(u.startswith(("file:", "data:")) for u in view.requests), view.requests

        boxes = page.eval_on_selector_all(
            "svg.gptoss-plot",
            "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; })",
        )
        assert len(boxes) == 8
        for w, h in boxes:
            assert w > 200 and h > 100, boxes
            assert w <= width  # scaled into the viewport (or a scroll box), never cut off by the page

        # a phone never scrolls the whole page sideways: wide tables scroll inside their box
        page_width = page.evaluate("document.documentElement.scrollWidth")
        assert page_width <= width, f"the page is {page_width}px wide on a {width}px screen"
        assert page.evaluate("document.querySelectorAll('.gptoss-report .scroll > table').length") >= 8
        assert page.evaluate("!!document.querySelector('meta[name=viewport]')")
        assert "Partial results." in page.inner_text(".banner")

        shot = tmp_path / f"report-{width}px.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.is_file() and shot.stat().st_size > 50_000
        assert view.errors == []
    finally:
        view.close()


def test_report_styles_stay_inside_their_wrapper(browser):
    """Embedded as a notebook cell would hold it: the host page's own elements keep their style."""
    fragment = reports.report_html(FIX / "cpu_tiny.json")
    host = (
        "<!DOCTYPE html><html><head><style>body{font-family:serif;font-size:20px;color:rgb(1,2,3)}</style></head>"
        '<body><h2 id="host-h2">notebook</h2><table id="host-table"><tr><td id="host-td">cell</td></tr></table>'
        "<svg id=\"host-svg\" width=\"10\" height=\"10\"><path d=\"M0 0L10 10\" stroke=\"black\"/></svg>FRAGMENT</body></html>"
    )
    probe = """() => {
        const s = id => getComputedStyle(document.getElementById(id));
        return [s('host-h2').fontSize, s('host-h2').borderBottomStyle, s('host-td').padding, s('host-td').borderTopStyle,
                s('host-td').whiteSpace, s('host-svg').strokeLinejoin, getComputedStyle(document.body).color,
                getComputedStyle(document.body).fontFamily];
    }"""
    view = Page(browser, PHONE)
    try:
        view.page.set_content(host.replace("FRAGMENT", ""))
        alone = view.page.evaluate(probe)
        view.page.set_content(host.replace("FRAGMENT", fragment))
        assert view.page.evaluate(probe) == alone
        assert view.page.evaluate("document.querySelectorAll('.gptoss-report svg.gptoss-plot').length") >= 4
        assert view.errors == []
        assert all(u.startswith(("about:", "data:")) for u in view.requests), view.requests
    finally:
        view.close()
