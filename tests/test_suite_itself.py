"""The suite's own rules, checked on its source: a browser test must not depend on how fast a page
loads or a job trains. Every wait takes the suite's one generous bound (conftest.WAIT_MS). And a
page gets the keyboard through tests.helpers.focus_page, never a click on the whole body: beside
two CPU hogs such a click landed while the page was still filling in, the body's box kept growing,
Playwright retried the click with its other scroll alignments and scrolled the page to its end,
and /filters' convolution was then read as off the first screen."""
from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).parent


def places(pattern: str) -> list[str]:
    """file:line of each match of `pattern` in the other test files."""
    found = []
    for path in sorted(TESTS.glob("*.py")):
        if path.name != Path(__file__).name:
            text = path.read_text()
            found += [f"{path.name}:{text.count(chr(10), 0, m.start()) + 1}" for m in re.finditer(pattern, text)]
    return found


def test_no_browser_test_clicks_the_whole_body():
    found = places(r"""(?:\.click\(\s*["']body["']|locator\(\s*["']body["']\s*\)\.click)""")
    assert found == [], f"give the page the keyboard with focus_page(page), not a click on the body: {found}"


def test_no_browser_wait_gives_itself_a_shorter_bound_than_the_suites():
    """Every wait of a page (wait_for_*, a locator's wait_for, expect) gets conftest.WAIT_MS: beside
    two CPU hogs a photo network's training from scratch took longer than the 60 s one test gave it."""
    found = places(r"\.(?:wait_for_function|wait_for_selector|wait_for|to_\w+)\((?:[^()]|\([^()]*\))*timeout=")
    assert found == [], f"let the wait take conftest.WAIT_MS: {found}"
