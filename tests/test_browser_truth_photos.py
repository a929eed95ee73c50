"""What the photo pages say about a photo is true and can be seen (issue 23, item 10): /teach's
"Try it" shows the photo it read beside its answer, and /classify's "Read by" names the model
that read the photo (never its raw id), even one this browser's list does not hold, without the
name widening the card at a phone's or a projector's size."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.helpers import ARTIFACTS, draw_digit
from tests.photos import photo
from tests.test_browser_photos import api, cat_or_coffee

pytestmark = pytest.mark.browser
LONG_NAME = "Cat-or-coffee-reader-trained-on-photos-of-the-kitchen-table"  # 59 characters, no space to wrap at


def new_page(browser, width, height):
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    return page


def trained_project(page, server) -> dict:
    """The cat-or-coffee project of TOKEN's browser, trained by transfer learning."""
    project = cat_or_coffee(page, server, 6)
    answer = api(server, f"/api/projects/{project['id']}/train", {})
    return answer["project"]


def fits(page, what):
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, (what, "page wider than the screen by", overflow)


@pytest.mark.parametrize("size", [(390, 844, ""), (1280, 720, "&projector=1")], ids=["phone", "projector"])
def test_teach_try_it_shows_the_photo_it_read_beside_the_answer(browser, server, tmp_path, size):
    width, height, query = size
    page = new_page(browser, width, height)
    project = trained_project(page, server)
    page.goto(server + f"/teach?project={project['id']}{query}")
    expect(page.locator("#live-box")).to_be_visible()
    cat = tmp_path / "my-cat.jpg"
    photo("chelsea.png").save(cat, quality=90)
    page.set_input_files("#try-file", str(cat))
    expect(page.locator("#live-verdict")).to_contain_text("cat")
    thumb = page.locator("#try-photo")
    expect(thumb).to_be_visible()
    page.wait_for_function("(() => { const i = document.getElementById('try-photo');"
                           " return i.complete && i.naturalWidth > 0; })()")
    expect(thumb).to_have_attribute("alt", "my-cat.jpg")  # which photo: its name
    expect(page.locator("#try-photo-name")).to_have_text("my-cat.jpg")
    # beside the answer: on the same row, not below it
    seen, verdict = thumb.bounding_box(), page.locator("#live-verdict").bounding_box()
    assert seen["width"] >= 48 and seen["height"] >= 48, seen
    assert seen["y"] < verdict["y"] + verdict["height"] and verdict["y"] < seen["y"] + seen["height"], (seen, verdict)
    assert seen["x"] + seen["width"] <= verdict["x"] + 1, (seen, verdict)
    # another photo: the thumbnail and its name follow it
    coffee = tmp_path / "espresso.png"
    photo("coffee.png").save(coffee)
    page.set_input_files("#try-file", str(coffee))
    expect(page.locator("#live-verdict")).to_contain_text("coffee")
    expect(thumb).to_have_attribute("alt", "espresso.png")
    fits(page, size)
    page.screenshot(path=str(ARTIFACTS / f"teach-try-{width}.png"))
    assert page.errors == [], page.errors
    page.context.close()


@pytest.mark.parametrize("size", [(390, 844, ""), (1280, 720, "&projector=1")], ids=["phone", "projector"])
def test_classify_names_the_model_that_read_the_photo_even_one_not_in_its_list(browser, server, tmp_path, size):
    width, height, query = size
    owner = new_page(browser, width, height)  # the browser whose project made the model
    project = trained_project(owner, server)
    model_id = project["model_id"]
    api(server, f"/api/models/{model_id}", {"name": LONG_NAME}, method="PATCH")
    owner.context.close()
    page = new_page(browser, width, height)  # another browser (another owner token): its list lacks the model
    page.goto(server + f"/classify?model={model_id}{query}")
    expect(page.locator("#model")).to_have_value(model_id)  # the model in the address is kept
    cat = tmp_path / "cat.jpg"
    photo("chelsea.png").save(cat, quality=90)
    page.set_input_files("#files", str(cat))
    card = page.locator("#cards .card").first
    expect(card.locator(".top3 li").first).to_be_visible()
    by = card.locator(".read-by")
    expect(by).to_contain_text(LONG_NAME[:20])
    assert model_id not in by.inner_text(), by.inner_text()
    expect(by.locator(".model-name")).to_have_attribute("title", LONG_NAME)
    cut = card.evaluate("c => c.scrollWidth - c.clientWidth")
    assert cut <= 0, ("card wider than its box by", cut)
    box, shown = card.bounding_box(), by.locator(".model-name").bounding_box()
    assert shown["x"] + shown["width"] <= box["x"] + box["width"] + 1, (shown, box)
    fits(page, size)
    page.screenshot(path=str(ARTIFACTS / f"classify-read-by-{width}.png"))
    assert page.errors == [], page.errors
    page.context.close()


def test_classify_asks_for_the_name_of_a_model_it_has_not_listed_yet(browser, server, tmp_path):
    """A photo read before the list of models has arrived still names its model."""
    page = new_page(browser, 390, 844)
    held = []
    page.route("**/api/models", lambda route: held.append(route))  # the list never arrives in time
    page.goto(server + "/classify?model=digits")
    seven = tmp_path / "seven.png"
    draw_digit("7").save(seven)
    page.set_input_files("#files", str(seven))
    by = page.locator("#cards .card .read-by").first
    expect(by).to_contain_text("Digits (digit CNN)")
    for route in held:
        route.continue_()
    page.context.close()


def test_training_waits_for_the_photos_still_being_saved(browser, server, tmp_path):
    """A photo still on its way to the server (a file upload, a recording's last frames) is not in
    the project yet: Train waits for it, so a run, and both runs of a comparison, learn from the
    photos on screen (on a busy machine a click right after a recording trained on fewer, and the
    comparison then said its held-out photos differed)."""
    page = new_page(browser, 1280, 720)
    project = cat_or_coffee(page, server, 6)
    held = []
    page.route("**/samples", lambda route: held.append(route) if route.request.method == "POST" else route.continue_())
    page.goto(server + f"/teach?project={project['id']}")
    expect(page.locator("#train")).to_be_enabled()
    extra = tmp_path / "one-more-cat.jpg"
    photo("chelsea.png").save(extra, quality=90)
    page.locator("#classes .class-row").first.locator("input[type=file]").set_input_files(str(extra))
    expect(page.locator("#train")).to_be_disabled()  # the photo is being saved
    expect(page.locator("#train")).to_have_attribute("title", "Saving photos…")
    page.wait_for_function("1")  # let the route's handler run
    assert len(held) == 1
    held[0].continue_()
    expect(page.locator("#train")).to_be_enabled()
    expect(page.locator("#classes .count").first).to_have_text("7 photos")
    assert page.errors == []
