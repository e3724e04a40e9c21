"""Headless Chromium for tests that look at a report as a reader does (Playwright).

Playwright drives Debian's own browser (``/usr/bin/chromium``, installed by the Makefile's
system packages) through ``executable_path``: Playwright's browser download is never used. The
flags keep the browser off the network and away from first-run work.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# One laptop screen: what a reader sees before scrolling.
SCREEN = {"width": 1280, "height": 900}
LOG_LINE = re.compile(
    r"\b(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b|\[IPKernelApp\]|Traceback \(most recent|"
    r"papermill|\d\d:\d\d:\d\d(,\d+)? "
)


@dataclass(frozen=True)
class FirstScreen:
    """What a reader sees on opening a page: visible text and the boxes of key elements."""

    text: str
    height: int
    boxes: dict[str, list[dict[str, float]]]
    page_text: str

    def visible(self, name: str) -> list[dict[str, float]]:
        """Boxes of element kind ``name`` whose top edge is on the first screen."""
        return [b for b in self.boxes[name] if b["top"] < self.height and b["height"] > 0]


_COLLECT = """
() => {
  const h = window.innerHeight;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = [];
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const range = document.createRange();
    range.selectNodeContents(node);
    const r = range.getBoundingClientRect();
    if (r.height > 0 && r.top < h && r.bottom > 0) { seen.push(node.textContent); }
  }
  const box = (el) => { const r = el.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, height: r.height, width: r.width}; };
  const headings = Array.from(document.querySelectorAll('h2'));
  const title = (x) => x.textContent.replace('\u00b6', '').trim();  // drop anchor marks
  const ranking = headings.find(x => title(x) === 'Checkpoint ranking');
  let rankingTable = null;
  for (let el = ranking; el; el = el.nextElementSibling) {
    if (el.tagName === 'TABLE') { rankingTable = el; break; }
  }
  return {
    text: seen.join(' '),
    height: h,
    page_text: document.body.innerText,
    boxes: {
      verdict: Array.from(document.querySelectorAll('.verdict')).map(box),
      ranking_heading: ranking ? [box(ranking)] : [],
      ranking_table: rankingTable ? [box(rankingTable)] : [],
      img: Array.from(document.querySelectorAll('img')).map(box),
      pre: Array.from(document.querySelectorAll('pre')).map(box),
    },
  };
}
"""


@contextmanager
def chromium_page() -> Iterator[Any]:
    """A Playwright page in headless Chromium at :data:`SCREEN` size."""
    if not CHROMIUM.is_file():
        raise AssertionError(
            f"{CHROMIUM} is missing; install Debian's chromium (`apt-get install -y chromium`, "
            "one of the Makefile's system packages) to run the report rendering tests"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=list(FLAGS))
        try:
            page = browser.new_page(viewport=SCREEN)
            yield page
        finally:
            browser.close()


def open_report(html: Path, screenshot: Path | None = None) -> FirstScreen:
    """Open ``html`` from disk, save a screenshot of the first screen, return what shows."""
    with chromium_page() as page:
        page.goto(html.resolve().as_uri(), wait_until="load")
        if screenshot is not None:
            page.screenshot(path=str(screenshot))
        data = page.evaluate(_COLLECT)
    return FirstScreen(
        text=data["text"], height=data["height"], boxes=data["boxes"], page_text=data["page_text"]
    )


def assert_first_screen_shows_ranking_and_charts(shown: FirstScreen) -> None:
    """The verdict, the whole ranking table and the top of a chart are on the first screen,
    and nothing on the page looks like a log line."""
    assert shown.visible("verdict"), "the verdict is not on the first screen"
    tables = shown.boxes["ranking_table"]
    assert tables, "the page has no ranking table under a 'Checkpoint ranking' heading"
    assert tables[0]["bottom"] <= shown.height, (
        f"the ranking table ends below the first screen: {tables[0]}"
    )
    assert shown.visible("img"), f"no chart starts on the first screen: {shown.boxes['img'][:2]}"
    assert not shown.boxes["pre"], "the report shows preformatted output (a notebook stream?)"
    match = LOG_LINE.search(shown.page_text)
    if match is not None:
        context = shown.page_text[max(0, match.start() - 80) : match.end() + 80]
        raise AssertionError(f"log-like text in the report: {context!r}")
