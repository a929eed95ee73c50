"""/train tells the truth at the end of a run (issue 23): the test images are the saved model's
answers, the train curve has caught up, the test accuracy is on the first screen of a projector,
a laptop and a phone, nothing is left in English under ?lang=es, models are shown by name, a race
names each rate, and keys send only commands the job can take."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import OWNER, WAIT_MS
from tests.helpers import ARTIFACTS, focus_page, trained

pytestmark = pytest.mark.browser
AS_OWNER = {"X-Owner-Token": OWNER}
SHORT = "train_size=1000&val_size=1000&architecture=mlp_16&epochs=1&optimizer=sgd&learning_rate=0.1"


def fresh(page, server: str, query: str) -> None:
    """/train with no job remembered, the setup in the address."""
    page.goto(server + "/train")
    page.evaluate("localStorage.clear()")
    page.goto(server + "/train?" + query)
    page.wait_for_function("document.querySelectorAll('#layers tr').length >= 2")


def wait_done(page) -> None:
    page.wait_for_function("document.getElementById('job-status').dataset.status === 'done'")
    page.locator("#final-answer:not([hidden])").wait_for()


def chart(page, canvas: str) -> dict:
    """What a chart shows: its axis titles and each line's legend and last value."""
    return page.evaluate("""(id) => {
        const c = window.Chart.getChart(document.getElementById(id));
        return { x: c.options.scales.x.title.text, y: c.options.scales.y.title.text,
                 lines: c.data.datasets.map((d) => ({ label: d.label, last: d.data.length ? d.data.at(-1).y : null })) };
    }""", canvas)


def test_at_the_end_the_samples_are_the_saved_models_and_the_train_curve_has_caught_up(page, server):
    fresh(page, server, SHORT)
    page.click("#train")
    wait_done(page)
    job = page.evaluate("localStorage.getItem('neuronlab.train.job')")
    from tests.helpers import http_json
    state = http_json(f"{server}/api/train/{job}", headers=AS_OWNER)
    samples = page.locator("#samples")
    page.wait_for_function("document.getElementById('samples').dataset.final === 'true'")
    assert samples.get_attribute("data-step") == str(state["total_steps"])  # the saved model's answers
    figures = page.locator("#samples figure")
    expect(figures).to_have_count(8)
    acc = chart(page, "acc-chart")
    train, validation = acc["lines"]
    assert train["label"] == "train" and validation["label"] == "validation", acc  # no "older than" note
    assert abs(train["last"] - validation["last"]) < 0.2, acc  # smoothed over images, not messages
    assert page.errors == []


def _answer_on_first_screen(page) -> dict:
    return page.evaluate("""() => {
        const el = document.getElementById('final-answer'), r = el.getBoundingClientRect();
        const header = document.querySelector('header'), h = header ? header.getBoundingClientRect() : null;
        const sticky = header && /sticky|fixed/.test(getComputedStyle(header).position);
        const hit = document.elementFromPoint(r.left + Math.min(20, r.width / 2), r.top + r.height / 2);
        return { top: r.top, bottom: r.bottom, height: r.height, inner: innerHeight, text: el.textContent,
                 under: sticky ? h.bottom : 0, onTop: !!hit && el.contains(hit) };
    }""")


@pytest.fixture(scope="module")
def done_job(server):
    return trained(server, {"architecture": "mlp_16", "train_size": 640, "val_size": 500, "optimizer": "sgd",
                            "learning_rate": 0.1}, AS_OWNER, timeout=WAIT_MS / 1000)


@pytest.mark.parametrize("width, height, query", [(1280, 720, "?projector=1"), (1366, 768, ""), (390, 844, "")])
def test_the_test_accuracy_is_on_the_first_screen_when_a_run_ends(browser, server, done_job, width, height, query):
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    page = context.new_page()
    page.goto(server + "/")
    page.evaluate(f"localStorage.clear(); localStorage.setItem('neuronlab.owner', '{OWNER}');"
                  f"localStorage.setItem('neuronlab.train.job', '{done_job['id']}')")
    page.goto(server + "/train" + query)
    wait_done(page)
    page.wait_for_timeout(300)  # (the scroll to it is instant; this only lets the frame settle for the shot)
    box = _answer_on_first_screen(page)
    page.screenshot(path=str(ARTIFACTS / f"train-answer-{width}x{height}.png"))
    assert box["top"] >= box["under"] - 1 and box["bottom"] <= box["inner"] + 1 and box["height"] > 0, box
    assert box["onTop"], box
    pct = f"{done_job['test_accuracy'][0] * 100:.2f}%"
    assert pct in box["text"], (pct, box)
    context.close()


ENGLISH = re.compile(r"\b(train|validation|loss|accuracy|epoch|pause|resume|ready|is)\b|\(is ", re.I)


def test_train_in_spanish_on_a_phone_to_the_end_shows_no_english(browser, server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    fresh(page, server, SHORT + "&lang=es")
    assert page.locator("#job-status").inner_text() == "LISTO"  # the badge, as a phone shows it
    page.click("#train")
    wait_done(page)
    page.wait_for_function("document.getElementById('samples').dataset.final === 'true'")
    text = page.evaluate("document.body.innerText")
    # the saved model's name is data (its network's name), not the interface: left out of the check
    names = page.locator("#saved .model-name").all_text_contents()
    for name in names:
        text = text.replace(name, "")
    assert ENGLISH.findall(text) == [], [m for m in ENGLISH.finditer(text)][:5] and text
    for canvas in ("loss-chart", "acc-chart"):
        drawn = chart(page, canvas)
        words = [drawn["x"], drawn["y"], *(line["label"] for line in drawn["lines"])]
        assert not any(ENGLISH.search(w) for w in words), words
    assert page.locator("#pause").inner_text().startswith("‖ Pausa")
    page.screenshot(path=str(ARTIFACTS / "train-es-phone-done.png"), full_page=True)
    assert page.errors == []
    context.close()


def test_a_race_names_each_rate_models_are_shown_by_name_and_p_after_the_end_sends_nothing(page, server):
    fresh(page, server, SHORT.replace("learning_rate=0.1", "race=0.001,0.1"))
    page.click("#train")
    page.wait_for_function("(() => { const t = document.getElementById('progress-text').textContent;"
                           " return t.includes('0.001') && t.includes('0.1 ') || t.includes('/ 0.1'); })()")
    wait_done(page)
    progress = page.locator("#progress-text").text_content()
    assert "0.001" in progress and "0.1" in progress.replace("0.001", ""), progress
    names = page.locator("#saved .model-name").all_text_contents()
    assert len(names) == 2 and all(n.startswith("MLP 784-16-10 · MNIST · ") for n in names), names
    assert not re.search(r"[0-9a-f]{32}", page.locator("#saved").inner_text())  # no raw ids
    sent = []
    page.on("request", lambda r: r.method == "POST" and "/api/train/" in r.url and sent.append(r.url))
    focus_page(page)
    page.keyboard.press("p")
    page.keyboard.press("P")
    page.wait_for_timeout(500)  # nothing is expected to happen: a short look for a request that would be wrong
    assert sent == []
    expect(page.locator("#form-error")).to_have_text("")
    pause = page.locator("#pause")
    assert pause.is_disabled() and pause.inner_text().startswith("‖ Pause")
    assert page.errors == []
