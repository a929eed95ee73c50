"""Real browser tests of the descent page telling the truth where a class looks (issue 23): the
verdict of a run that spirals in, the step that blew up, each exercise with its own settings, the
answer on the first screen of a projector, a laptop and a phone, and no English left in Spanish."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

TABS = ("parabola", "line_fit", "surface", "split")


def ready(page) -> None:
    page.wait_for_function("document.querySelectorAll('#numbers dd').length > 0")


def counter(page) -> int:
    return int(page.locator("#counter").text_content())


def press_space(page, n: int) -> None:
    """n steps by the keyboard, and wait until the page has taken them all."""
    target = counter(page) + n
    for _ in range(n):
        page.keyboard.press(" ")
    page.wait_for_function(f"document.getElementById('counter').textContent === '{target}'")


def numbers(page) -> dict[str, str]:
    keys = page.locator("#numbers dt").all_text_contents()
    return dict(zip(keys, page.locator("#numbers dd").all_text_contents()))


def lr_in_url(page) -> str | None:
    return page.evaluate("new URLSearchParams(location.search).get('lr')")


# --- item 3: the verdict judges the trend, and a blow-up says what happened and where -----------

def test_momentum_spiralling_in_is_not_called_diverging(page, server):
    page.goto(server + "/descent?tab=surface&problem=bowl&optimizer=momentum&lr=0.08")
    ready(page)
    for _ in range(3):  # around step 30 the loss rises three steps running: momentum climbing back
        press_space(page, 10)
        verdict = page.locator("#verdict").text_content()
        assert "diverg" not in verdict and page.locator("#verdict").get_attribute("data-state") != "diverged", verdict
    assert "rises for now" in verdict, verdict
    press_space(page, 96)
    expect(page.locator("#verdict")).to_have_text("reached the minimum in 126 steps ✓")
    assert page.errors == []


def test_rosenbrock_at_0_08_shows_the_step_that_blew_up_and_where_it_went(page, server):
    page.goto(server + "/descent?tab=surface&problem=rosenbrock&optimizer=sgd&lr=0.08")
    ready(page)
    assert page.locator("#verdict").text_content() == ""  # nothing has happened yet
    press_space(page, 1)
    verdict = page.locator("#verdict").text_content()
    assert verdict.startswith("diverged after 1 step ✗") and "x = 10.9, y = 6" in verdict, verdict
    assert "off the plot" in verdict and page.locator("#verdict").get_attribute("data-state") == "diverged"
    where = page.locator("#offplot")  # the ball is pinned at the plot's edge, and says where it is
    assert where.is_visible() and "x = 10.9, y = 6" in where.text_content(), where.text_content()
    assert numbers(page)["x"] == "10.9"
    assert page.errors == []


# --- item 4: each tab keeps its own settings -------------------------------------------------

def test_split_the_data_reached_by_its_tab_has_its_own_rate_and_separates_the_circles(page, server):
    page.goto(server + "/descent")
    ready(page)
    assert page.locator("#lr-number").input_value() == "0.08"
    page.click("[data-tab=split]")
    page.wait_for_function("document.getElementById('numbers').textContent.includes('%')")
    assert page.locator("#lr-number").input_value() == "0.3" and lr_in_url(page) == "0.3"
    page.locator("#main-plot").click(position={"x": 2, "y": 2})  # focus off the tab button
    press_space(page, 50)
    page.wait_for_function("!document.getElementById('numbers').textContent.includes('–')")
    accuracy = int(numbers(page)["accuracy"].rstrip("%"))
    assert accuracy >= 95, accuracy  # the circles are separated

    page.click("[data-tab=parabola]")  # back: the 1-D exercise's own rate, in the page and the URL
    ready(page)
    assert page.locator("#lr-number").input_value() == "0.08" and lr_in_url(page) == "0.08"
    page.fill("#lr-number", "1.05")
    page.locator("#lr-number").dispatch_event("change")
    page.wait_for_function("new URLSearchParams(location.search).get('lr') === '1.05'")
    page.click("[data-tab=line_fit]")  # 1.05 would blow the line fit up at once: it has its own
    page.wait_for_function("document.querySelector('[data-tab=line_fit]').getAttribute('aria-selected') === 'true'")
    assert page.locator("#lr-number").input_value() == "0.08" and lr_in_url(page) == "0.08"
    page.click("[data-tab=split]")
    expect(page.locator("#lr-number")).to_have_value("0.3")
    page.click("[data-tab=parabola]")  # and the 1-D exercise has the 1.05 the class chose for it
    expect(page.locator("#lr-number")).to_have_value("1.05")
    assert lr_in_url(page) == "1.05"
    assert page.errors == []


# --- item 6: the answer on the first screen ---------------------------------------------------

SIZES = [((1280, 720), "&projector=1"), ((1366, 768), ""), ((390, 844), "")]

FITS = """(ids) => ids.map((id) => {
  const el = document.getElementById(id), r = el.getBoundingClientRect();
  return { id, top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height,
           scroll: el.scrollWidth, client: el.clientWidth };
})"""


@pytest.mark.parametrize("size, query", SIZES, ids=["projector", "laptop", "phone"])
def test_the_plot_the_verdict_and_the_numbers_are_on_the_first_screen(browser, server, size, query):
    width, height = size
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    for tab in TABS:
        page.goto(f"{server}/descent?tab={tab}{query}")
        ready(page)
        page.locator("#main-plot").click(position={"x": 2, "y": 2})  # keys act on the page
        if tab == "split":
            press_space(page, 3)
        else:
            press_space(page, 6)
            page.wait_for_function("document.getElementById('verdict').textContent.length > 0")
        seen = page.evaluate(FITS, ["main-plot", "counter", "verdict", "numbers"])
        for box in seen:
            empty = tab == "split" and box["id"] == "verdict"  # says something only when it diverges
            assert (box["height"] > 0 or empty) and box["top"] >= 0 and box["bottom"] <= height + 0.5, (tab, size, box)
            assert box["left"] >= 0 and box["right"] <= width + 0.5, (tab, size, box)
            assert box["scroll"] <= box["client"] + 1, (tab, size, box)  # nothing cut inside
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, (tab, size, overflow)
        if width < 700:  # a phone: the plot and the verdict come before the controls
            plot, verdict = seen[0], seen[2]
            controls = page.locator("#lr-slider").bounding_box()
            assert plot["bottom"] <= controls["y"] and verdict["bottom"] <= controls["y"], (tab, plot, verdict, controls)
    context.close()
    assert errors == []


# --- item 9: no English in Spanish ------------------------------------------------------------

ENGLISH_WORDS = re.compile(r"\b(gradient|loss|accuracy|MSE)\b")
ENGLISH_TITLES = ("A convex loss curve", "A round bowl", "A long narrow valley", "Rosenbrock's banana",
                  "Fit a line", "Split the data", "a small network learns")


def test_every_tab_in_spanish_names_its_problem_and_numbers_in_spanish(page, server):
    page.goto(server + "/descent?lang=es")
    ready(page)
    for tab in TABS:
        page.click(f"[data-tab={tab}]")
        page.wait_for_function(f"document.querySelector('[data-tab={tab}]').getAttribute('aria-selected') === 'true'")
        page.wait_for_function("document.querySelectorAll('#numbers dd').length > 0")
        page.locator("#main-plot").click(position={"x": 2, "y": 2})
        press_space(page, 4)
        problems = ["bowl", "valley", "rosenbrock", "line_fit"] if tab == "surface" else [None]
        for problem in problems:
            if problem:
                page.select_option("#problem", problem)
                page.wait_for_function(f"new URLSearchParams(location.search).get('problem') === '{problem}'")
                ready(page)
            title = page.locator("#formula").text_content()
            labels = " ".join(page.locator("#numbers dt").all_text_contents())
            assert title and not any(e in title for e in ENGLISH_TITLES), (tab, title)
            assert not ENGLISH_WORDS.search(labels), (tab, labels)
            assert not ENGLISH_WORDS.search(page.locator("#verdict").text_content()), tab
    assert page.errors == []
