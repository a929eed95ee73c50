"""Real browser tests of the slides' arithmetic on the pages: max pooling and a colour convolution
step by step and "Why CNNs, in numbers" on /filters; a drawing (/draw) and a photo (/classify)
shown as the 0-255 numbers the network read, checked against the server's own preprocessing."""
from __future__ import annotations

import json

import numpy as np
import pytest
from playwright.sync_api import expect

from tests.helpers import ARTIFACTS, ROOT, stroke

pytestmark = pytest.mark.browser
SIZES = [(390, 844), (1280, 720)]


def no_overflow(page):
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1")


def test_pooling_and_a_colour_convolution_step_by_step(page, server):
    page.goto(server + "/filters")
    expect(page.locator("#pool-input input")).to_have_count(16)
    expect(page.locator("#pool-output td")).to_have_count(4)
    for _ in range(4):
        page.click("#pool-step")
    expect(page.locator("#pool-output td.current")).to_have_count(1)
    assert page.locator("#pool-output td").all_text_contents() == ["0.3", "0.9", "0", "0.4"]  # the slide's answer
    expect(page.locator("#pool-arithmetic")).to_have_text("max(0.4, 0.4, 0, 0.1) = 0.4")
    page.click("#pool-reset")
    page.click("#pool-step")
    expect(page.locator("#pool-arithmetic")).to_have_text("max(0.1, 0.2, 0.1, 0.3) = 0.3")
    expect(page.locator("#pool-input td.window")).to_have_count(4)

    expect(page.locator("#colour-input-2 input")).to_have_count(25)
    page.click("#colour-step")
    lines = page.locator("#colour-arithmetic li")
    expect(lines).to_have_count(4)  # red, green, blue, then their sum with the bias
    expect(lines.nth(0)).to_contain_text("= -3")
    expect(lines.nth(1)).to_contain_text("= 2")
    expect(lines.nth(2)).to_contain_text("= 15")
    expect(lines.nth(3)).to_have_text("(-3) + 2 + 15 + 1 (bias) = 15")
    expect(page.locator("#colour-output td.current")).to_have_text("15")
    expect(page.locator("#colour-input-0 td.window")).to_have_count(9)
    page.fill("#colour-bias", "-2")
    page.press("#colour-bias", "Tab")  # leaving the box is its change
    expect(page.locator("#colour-output")).to_have_attribute("data-bias", "-2")
    page.click("#colour-step")
    expect(lines.nth(3)).to_have_text("(-3) + 2 + 15 + (-2) (bias) = 12")
    assert page.errors == []


def test_why_cnns_in_numbers(page, server):
    page.goto(server + "/filters?tab=why")
    rows = page.locator("#why-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator(".why-inputs")).to_have_text("196,608")
    expect(rows.nth(1).locator(".why-inputs")).to_have_text("12,288")
    expect(rows.nth(1).locator(".why-dense")).to_have_text("1,572,864 + 128 = 1,572,992")
    expect(rows.nth(1).locator(".why-slide")).to_contain_text("~1.5 M")
    expect(rows.nth(2).locator(".why-dense")).to_have_text("3,000,000,000 + 1,000 = 3,000,001,000")
    expect(rows.nth(2).locator(".why-conv")).to_have_text("864 + 32 = 896")
    expect(rows.nth(2).locator(".why-slide")).to_contain_text("leaves out the 1,000 biases")
    foot = page.locator("#why-network tfoot td")
    expect(foot.nth(3)).to_have_text("53")
    expect(foot.nth(4)).to_have_text("14")
    assert page.locator("#why-network tbody td").all_text_contents()[:5] == ["HL 1", "3", "4", "12", "4"]
    # edit a row: 28x28 grey into 100 units
    first = rows.nth(0).locator("input")
    for i, v in enumerate(["28", "28", "1", "100"]):
        first.nth(i).fill(v)
        first.nth(i).dispatch_event("change")
    expect(rows.nth(0).locator(".why-dense")).to_have_text("78,400 + 100 = 78,500")
    expect(rows.nth(0).locator(".why-slide")).to_have_text("—")
    page.fill("#why-sizes", "784-16-10")
    page.dispatch_event("#why-sizes", "change")
    expect(foot.nth(3)).to_have_text("12,704")
    page.fill("#why-sizes", "3-4.5-2")
    page.dispatch_event("#why-sizes", "change")
    expect(page.locator("#why-network-error")).to_contain_text("sizes")
    assert page.errors == [] or all("422" in e for e in page.errors)


@pytest.mark.parametrize("width, height", SIZES)
def test_the_new_panels_fit_the_screen(browser, server, width, height):
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    page = context.new_page()
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(server + "/filters?tab=why")
    expect(page.locator("#why-table tbody tr .why-dense").nth(2)).to_contain_text("3,000,001,000")
    assert no_overflow(page)
    page.screenshot(path=str(ARTIFACTS / f"why-cnns-{width}.png"), full_page=True)
    page.goto(server + "/filters")
    expect(page.locator("#colour-input-0 input")).to_have_count(25)
    page.click("#colour-step")
    page.click("#pool-step")
    assert no_overflow(page)
    page.locator(".inside-steps").screenshot(path=str(ARTIFACTS / f"pool-colour-{width}.png"))
    context.close()


def expected_numbers(frame: bytes, style: str) -> np.ndarray:
    """What the server's reader makes of a frame: the network's input times 255, as bytes."""
    from engine.imageio import decode, to_bytes
    from engine.preprocess import prepare
    return to_bytes(prepare(decode(frame, 10**7), style).input)


def grid_of(fold) -> tuple[np.ndarray, int, int]:
    table = fold.locator("table")
    cells = [int(v) for v in table.locator("td").all_text_contents()]
    rows = table.locator("tr").count()
    return np.array(cells).reshape(rows, -1), int(table.get_attribute("data-row")), int(table.get_attribute("data-col"))


def test_a_drawing_as_numbers(page, server):
    page.add_init_script("""(() => { const send = WebSocket.prototype.send; window.sentFrames = [];
      WebSocket.prototype.send = function (data) {
        if (data instanceof Blob) data.arrayBuffer().then((b) => window.sentFrames.push(Array.from(new Uint8Array(b))));
        return send.call(this, data); }; })()""")  # keeps each frame the page sends the server
    page.goto(server + "/draw")
    page.keyboard.press("c")
    stroke(page, [(0.5, 0.15), (0.52, 0.85)])
    expect(page.locator("#verdict-label")).to_have_text("1")
    fold = page.locator("#seen-numbers .as-numbers")
    fold.locator("summary").click()
    expect(fold.locator("td")).to_have_count(28 * 28)
    grid, top, left = grid_of(fold)
    style = json.loads((ROOT / "models" / "digits.json").read_text())["preprocess"]
    assert (top, left) == (0, 0) and grid.max() > 200 and grid.min() == 0
    frames = [bytes(f) for f in page.evaluate("window.sentFrames")]
    assert any(np.array_equal(grid, expected_numbers(f, style)) for f in frames), "the grid is not what the server read"
    fold.locator(".numbers-zoom select").select_option("7")
    expect(fold.locator("td")).to_have_count(49)
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(".sees-panel").screenshot(path=str(ARTIFACTS / "draw-numbers.png"))
    assert page.errors == []


def test_a_photo_as_numbers_per_channel(page, server, tmp_path):
    from PIL import Image
    y, x = np.mgrid[0:240, 0:320]
    pixels = np.stack([x * 255 // 319, y * 255 // 239, (x + y) % 256], -1).astype(np.uint8)
    photo = tmp_path / "gradient.png"
    Image.fromarray(pixels).save(photo)
    page.goto(server + "/classify?model=imagenet")
    page.set_input_files("#files", str(photo))
    fold = page.locator("#cards .as-numbers").first
    expect(fold).to_be_visible()
    fold.locator("summary").click()
    expect(fold.locator("td")).to_have_count(14 * 14)
    expected = expected_numbers(photo.read_bytes(), "imagenet")
    assert expected.shape == (3, 224, 224)
    for channel in (0, 1, 2):
        fold.locator(".numbers-channel select").select_option(str(channel))
        expect(fold.locator("table")).to_have_attribute("data-channel", str(channel))
        fold.locator("[data-move='1,0']").click()  # move the window right, then down
        fold.locator("[data-move='0,1']").click()
        grid, top, left = grid_of(fold)
        assert np.array_equal(grid, expected[channel, top:top + 14, left:left + 14]), channel
    box = fold.locator("canvas").bounding_box()  # click the small picture: the window goes there
    page.mouse.click(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.9)
    grid, top, left = grid_of(fold)
    assert top > 150 and left > 150 and np.array_equal(grid, expected[2, top:top + 14, left:left + 14])
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#cards .card").first.screenshot(path=str(ARTIFACTS / "classify-numbers.png"))
    assert page.errors == []
