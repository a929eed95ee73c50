"""/train shows overfitting and what fights it (lessons 003, 004): the ready comparison trains the
same small-data run without and with weight decay, dropout and the best epoch kept; the curves
are overlaid, the epoch of lowest validation loss is marked on the loss chart, the run that
overfits says so from there, and each saved model says which epoch it is. In Spanish, on a
phone and on a projector."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.helpers import ARTIFACTS, focus_page

pytestmark = pytest.mark.browser


def chart(page, canvas: str) -> dict:
    return page.evaluate("""(id) => {
        const c = window.Chart.getChart(document.getElementById(id));
        return { legend: c.options.plugins.legend.labels.font.size, ticks: c.options.scales.x.ticks.font.size,
                 lines: c.data.datasets.map((d) => ({ label: d.label, points: d.data.length,
                                                      x: d.data.length ? d.data[0].x : null })) };
    }""", canvas)


def open_train(browser, server, width, height, query=""):
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(server + "/train")
    page.evaluate("localStorage.clear()")
    page.goto(server + "/train" + query)
    page.wait_for_function("document.querySelectorAll('#layers tr').length >= 2")
    return context, page


def test_the_ready_comparison_marks_where_the_run_without_overfits(browser, server):
    context, page = open_train(browser, server, 1280, 720)
    page.click("#ready-comparison")
    expect(page.locator("#preset")).to_have_value("mlp_512_128")
    assert page.locator("[name=train_size]").input_value() == "500"
    assert page.locator("[name=compare]").is_checked() and page.locator("[name=keep_best]").is_checked()
    assert "compare=" in page.url and "weight_decay=0.005" in page.url  # a link reproduces it
    page.click("#train")
    expect(page.locator("#job-status")).to_have_attribute("data-status", "done")
    notes = page.locator("#overfit-note li")
    expect(notes).to_have_count(2)
    without, with_ = notes.all_text_contents()
    assert without.startswith("without: ★ lowest validation loss") and "overfitting from epoch" in without, without
    assert with_.startswith("with: ") and "saved the best epoch" in with_ or "saved the last epoch" in with_, with_
    drawn = chart(page, "loss-chart")
    labels = [line["label"] for line in drawn["lines"]]
    assert labels[:4] == ["train (without)", "validation (without)", "train (with)", "validation (with)"], labels
    assert labels[4] == "overfitting from here (without)", labels  # the marker, at the lowest validation loss
    marker = drawn["lines"][4]
    epoch = int(without.split("at epoch ")[1].split()[0])
    assert marker["points"] == 1 and marker["x"] == epoch * 16, (marker, epoch)  # 16 batches of 32 an epoch
    assert drawn["lines"][1]["points"] == 40  # every epoch of the run without: nothing stopped it
    focus_page(page)
    page.keyboard.press("Shift+P")  # projector mode: the charts' text grows
    expect(page.locator("html.projector")).to_have_count(1)
    page.wait_for_function("window.Chart.getChart(document.getElementById('loss-chart')).options.scales.x.ticks.font.size >= 20")
    drawn = chart(page, "loss-chart")
    assert drawn["legend"] >= 20 and drawn["ticks"] >= 20, drawn  # legible on a projector
    saved = page.locator("#saved p").all_text_contents()
    assert len(saved) == 2 and "(without)" in saved[0] and "(with)" in saved[1], saved
    page.screenshot(path=str(ARTIFACTS / "train-overfitting-1280x720.png"), full_page=True)
    assert page.errors == []
    context.close()


def test_the_overfitting_controls_fit_a_phone_in_spanish(browser, server):
    context, page = open_train(browser, server, 390, 844, "?lang=es")
    box = page.locator("#overfit-setup")
    expect(box).to_contain_text("Contra el sobreajuste")
    page.click("#ready-comparison")
    expect(page.locator("#preset")).to_have_value("mlp_512_128")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width  # nothing wider than the phone
    bounds = box.bounding_box()
    assert bounds["x"] >= 0 and bounds["x"] + bounds["width"] <= 390, bounds
    box.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "train-overfitting-390x844.png"))
    assert page.errors == []
    context.close()
