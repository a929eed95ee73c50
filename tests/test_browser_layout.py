"""Every page on the devices a class really uses (issue 12): a phone (390x844), a laptop
(1366x768) and a projector (1280x720). No page scrolls sideways; the answer a page exists for is
on the first screen; students joining see no teacher menu. Screenshots go to docs/screenshots/."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.routers.pages import JOIN, PAGES
from app.settings import ROOT
from tests.helpers import focus_page, http_json, stroke, trained

pytestmark = pytest.mark.browser
SIZES = {"phone": (390, 844), "laptop": (1366, 768), "projector": (1280, 720)}
EVERY_PAGE = ["/", *(path for path, _ in PAGES), JOIN[0]]
SHOTS = ROOT / "docs" / "screenshots"

OVERFLOW = """() => [...document.querySelectorAll('body *')]
  .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.right > innerWidth + 1
                 && getComputedStyle(e).position !== 'fixed' && !e.closest('dialog:not([open])'); })
  .filter(e => ![...document.querySelectorAll('*')].some(a => a !== e && a.contains(e)
                 && getComputedStyle(a).overflowX !== 'visible' && a.getBoundingClientRect().right <= innerWidth + 1))
  .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className).slice(0, 6)"""


def in_view(page, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    size = page.viewport_size
    return bool(box) and box["y"] >= 0 and box["y"] + box["height"] <= size["height"] and box["x"] + box["width"] <= size["width"]


@pytest.fixture
def sized(browser):
    contexts = []

    def make(size: str, projector: bool = False):
        width, height = SIZES[size]
        context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True,
                                      has_touch=size == "phone", is_mobile=size == "phone")
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        if projector:
            page.add_init_script("localStorage.setItem('neuronlab.projector', '1')")
        return page
    yield make
    for c in contexts:
        c.close()


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("path", EVERY_PAGE)
def test_no_page_scrolls_sideways(sized, server, path, size):
    page = sized(size, projector=size == "projector")
    page.goto(server + path)
    page.wait_for_load_state("networkidle")
    wide = page.evaluate(OVERFLOW)
    scroll = page.evaluate("document.documentElement.scrollWidth")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{(path.strip('/') or 'home')}-{size}.png"))
    assert scroll <= SIZES[size][0] and not wide, (scroll, wide)
    assert page.errors == []


@pytest.mark.parametrize("size", list(SIZES))
def test_draw_shows_the_canvas_and_the_answer_on_one_screen(sized, server, size):
    page = sized(size, projector=size == "projector")
    page.goto(server + "/draw")
    page.wait_for_function("document.querySelectorAll('#bars li').length === 10")
    stroke(page, [(0.25, 0.15), (0.75, 0.15), (0.45, 0.9)])  # a 7
    page.wait_for_function("document.getElementById('verdict').dataset.state === 'prediction'")
    assert in_view(page, "#pad") and in_view(page, "#verdict-label"), size
    assert page.evaluate("window.scrollY") == 0  # drawing never scrolled the page
    if size != "phone":  # the model row is not cut off, and on a projector what the network sees stays
        assert in_view(page, "#model") and in_view(page, "#seen"), size


@pytest.mark.parametrize("size", ["laptop", "projector"])
def test_the_convolution_and_its_arithmetic_are_on_the_first_screen(sized, server, size):
    page = sized(size, projector=size == "projector")
    page.goto(server + "/filters?tab=conv")
    page.wait_for_function("document.querySelectorAll('#input-grid td').length > 0")
    focus_page(page)
    for _ in range(2):
        page.keyboard.press(" ")
    page.wait_for_function("document.getElementById('arithmetic').textContent.length > 0")
    assert in_view(page, "#output-grid") and in_view(page, "#arithmetic") and in_view(page, "#pool-grid"), size


def test_a_student_on_a_phone_sees_the_pad_the_guess_and_the_question_and_no_teacher_menu(sized, server):
    code = http_json(server + "/api/sessions", "POST", {})["code"]
    page = sized("phone")
    page.goto(server + f"/join?code={code}")
    assert not page.locator(".topbar nav").is_visible() and not page.locator("#lesson-toggle").is_visible()
    page.fill("#join-name", "Ada")
    page.click("#join-form button[type=submit]")
    page.wait_for_selector("#student-panel:not([hidden])")
    stroke(page, [(0.5, 0.1), (0.5, 0.9)])  # a 1
    page.wait_for_selector("#label-box:not([hidden])")
    assert in_view(page, "#pad") and in_view(page, "#guess") and in_view(page, "#label-box"), "below the fold"
    assert page.evaluate("window.scrollY") == 0
    page.screenshot(path=str(SHOTS / "join-drawing-phone.png"))


LONG_NAME = "Our very best digit network from Tuesday's lesson, version 12"[:60]


@pytest.fixture(scope="module")
def long_named_model(server):
    from tests.conftest import OWNER
    spec = {"architecture": "mlp_16", "train_size": 640, "val_size": 500, "name": LONG_NAME}
    return trained(server, spec, {"X-Owner-Token": OWNER})["model_ids"][0]


@pytest.mark.parametrize("size", list(SIZES))
def test_a_long_model_name_never_widens_the_page(sized, server, long_named_model, size):
    from tests.conftest import OWNER
    page = sized(size, projector=size == "projector")
    page.add_init_script(f"localStorage.setItem('neuronlab.owner', '{OWNER}')")
    page.goto(server + f"/draw?model={long_named_model}")
    page.wait_for_function("document.querySelectorAll('#model option').length > 3")
    option = page.locator(f"#model option[value='{long_named_model}']")
    assert option.get_attribute("title") == LONG_NAME and option.text_content().startswith(LONG_NAME[:40])
    assert len(option.text_content()) < len(LONG_NAME) + 8
    assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[size][0]


def test_teach_on_a_projector_is_never_blank(sized, server):
    page = sized("projector", projector=True)
    page.goto(server + "/teach")
    expect(page.locator("#new-name")).to_be_visible()  # no project open: the list and "new project" show


ONE_LINE = """() => { const bar = document.querySelector('.topbar'), nav = bar.querySelector('nav');
  const tops = [...bar.querySelectorAll('.brand, .tools > *:not([hidden])')]
    .filter(e => e.getBoundingClientRect().width > 0).map(e => Math.round(e.getBoundingClientRect().top));
  const links = [...nav.querySelectorAll('a')].filter(a => a.getBoundingClientRect().width > 0)
    .map(a => Math.round(a.getBoundingClientRect().top));
  return {height: bar.getBoundingClientRect().height, rows: new Set(links).size,
          spread: Math.max(...tops, ...links) - Math.min(...tops, ...links)}; }"""


CURRENT_SHOWN = """() => { const nav = document.querySelector('.topbar nav'), a = nav.querySelector('[aria-current=page]');
  if (!a) return true;
  const n = nav.getBoundingClientRect(), r = a.getBoundingClientRect();
  return r.left >= n.left - 1 && r.right <= n.right + 1; }"""


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("size", ["laptop", "projector", "plain 1280x720"])
def test_the_top_bar_is_one_line_on_every_page(sized, server, size, lang):
    """A two-line menu pushes every page's answer down by 45 px (Spanish wrapped at 1366 px)."""
    page = sized("projector" if size.startswith("plain") else size, projector=size == "projector")
    for path in EVERY_PAGE[:-1]:  # /join has no menu
        page.goto(server + f"{path}?lang={lang}")
        page.wait_for_load_state("domcontentloaded")
        bar = page.evaluate(ONE_LINE)
        assert bar["rows"] == 1 and bar["spread"] < 30 and bar["height"] < 60, (path, bar)
        assert page.evaluate(CURRENT_SHOWN), path  # the current page's entry is never scrolled out of sight


RECORD_CANVAS_FONTS = """window.__fonts = [];
  const fill = CanvasRenderingContext2D.prototype.fillText;
  CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
    if (this.canvas.isConnected && this.canvas.getBoundingClientRect().width > 0)
      window.__fonts.push([String(text), this.font, this.fillStyle]);
    return fill.call(this, text, ...rest); };"""


@pytest.mark.parametrize("path", ["/descent?tab=parabola", "/descent?tab=surface", "/neuron?tab=step", "/train"])
def test_chart_text_reads_from_the_back_of_the_room_on_a_projector(sized, server, path):
    """Axes, ticks and legends drawn on canvases: at least 20 px and dark in projector mode (they
    were 12-14 px grey)."""
    page = sized("projector", projector=True)
    page.add_init_script(RECORD_CANVAS_FONTS)
    page.goto(server + path)
    page.wait_for_function("window.__fonts.length > 5")
    drawn = page.evaluate("window.__fonts")
    small = [(text, font) for text, font, _ in drawn if int(font.split("px")[0].split()[-1]) < 20]
    pale = [(text, colour) for text, _, colour in drawn if colour.startswith("#") and contrast(colour) < 7]
    assert not small and not pale, (small[:5], pale[:5])


def contrast(colour: str) -> float:
    """WCAG contrast of a #rrggbb colour against white (7 = AAA for text)."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(int(colour[i:i + 2], 16) / 255) for i in (1, 3, 5))
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


CUT_SELECTS = """() => [...document.querySelectorAll('select')].filter(s => s.getClientRects().length && s.offsetWidth > 0)
  .map(s => { const st = getComputedStyle(s), ctx = document.createElement('canvas').getContext('2d');
    ctx.font = `${st.fontWeight} ${st.fontSize} ${st.fontFamily}`;
    const text = s.options[s.selectedIndex]?.text || '';
    const room = s.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight) - 18;  // the arrow
    return [s.name || s.id, text, Math.round(ctx.measureText(text).width), Math.round(room)]; })
  .filter(([, , need, room]) => need > room)"""


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("size", list(SIZES))
def test_no_list_cuts_its_choice(sized, server, size, lang):
    """A list's chosen entry is read whole ("1.000 (segu..." and "valid (r" were cut)."""
    page = sized(size, projector=size == "projector")
    for path in EVERY_PAGE:
        page.goto(server + f"{path}?lang={lang}")
        page.wait_for_load_state("networkidle")
        for option in page.evaluate("[...document.querySelectorAll('select[name=train_size] option')].map(o => o.value)"):
            if page.locator("select[name=train_size]").is_visible():  # the longest entry, chosen
                page.select_option("select[name=train_size]", option)
                assert page.evaluate(CUT_SELECTS) == [], (path, option)
        assert page.evaluate(CUT_SELECTS) == [], path
