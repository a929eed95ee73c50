"""The suite's own rules, checked on its source: a browser test must not depend on how fast a page
loads. Beside two CPU hogs, a click on the whole body (to give a page the keyboard) landed while
the page was still filling in: the body's box kept growing, Playwright retried the click with its
other scroll alignments and scrolled the page to its end, and /filters' convolution was then read
as off the first screen. A page gets the keyboard through tests.helpers.focus_page instead."""
from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).parent


def test_no_browser_test_clicks_the_whole_body():
    clicks = re.compile(r"""(?:\.click\(\s*["']body["']|locator\(\s*["']body["']\s*\)\.click)""")
    found = [f"{path.name}:{n}" for path in sorted(TESTS.glob("*.py")) if path.name != Path(__file__).name
             for n, line in enumerate(path.read_text().splitlines(), 1) if clicks.search(line)]
    assert found == [], f"give the page the keyboard with focus_page(page), not a click on the body: {found}"
