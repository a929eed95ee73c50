"""The transfer-learning lesson in a real browser: the frozen and trained weights, a project's
learning curve both ways, and a photo read as CIFAR-10's classes; at a phone's, a laptop's and a
projector's size the answer is on the first screen."""
from __future__ import annotations

import json
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.helpers import ARTIFACTS, encode
from tests.photos import crops, photo

pytestmark = pytest.mark.browser
TOKEN = "abcdef0123456789abcdef0123456789"


def api(server, path, body=None, files=None, method="POST"):
    """A request as the browser's owner (its token is put in the page's localStorage)."""
    headers = {"X-Owner-Token": TOKEN}
    data = None
    if files is not None:
        boundary = "----neuronlab"
        parts = []
        for name, value in files:
            if isinstance(value, bytes):
                parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="p.png"\r\n'
                             "Content-Type: image/png\r\n\r\n".encode() + value + b"\r\n")
            else:
                parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        data = b"".join(parts) + f"--{boundary}--\r\n".encode()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    elif body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(server + path, data=data, method=method, headers={**headers, "Origin": server})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read() or b"{}")


def cat_or_coffee(page, server, per_class: int) -> dict:
    """A project of the browser's owner (its token put in the page's localStorage) with
    `per_class` views of the cat and of the espresso."""
    p = api(server, "/api/projects", {"name": "Cat or coffee?", "classes": ["cat", "coffee"]})
    for c, name in zip(p["classes"], ("chelsea.png", "coffee.png")):
        api(server, f"/api/projects/{p['id']}/samples",
            files=[("class_id", str(c["id"]))] + [("images", encode(img)) for img in crops(name, per_class, seed=len(name))])
    page.goto(server + "/")
    page.evaluate(f"localStorage.setItem('neuronlab.owner', '{TOKEN}')")
    return p


def test_the_transfer_lesson_shows_what_is_frozen_measures_a_curve_and_reads_cifar_10(page, server, tmp_path):
    cat_or_coffee(page, server, 8)
    page.goto(server + "/transfer?classes=2")
    page.wait_for_function("document.getElementById('frozen-total').textContent === '3,371,008'")
    expect(page.locator("#trained-total")).to_have_text("2,562")
    expect(page.locator("#stages tr.trained")).to_have_count(1)
    expect(page.locator("#stages tr.replaced")).to_have_count(1)
    page.locator("#classes").click()  # three classes: the new layer grows, the frozen part does not
    page.keyboard.press("ArrowUp")
    page.wait_for_function("document.getElementById('trained-total').textContent === '3,843'")
    assert "classes=3" in page.url
    expect(page.locator("#frozen-total")).to_have_text("3,371,008")

    page.wait_for_function("document.getElementById('curve-project').options.length === 1")
    page.click("#measure")
    page.wait_for_selector("#curve:not([hidden])")
    rows = page.locator("#curve-rows tr")
    expect(rows).to_have_count(4)
    assert rows.nth(0).locator("td").nth(1).text_content().endswith("%")  # 2 a class, by transfer
    assert rows.nth(3).locator("td").nth(1).text_content() == "too few photos"  # 20 a class: 8 photos only

    cat = tmp_path / "cat.jpg"
    photo("chelsea.png").save(cat, quality=90)
    page.set_input_files("#cifar-file", str(cat))
    page.wait_for_function("document.getElementById('cifar-verdict').textContent.startsWith('cat')")
    cat_bar = page.locator("#cifar-bars li").nth(3)  # airplane, automobile, bird, cat, ...
    assert cat_bar.locator(".name").text_content() == "cat" and int(cat_bar.locator(".pct").text_content().rstrip("%")) >= 50
    for width, height, projector in [(390, 844, False), (1366, 768, False), (1280, 720, True)]:
        page.set_viewport_size({"width": width, "height": height})
        if projector:
            page.keyboard.press("Shift+P")
            page.wait_for_function("document.documentElement.classList.contains('projector')")
        page.evaluate("window.scrollTo(0, 0)")
        box = page.locator("#frozen-total").bounding_box()
        assert box and box["y"] + box["height"] <= height, (width, box)
        page.screenshot(path=str(tmp_path / f"transfer-{width}.png"))
    assert page.errors == []


def test_inside_a_photo_network_on_the_filters_page(page, server, tmp_path):
    cat = tmp_path / "cat.jpg"
    photo("chelsea.png").save(cat, quality=90)
    page.goto(server + "/filters?tab=photo")
    page.wait_for_function("document.querySelector('#dw-a-out td')?.textContent === '-29'")  # 2 + 1 - 36 + 1 + 3
    assert "20,736" in page.locator("#dw-weights").text_content()  # 3 x 3 x 96 x 24
    page.set_input_files("#photo-upload", str(cat))
    page.wait_for_function("document.querySelectorAll('#photo-stages > li').length === 9")
    expect(page.locator("#stem-filters canvas")).to_have_count(32)
    assert "112×112×32" in page.locator("#photo-stages > li").first.text_content()
    page.select_option("#pick-part", "8")  # the head: any of its 1280 channels on request
    page.fill("#pick-channel", "1279")
    page.click("#pick-show")
    page.wait_for_function("!document.getElementById('picked').hidden && document.getElementById('picked').width === 7")
    page.fill("#pick-channel", "1280")
    page.click("#pick-show")
    page.wait_for_function("document.getElementById('photo-status').textContent.includes('1279')")  # the head still chosen
    assert page.locator("#pick-part").input_value() == "8"
    assert [e for e in page.errors if "422" not in e] == []  # the refused channel's answer, and nothing else


def test_classify_names_an_everyday_photo_and_says_when_it_is_not_sure(page, server, tmp_path):
    coffee, gravel = tmp_path / "coffee.jpg", tmp_path / "gravel.jpg"
    photo("coffee.png").save(coffee, quality=90)
    photo("gravel.png").save(gravel, quality=90)
    page.goto(server + "/classify")
    page.wait_for_function("document.getElementById('model').value === 'imagenet'")  # the photo network first
    page.set_input_files("#files", str(coffee))
    guess = page.locator("#cards .card .guess").first
    page.wait_for_function("document.querySelector('#cards .guess')?.textContent.startsWith('espresso')")
    card = page.locator("#cards .card").first
    assert "ImageNet" in card.locator(".read-by").text_content()
    expect(card.locator(".top3 li")).to_have_count(5)
    assert "Grad-CAM" in card.locator(".pipeline figcaption").last.text_content()
    page.locator("#sure").click()  # a person's way: click the slider, then keys
    for _ in range(19):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("document.getElementById('sure-value').textContent === '95%'")
    assert "sure=95" in page.url
    page.set_input_files("#files", str(gravel))
    page.wait_for_function("document.querySelectorAll('#cards .card').length === 2")
    page.wait_for_function("document.querySelector('#cards .card .guess').textContent.startsWith('Not sure')")
    assert "unsure" in page.locator("#cards .card").first.get_attribute("class")
    assert guess.is_visible()
    espresso = page.locator("#cards .card").nth(1)  # the same photo read again by another model
    espresso.locator(".read-with select").select_option("fashion")
    page.wait_for_function("document.querySelectorAll('#cards .card')[1].querySelector('.read-by')?.textContent.includes('Fashion')")
    expect(page.locator("#cards .card")).to_have_count(2)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "classify.png"))
    assert page.errors == []


SIZES = [(390, 844, False), (1366, 768, False), (1280, 720, True)]


def at_each_size(page, check) -> None:
    """`check()` at a phone's, a laptop's and a projector's size (projector mode), with nothing
    wider than the screen."""
    from tests.test_browser_layout import OVERFLOW
    for width, height, projector in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        on = page.evaluate("document.documentElement.classList.contains('projector')")
        if on != projector:
            page.keyboard.press("Shift+P")
            page.wait_for_function(f"document.documentElement.classList.contains('projector') === {str(projector).lower()}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width, width
        assert page.evaluate(OVERFLOW) == [], width
        check(width, height)


def test_a_photo_card_reads_at_every_size(page, server, tmp_path):
    shot = tmp_path / "coffee.jpg"
    photo("coffee.png").save(shot, quality=90)
    page.goto(server + "/classify")
    page.set_input_files("#files", str(shot))
    page.wait_for_function("document.querySelector('#cards .guess')?.textContent.startsWith('espresso')")

    def guess_readable(width, height):
        guess = page.locator("#cards .guess").first
        guess.scroll_into_view_if_needed()
        box = guess.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width and box["height"] >= 24, (width, box)
        page.screenshot(path=str(tmp_path / f"classify-{width}.png"))
    at_each_size(page, guess_readable)
    assert page.errors == []


def test_teaching_by_transfer_reads_at_every_size(page, server, tmp_path):
    p = cat_or_coffee(page, server, 6)
    page.goto(server + f"/teach?project={p['id']}")
    page.locator("#train").click()
    page.wait_for_function("document.getElementById('compare-transfer').textContent.endsWith('%')")

    def result_readable(width, height):
        for selector in ("#accuracy", "#compare-transfer"):
            element = page.locator(selector)
            element.scroll_into_view_if_needed()
            box = element.bounding_box()
            assert box and box["x"] + box["width"] <= width, (selector, width, box)
        page.screenshot(path=str(tmp_path / f"teach-{width}.png"))
    at_each_size(page, result_readable)
    assert page.errors == []
