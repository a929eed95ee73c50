"""/train evaluates a network by k-fold cross-validation (lesson 000's project): the folds train one
after the other ("Fold 2/3 · ... batch 13/13"), each fold's curves are overlaid, and at the end a
panel says each held-out fold's accuracy and their mean and spread as the lesson's Keras loop
prints them ("> 98.450", "Accuracy: mean=98.617 std=0.105, n=5"): the numbers of the API's result.
Before it starts, the page says how long it takes on this server. In Spanish too."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.helpers import ARTIFACTS
from tests.test_browser_overfitting import chart, open_train

pytestmark = pytest.mark.browser

DONE_EVENT = """(id) => new Promise((resolve, reject) => {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/train/${id}`);
    ws.onmessage = (m) => { const e = JSON.parse(m.data); if (e.type === "done") { ws.close(); resolve(e); } };
    ws.onerror = reject;
})"""


def test_three_folds_of_600_images_end_with_the_api_s_mean_and_spread(browser, server):
    context, page = open_train(browser, server, 1280, 800)
    page.select_option("#preset", "mlp_16")
    expect(page).to_have_url(re.compile(r"architecture=mlp_16"))  # described: the request sends it
    page.check("[name=kfold]")
    page.fill("[name=folds]", "3")
    page.select_option("[name=fold_images]", "600")
    page.fill("[name=epochs]", "1")
    page.locator("[name=epochs]").dispatch_event("change")
    estimate = page.locator("#kfold-estimate")
    expect(estimate).to_contain_text("Each fold trains on 400 images and tests on 200: 13 mini-batches an epoch.")
    expect(estimate).to_contain_text("Estimate: about")
    expect(estimate).to_contain_text("on this server")
    assert "kfold=1" in page.url and "folds=3" in page.url and "fold_images=600" in page.url  # a link reproduces it
    page.click("#train")
    expect(page.locator("#job-status")).to_have_attribute("data-status", "done")
    expect(page.locator("#progress-text")).to_contain_text("Fold 3/3 · Epoch 1/1 · batch 13/13")
    panel = page.locator("#kfold-summary")
    expect(panel).to_be_visible()
    lines = panel.locator("ol li")
    expect(lines).to_have_count(3)
    done = page.evaluate(DONE_EVENT, page.evaluate("localStorage.getItem('neuronlab.train.job')"))
    folds = done["folds"]
    assert folds["n"] == 3 and folds["runs"] == [0, 1, 2], folds
    for i, (line, accuracy) in enumerate(zip(lines.all_text_contents(), folds["accuracies"])):
        assert line.split() == [">", f"{accuracy * 100:.3f}", "fold", str(i + 1)], line
    mean = panel.locator(".kfold-mean").text_content()
    assert mean == f"Accuracy: mean={folds['mean'] * 100:.3f} std={folds['std'] * 100:.3f}, n=3", mean
    shown = [float(x) for x in re.findall(r"[\d.]+", mean)[:2]]
    assert shown == pytest.approx([folds["mean"] * 100, folds["std"] * 100], abs=5e-4)
    labels = [line["label"] for line in chart(page, "loss-chart")["lines"] if line["label"]]
    for n in (1, 2, 3):  # each fold's curves, overlaid
        assert f"train (fold {n})" in labels and f"validation (fold {n})" in labels, labels
    page.screenshot(path=str(ARTIFACTS / "train-kfold-1280x800.png"), full_page=True)
    assert page.errors == []
    context.close()


def test_the_kfold_choice_and_summary_in_spanish(browser, server):
    context, page = open_train(browser, server, 390, 844, "?lang=es")
    box = page.locator("#kfold-setup")
    expect(box).to_contain_text("Validación cruzada (k pliegues)")
    page.check("[name=kfold]")
    expect(page.locator("#kfold-estimate")).to_contain_text(re.compile(r"Cada pliegue entrena con 1\.?600 imágenes y se prueba con 400"))
    expect(page.locator("#kfold-estimate")).to_contain_text("Estimación:")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    page.evaluate("""async () => {
        const { showFolds } = await import("/static/js/train-view.js");
        showFolds(document.getElementById("kfold-summary"),
                  { accuracies: [0.9845, 0.986, 0.9875], mean: 0.986, std: 0.0012247, n: 3, runs: [0, 1, 2], of: 5 });
    }""")
    panel = page.locator("#kfold-summary")
    expect(panel.locator(".kfold-mean")).to_have_text("Precisión: media=98.600 desv=0.122, n=3")
    expect(panel.locator("ol li").first).to_have_text(re.compile(r"^> 98\.450\s+pliegue 1$"))
    expect(panel.locator(".kfold-partial")).to_have_text("3 de los 5 pliegues entrenados hasta el final: el trabajo se detuvo.")
    assert page.errors == []
    context.close()
