"""Every page in Spanish, as a class in Spain or Latin America would use it (issue 12): walked
with the mouse and keys, nothing on screen may be left in English (a list made from the English
texts of the interface), and plurals are right."""
from __future__ import annotations

import re

import pytest

from app.i18n import table
from app.routers.pages import JOIN, PAGES
from tests.helpers import focus_page, stroke

pytestmark = pytest.mark.browser
ENGLISH = table("en")
SPANISH = table("es")


def english_phrases() -> list[str]:
    """English interface texts of three words or more that Spanish says differently (placeholders
    cut out: the parts around them are phrases of their own)."""
    texts = set(ENGLISH.values()) | {k for k in SPANISH if " " in k and not k.startswith(("page.", "control."))}
    found = set()
    for text in texts:
        if SPANISH.get(text, "") == text:
            continue
        for part in re.split(r"\{\w+\}|[·:;()\n]", text):
            part = part.strip(" .,…✓✗↔↘—-")
            if len(part.split()) >= 3 and part not in SPANISH.values():
                found.add(part)
    return sorted(found)


PHRASES = english_phrases()


# Single English words of the interface that Spanish says otherwise, found as whole words; and the
# shapes of texts built while running (a sample's caption, a layer's, a kernel's name).
WORDS = re.compile(r"\b(loss|gradient|accuracy|validation|train|epoch|step|Pause|READY|Input|filters|"
                   r"identity|sharpen|blur)\b|\(is \d\)")

# What canvases draw (plots, charts' axes and legends) is on screen too: every fillText is recorded.
RECORD_CANVAS_TEXT = """window.__drawn = new Set();
  const fill = CanvasRenderingContext2D.prototype.fillText;
  CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
    window.__drawn.add(String(text)); return fill.call(this, text, ...rest); };"""


def english_on_screen(page) -> list[str]:
    text = page.evaluate("document.body.innerText + '\\n' + [...(window.__drawn || [])].join('\\n')")
    return [p for p in PHRASES if p in text] + sorted({m.group(0) for m in WORDS.finditer(text)})


def walk(page, server, path) -> list[str]:
    """Walk a page in Spanish as a class would; the English seen on the way (every state looked at)."""
    page.add_init_script(RECORD_CANVAS_TEXT)
    page.goto(server + path + "?lang=es")
    page.wait_for_load_state("networkidle")
    seen = set(english_on_screen(page))
    if path == "/descent":  # every exercise, a few steps each
        for tab in ["parabola", "line_fit", "surface", "split"]:
            page.click(f"[data-tab={tab}]")
            focus_page(page)
            for _ in range(4):
                page.keyboard.press(" ")
            page.wait_for_function("document.getElementById('counter').textContent === '4'")
            seen |= set(english_on_screen(page))
    if path == "/train":  # a short run to its end: curves, samples, results, the saved model
        page.select_option("select[name=train_size]", "1000")
        page.fill("input[name=epochs]", "1")
        page.click("#train")
        page.wait_for_selector("#results:not([hidden])")
    if path == "/draw":
        page.wait_for_function("document.querySelectorAll('#bars li').length === 10")
        stroke(page, [(0.25, 0.15), (0.75, 0.15), (0.45, 0.9)])
        page.wait_for_function("document.getElementById('verdict').dataset.state === 'prediction'")
    if path == "/filters":  # the network tab too, where the texts are built while running
        page.click("[data-tab=network]")
        page.wait_for_function("document.getElementById('net-prediction').textContent.length > 0")
    if path == "/classify":  # a photo's card, built while running, in Spanish too
        from tests.photos import photo
        shot = f"/tmp/neuronlab-es-{id(page)}.png"
        photo("coffee.png").save(shot)
        page.set_input_files("#files", shot)
        page.wait_for_function("document.querySelector('#cards .read-by')?.textContent.length > 0")
    if path == "/transfer":
        page.wait_for_function("document.querySelectorAll('#stages tr').length === 13")
    if path == "/session":
        page.click("#start")
        page.wait_for_function("document.getElementById('code').textContent.length === 5")
    return sorted(seen | set(english_on_screen(page)))


def test_the_english_phrases_catch_english_on_screen(page, server):
    assert len(PHRASES) > 150
    walk(page, server, "/draw")  # the same walk in English finds plenty
    page.goto(server + "/draw?lang=en")
    page.wait_for_function("document.querySelectorAll('#bars li').length === 10")
    assert len(english_on_screen(page)) >= 3
    page.goto(server + "/descent?lang=en&tab=parabola")  # and the words, on the plot's canvas too
    focus_page(page)
    for _ in range(4):
        page.keyboard.press(" ")
    page.wait_for_function("document.getElementById('counter').textContent === '4'")
    assert {"loss", "step"} <= set(english_on_screen(page))


@pytest.mark.parametrize("path", ["/", *(p for p, _ in PAGES), JOIN[0]])
def test_every_page_walked_in_spanish_shows_no_english(page, server, path):
    assert walk(page, server, path) == []
    page.goto(server + "/")  # the language stays for the next page, reached by the menu
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.errors == []


def test_spanish_plurals_and_the_descent_slider(page, server):
    page.goto(server + "/descent?lang=es&tab=parabola&lr=0.5")
    page.wait_for_function("document.querySelectorAll('#numbers dd').length > 0")
    focus_page(page)
    page.keyboard.press(" ")
    page.wait_for_function("document.getElementById('verdict').textContent.includes('1 paso ✓')")
    slider = page.locator("#lr-slider").bounding_box()
    assert slider["width"] > 60, slider  # not shrunk to a dot by longer Spanish labels
    page.goto(server + "/train?lang=es")
    slider = page.locator(".setup-panel .lr input[type=range]").bounding_box()
    assert slider["width"] > 60, slider
