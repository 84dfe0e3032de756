"""The instructor's report of the graded class (tests/conftest.py: class_report) in Chromium: every
page opens from the disk with no console error and nothing fetched from the network, every plot is
a non-empty picture, a table sorts when its header is clicked, and a screenshot of each page is kept
in build/report/ (the README's picture is docs/report.png, taken from one of them)."""

import pytest

from autograder import paths
from browser_helpers import CHROMIUM, CHROMIUM_ARGS, require_browser

pytestmark = [pytest.mark.browser, pytest.mark.notebooks, pytest.mark.slow]
SHOTS = paths.ROOT / "build" / "report"

# the share of an image's pixels that are not its most common colour: a plot has axes, bars, text
NON_EMPTY_JS = """img => { const c = document.createElement('canvas'); c.width = img.naturalWidth;
  c.height = img.naturalHeight; const x = c.getContext('2d'); x.drawImage(img, 0, 0);
  const d = x.getImageData(0, 0, c.width, c.height).data; const seen = new Map();
  for (let i = 0; i < d.length; i += 4) { const k = d[i] + ',' + d[i+1] + ',' + d[i+2];
    seen.set(k, (seen.get(k) || 0) + 1); }
  const top = Math.max(...seen.values()); return 1 - top / (d.length / 4); }"""


def test_every_page_opens_offline_without_errors_and_every_plot_is_drawn(class_report):
    require_browser("the report in Chromium")
    from playwright.sync_api import sync_playwright
    reports, out, _ = class_report
    pages = ["index.html"] + [f"{a}.html" for a in reports]
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for name in pages:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                errors, fetched = [], []
                page.on("console", lambda m, e=errors: m.type == "error" and e.append(m.text))
                page.on("pageerror", lambda err, e=errors: e.append(str(err)))
                page.on("request", lambda r, f=fetched: not r.url.startswith(("file:", "data:")) and f.append(r.url))
                page.goto((out / name).as_uri())
                page.wait_for_load_state("load")
                images = page.locator("img")
                assert images.count() >= 1, f"{name} has no plot"
                for i in range(images.count()):
                    img = images.nth(i)
                    assert img.evaluate("i => i.complete && i.naturalWidth > 0"), f"{name}: plot {i} did not load"
                    assert img.evaluate(NON_EMPTY_JS) > 0.02, f"{name}: plot {i} is blank"
                if name != "index.html":
                    table = page.locator("#tests ~ table.sortable").first
                    first = table.locator("tbody tr td").first.inner_text()
                    table.locator("th", has_text="pass rate").click()
                    rates = table.locator("tbody tr td:nth-child(5)").evaluate_all(
                        "tds => tds.map(t => parseFloat(t.dataset.v))")
                    assert rates == sorted(rates), f"{name}: clicking 'pass rate' did not sort: {rates}"
                    assert first  # the table had rows
                page.screenshot(path=str(SHOTS / name.replace(".html", ".png")), full_page=True)
                assert not errors, f"{name}: console errors {errors}"
                assert not fetched, f"{name} fetched {fetched}: the report must open offline"
                page.close()
        finally:
            browser.close()
