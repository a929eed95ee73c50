"""Real browser tests of the training basics panels, used as a person would: the six trials of
10 = 3a + b typed over and handed to gradient descent, the split tab fitting a curve, the step beside
sigmoid and maxout's learned lines, the four cost functions, full batch beside mini-batch, zero
against random initialisation, and the Age/Salary table centred and scaled."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.helpers import ARTIFACTS

pytestmark = pytest.mark.browser

SIZES = {"phone": (390, 844), "laptop": (1280, 720)}


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def no_overflow(page) -> None:
    """Nothing sticks out past the page's right edge."""
    wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert wide <= 1, f"the page is {wide}px wider than the window"


def at_every_size(page, prefix: str) -> None:
    """The page at phone, laptop and projector size: nothing wider than the screen, a screenshot each."""
    for name, (w, h) in SIZES.items():
        page.set_viewport_size({"width": w, "height": h})
        no_overflow(page)
        shoot(page, f"{prefix}{name}")


def test_the_six_trials_of_10_equals_3a_plus_b_then_gradient_descent(page, server):
    page.goto(server + "/neuron?tab=line")
    errors = page.locator("#trial-rows td.error")
    expect(errors).to_have_text(["6", "-5", "2", "-1", "1", "0"])  # target − prediction, as the slide
    expect(page.locator("#trial-rows td.prediction")).to_have_text(["4", "15", "8", "11", "9", "10"])
    expect(page.locator("#trial-formula")).to_have_text("3a + b")
    # trial 4 typed over: a = 2.5, b = 2.5 -> 3 × 2.5 + 2.5 = 10, error 0
    page.get_by_label("trial 4: a").fill("2.5")
    page.get_by_label("trial 4: b").fill("2.5")
    expect(errors.nth(3)).to_have_text("0")
    expect(page.locator("#trial-verdict")).to_contain_text("Trial 4")
    expect(page.locator("#trial-verdict")).to_contain_text("✓")
    assert "trials=1%3A1%2C4%3A3%2C2%3A2%2C2.5%3A2.5" in page.url  # a lesson link keeps them
    page.click("#trial-add")
    expect(page.locator("#trial-rows tr")).to_have_count(7)
    page.locator("#trial-y").fill("13")  # another target: every error follows
    expect(errors.first).to_have_text("9")
    page.click("#trial-slides")
    expect(errors).to_have_text(["6", "-5", "2", "-1", "1", "0"])
    page.get_by_label("trial 1: a").click()
    href = page.locator("#trials-descent").get_attribute("href")
    assert "data=3%3A10" in href and "start=1%2C1" in href, href
    at_every_size(page, "basics-trials-")
    page.set_viewport_size({"width": 1280, "height": 720})
    page.click("#trials-descent")  # the line fit through (3, 10), stepped by gradient descent
    expect(page.locator("[data-tab=line_fit]")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#numbers dd").first).to_have_text("1")
    page.locator("#main-plot").click(position={"x": 2, "y": 2})
    page.keyboard.press("r")
    for _ in range(3):
        page.keyboard.press(" ")
    expect(page.locator("#counter")).to_have_text("3")
    assert page.errors == []


def test_the_split_tab_fits_a_curve_and_says_it_is_regression(page, server):
    page.goto(server + "/descent?tab=split")
    expect(page.locator("#split-task")).to_contain_text("Classification")
    page.locator("#task").select_option("regression")
    expect(page.locator("#split-task")).to_contain_text("Regression")
    expect(page.locator("#split-task")).to_contain_text("Dense(3, input_dim=2")
    expect(page.locator("#formula")).to_have_text("Fit a curve: a small network learns a number for each x")
    expect(page.locator("#layers")).to_have_value("3,3")
    expect(page.locator("#activation")).to_have_value("relu")
    expect(page.locator("#dataset")).to_have_value("wave")
    expect(page.locator("#numbers dt")).to_have_text(["loss (MSE)"])
    assert "task=regression" in page.url
    page.locator("#main-plot").click(position={"x": 2, "y": 2})
    for _ in range(5):
        page.keyboard.press(" ")
    expect(page.locator("#counter")).to_have_text("5")
    expect(page.locator("#neuron-layers .neuron-row")).to_have_count(2)
    at_every_size(page, "basics-regression-")
    page.locator("#task").select_option("classification")
    expect(page.locator("#numbers dt")).to_have_text(["loss", "accuracy"])
    assert page.errors == []


def test_step_beside_sigmoid_maxout_learned_and_the_four_cost_functions(page, server):
    page.goto(server + "/neuron?tab=activations")
    expect(page.locator("#act-legend li")).to_have_count(6)  # the step has its own plot
    expect(page.locator("#maxout-answer")).to_contain_text("learned: max(")
    page.locator("#maxout-target").select_option("relu")
    page.click("#maxout-learn")
    expect(page.locator("#maxout-answer")).to_contain_text("max(")
    at_every_size(page, "basics-activations-")
    page.set_viewport_size({"width": 1280, "height": 720})
    page.click("[data-tab=loss]")
    rows = page.locator("#cost-rows tr")
    expect(rows).to_have_count(4)
    expect(rows.nth(1)).to_contain_text("Root Mean Square Error (RMSE)")
    expect(rows.nth(2)).to_contain_text("Binary classification")
    expect(page.locator("#cost-rows tr[data-loss=mse] td").nth(2)).to_have_text("0.04667")  # (0.09 + 0.04 + 0.01) / 3
    shoot(page, "basics-loss-laptop")
    page.click("[data-tab=neuron]")
    page.locator("#activation").select_option("step")
    expect(page.locator("#neuron-output")).to_have_text("step(3.2) = 1.00")
    assert page.errors == []


def test_full_batch_beside_mini_batch(page, server):
    page.goto(server + "/neuron?tab=batches")
    expect(page.locator("#batch-answer")).to_contain_text("8 batches an epoch")
    page.locator("#batch-epochs").fill("3")
    page.click("#batch-race")
    expect(page.locator("#race-answer")).to_contain_text("full batch: 3 steps")
    expect(page.locator("#race-answer")).to_contain_text("mini-batch of 128: 24 steps")
    page.click("#full-batch")
    expect(page.locator("#batch-size")).to_have_value("1000")
    expect(page.locator("#batch-answer")).to_contain_text("1 batches an epoch")
    at_every_size(page, "basics-batches-")
    assert page.errors == []


def test_zero_initialisation_cannot_break_the_symmetry_and_scaling_helps_descent(page, server):
    page.goto(server + "/neuron?tab=init")
    answer = page.locator("#init-answer")
    expect(answer).to_contain_text("still identical")
    cells = page.locator("#init-rows tr")
    expect(cells).to_have_count(3)
    first = cells.nth(0).locator("td").all_text_contents()[1:]
    assert cells.nth(1).locator("td").all_text_contents()[1:] == first == cells.nth(2).locator("td").all_text_contents()[1:]
    page.locator("#init-kind").select_option("random")
    expect(answer).to_contain_text("differ")
    assert "init=random" in page.url
    at_every_size(page, "basics-init-")
    page.set_viewport_size({"width": 1280, "height": 720})
    page.click("[data-tab=scaling]")
    expect(page.locator("#scaled-table tr").nth(1)).to_contain_text("-1.10")
    expect(page.locator("#scaled-table tr").nth(1)).to_contain_text("-1.37")
    expect(page.locator("#raw-table tr").nth(1)).to_contain_text("40,000")
    expect(page.locator("#scaling-answer")).to_contain_text("not at the minimum after 200 steps")
    expect(page.locator("#scaling-answer")).to_contain_text("at the minimum in 46 steps")
    at_every_size(page, "basics-scaling-")
    assert page.errors == []


@pytest.mark.parametrize("path,tabs", [
    ("/neuron", ["line", "activations", "loss", "batches", "init", "scaling"]),
    ("/descent?tab=split&task=regression", [None]),
])
def test_the_new_panels_in_spanish_show_no_english(page, server, path, tabs):
    from tests.test_browser_spanish import RECORD_CANVAS_TEXT, english_on_screen
    page.add_init_script(RECORD_CANVAS_TEXT)
    page.goto(server + path + ("&" if "?" in path else "?") + "lang=es")
    seen = set()
    for tab in tabs:
        if tab:
            page.click(f"[data-tab={tab}]")
        if tab == "batches":
            page.click("#batch-race")
            expect(page.locator("#race-answer")).to_contain_text("lote completo")
        if tab == "init":
            expect(page.locator("#init-answer")).to_contain_text("idénticas")
        if tab == "scaling":
            expect(page.locator("#scaling-answer")).to_contain_text("centrada y escalada")
        if tab == "activations":
            expect(page.locator("#maxout-answer")).to_contain_text("aprendido")
        if tab == "line":
            expect(page.locator("#trial-verdict")).to_contain_text("Intento 1")
        if tab is None:
            expect(page.locator("#split-task")).to_contain_text("Regresión")
            expect(page.locator("#numbers dd")).to_have_count(1)
        seen |= set(english_on_screen(page))
    assert sorted(seen) == []
    assert page.errors == []


@pytest.mark.parametrize("path", ["/neuron", "/descent", "/filters"])
def test_every_tab_clicked_before_the_pages_data_arrives_shows_it_when_it_comes(page, server, path):
    """On a busy server a person clicks a tab before the page's first answers have come (the
    example neuron, the descent's data, the filters): nothing breaks then, and the tab shows its
    content once they arrive (the trials tab threw "reading 'update'" of a panel not made yet)."""
    held, released = [], []

    def hold(route):
        route.continue_() if released else held.append(route)
    page.route("**/api/**", hold)
    page.goto(server + path)
    tabs = page.locator("[data-tab]")
    expect(tabs.first).to_be_visible()
    names = [tabs.nth(i).get_attribute("data-tab") for i in range(tabs.count())]
    for name in names:
        page.click(f"[data-tab={name}]")
    released.append(True)
    for route in held:
        route.continue_()
    page.click(f"[data-tab={names[0]}]")
    expect(page.locator(f"[data-tab={names[0]}]")).to_have_attribute("aria-selected", "true")
    page.wait_for_load_state("networkidle")
    assert page.errors == []
