"""What the classroom pages say is true, and their answer can be seen: the address students are
given (lesson links, the lab report's QR code, the join address) is one they can reach; an ended
session says so on the teacher's screen and every student's at once; /draw while breaking and
/filters fit a phone, a laptop and a projector; the Spanish pages leave no English behind."""
from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from playwright.sync_api import expect

from tests.conftest import launch, stop
from tests.helpers import ARTIFACTS, stroke

pytestmark = pytest.mark.browser
PUBLIC = "http://neuronlab.school.example:8000"
SIZES = {"phone": (390, 844, ""), "laptop": (1366, 768, ""), "projector": (1280, 720, "projector=1")}


def with_query(path: str, query: str) -> str:
    return path if not query else path + ("&" if "?" in path else "?") + query


def new_page(browser, width=1280, height=720):
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: m.type in ("error", "warning") and page.errors.append(m.text))
    return page


@pytest.fixture(scope="module")
def public_server(tmp_path_factory):
    """A server told the address students use (NEURONLAB_PUBLIC_URL), opened here on 127.0.0.1."""
    proc, url = launch(tmp_path_factory.mktemp("public"), {"NEURONLAB_PUBLIC_URL": PUBLIC})
    yield url
    stop(proc)


# --- item 5: the address students are given ----------------------------------------------------

def test_lesson_links_and_the_report_give_the_students_address(browser, public_server):
    page = new_page(browser)
    page.goto(public_server + "/descent?tab=parabola&optimizer=sgd&lr=0.5")
    page.wait_for_function("document.querySelectorAll('#numbers dd').length > 0")
    # the lab report's QR code holds the address students can open
    with page.expect_request(lambda r: "/api/qr.svg" in r.url) as asked, page.expect_download():
        page.click("#report")
    text = unquote(asked.value.url.split("text=", 1)[1])
    assert text.startswith(PUBLIC + "/descent?") and "127.0.0.1" not in text
    page.click("#lesson-toggle")
    link = page.locator("#lesson-link")
    expect(link).to_have_value(re.compile("^" + re.escape(PUBLIC) + "/descent\\?"))
    value = link.input_value()
    assert "127.0.0.1" not in value and "localhost" not in value and "lr=0.5" in value
    qr = unquote(page.locator("#lesson-qr").get_attribute("src"))
    assert PUBLIC + "/descent?" in qr and "127.0.0.1" not in qr
    expect(page.locator("#lesson-open")).to_have_attribute("href", value)
    # the session page's join address is the same one
    page.goto(public_server + "/session")
    page.click("#start")
    expect(page.locator("#join-url")).to_have_text(PUBLIC.removeprefix("http://") + "/join")
    assert page.errors == []
    page.context.close()


def test_a_lesson_link_warns_when_no_address_students_can_reach_is_known(browser, server):
    page = new_page(browser)
    # a machine with no network address found and no NEURONLAB_PUBLIC_URL: only localhost is known
    page.route("**/api/server/addresses", lambda route: route.fulfill(
        json={"urls": [], "local": True, "public_url": None}))
    page.goto(server + "/draw")
    page.click("#lesson-toggle")
    warning = page.locator("#lesson-dialog-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("NEURONLAB_PUBLIC_URL")
    page.keyboard.press("Escape")
    page.goto(server + "/session")
    page.click("#start")
    expect(page.locator("#join-warning")).to_be_visible()
    page.context.close()


# --- item 7: an ended session says so everywhere at once --------------------------------------

def start_session(browser, server):
    """A teacher's page with a session started: (the page, the code)."""
    teacher = new_page(browser)
    teacher.goto(server + "/session")
    teacher.click("#start")
    expect(teacher.locator("#code")).to_have_text(re.compile(r"^[A-Z0-9]{5}$"))
    return teacher, teacher.locator("#code").text_content()


def join(browser, server, code, name):
    """A student's phone joined to the session, its pad shown."""
    student = new_page(browser, 390, 844)
    student.goto(server + f"/join?code={code}")
    student.fill("#join-name", name)
    student.click("#join-form button[type=submit]")
    expect(student.locator("#student-panel")).to_be_visible()
    return student


def test_ending_a_session_tells_the_teacher_and_every_student_at_once(browser, server):
    teacher, code = start_session(browser, server)
    expect(teacher.locator("#model-name")).to_contain_text("Digits (digit CNN)")  # its name, not its id
    students = [join(browser, server, code, name) for name in ("Ada", "Bo")]
    stroke(students[0], [(0.25, 0.15), (0.75, 0.15), (0.45, 0.9)])
    expect(teacher.locator("#gallery .tile")).to_have_count(1)
    expect(teacher.locator("#students")).to_have_text("2 students joined")

    teacher.click("#end")
    teacher.get_by_role("button", name="End and keep the drawings").click()
    status = teacher.locator("#session-status")
    expect(status).to_contain_text("The session has ended")
    expect(status).to_contain_text("kept")
    for gone in ("#code", "#qr", "#students", "#join-url", "#gallery-empty", "#join-size"):
        expect(teacher.locator(gone)).to_be_hidden()
    expect(teacher.locator("#gallery .tile")).to_have_count(1)  # kept, and still shown
    for s in students:  # at once: nobody drew again
        ended = s.locator("#ended-box")
        expect(ended).to_be_visible()
        expect(ended).to_contain_text("The session has ended")
        expect(s.locator("#pad")).to_be_hidden()
    students[0].screenshot(path=str(ARTIFACTS / "join-ended.png"))
    teacher.screenshot(path=str(ARTIFACTS / "session-ended.png"))
    # a reload still says so, with what became of the drawings
    teacher.reload()  # the ended session's code in the address: it says it ended, and offers a new one
    expect(teacher.locator("#start-error")).to_contain_text(f"Session {code} has ended")
    expect(teacher.locator("#start")).to_be_visible()
    students[1].reload()
    expect(students[1].locator("#ended-box")).to_be_visible()
    for p in (teacher, *students):
        assert p.errors == [], p.errors
        p.context.close()


def test_a_session_ended_with_its_drawings_deleted_says_so(browser, server):
    teacher, code = start_session(browser, server)
    student = join(browser, server, code, "Cy")
    stroke(student, [(0.5, 0.1), (0.5, 0.9)])
    expect(teacher.locator("#gallery .tile")).to_have_count(1)
    teacher.click("#end")
    teacher.get_by_role("button", name="End and delete the drawings").click()
    expect(teacher.locator("#session-status")).to_contain_text("deleted")
    expect(teacher.locator("#gallery .tile")).to_have_count(0)
    expect(student.locator("#ended-box")).to_contain_text("deleted")
    for p in (teacher, student):
        assert p.errors == [], p.errors
        p.context.close()


# --- item 6: the answer on the first screen ---------------------------------------------------

def fits(page, name):
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, (name, "page wider than the screen by", overflow)


def on_first_screen(page, selector, name):
    page.evaluate("window.scrollTo(0, 0)")
    box = page.evaluate(f"(() => {{ const r = document.querySelector('{selector}').getBoundingClientRect();"
                        " return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width}; })()")
    height, width = page.viewport_size["height"], page.viewport_size["width"]
    assert box["width"] > 0 and box["bottom"] <= height and box["right"] <= width and box["left"] >= 0, (name, selector, box)
    return box


@pytest.mark.parametrize("size", SIZES)
def test_draw_while_breaking_shows_the_answer_on_the_first_screen(browser, server, size):
    width, height, query = SIZES[size]
    page = new_page(browser, width, height)
    page.goto(server + with_query("/draw", query))
    stroke(page, [(0.5, 0.1), (0.5, 0.9)])  # draw, then try to break it
    expect(page.locator("#verdict")).not_to_have_attribute("data-state", "empty")
    page.locator("#robust summary").click()
    page.locator("#r-rotate").fill("45")
    expect(page.locator("#r-answer")).not_to_have_text("…")
    fits(page, size)
    panel = page.evaluate("document.querySelector('.result-panel').getBoundingClientRect().width")
    assert panel >= min(240, width - 40), (size, "result panel", panel)
    on_first_screen(page, "#verdict-label", size)
    # the sliders and the answer they change are seen together
    page.locator("#r-blur").scroll_into_view_if_needed()
    label = page.locator("#r-answer") if size == "phone" else page.locator("#verdict-label")
    expect(label).to_be_in_viewport()
    page.screenshot(path=str(ARTIFACTS / f"draw-breaking-{size}.png"))
    assert page.errors == [], page.errors
    page.context.close()


@pytest.mark.parametrize("size", SIZES)
def test_filters_controls_are_not_cut(browser, server, size):
    width, height, query = SIZES[size]
    page = new_page(browser, width, height)
    page.goto(server + with_query("/filters?tab=conv", query))
    expect(page.locator("#input-grid td").first).to_be_visible()
    fits(page, size)
    for select in ("#padding", "#stride", "#pool-size", "#pool-stride"):
        cut = page.evaluate(f"""(() => {{ const s = document.querySelector('{select}');
            const c = document.createElement('canvas').getContext('2d'); c.font = getComputedStyle(s).font;
            const text = Math.max(...[...s.options].map(o => c.measureText(o.text).width));
            return text - (s.clientWidth - 28); }})()""")
        assert cut <= 0, (size, select, "option text cut by", cut)
    on_first_screen(page, "#output-grid", size)
    page.screenshot(path=str(ARTIFACTS / f"filters-{size}.png"))
    assert page.errors == [], page.errors
    page.context.close()


# --- item 9: Spanish --------------------------------------------------------------------------

ENGLISH_ON_FILTERS = ["filters of", "click one", "one row per filter", "Input 28", "identity", "vertical edge",
                      "edge diagonal", "sharpen", "box blur", "gaussian blur", "custom", "scale ±", "Dense", "Max pool"]


def test_filters_in_spanish_has_no_english_captions_or_kernel_names(browser, server):
    page = new_page(browser, 1366, 768)
    page.goto(server + "/filters?tab=network&lang=es")
    page.locator("#samples button, #samples canvas, #samples img").first.click()
    expect(page.locator("#layer-list li").nth(2)).to_be_visible()
    page.locator("[data-tab=filters]").click()
    expect(page.locator("#filter-layers h3").first).to_be_visible()
    page.locator("[data-tab=kernels]").click()
    expect(page.locator("#kernel-table .kernel-card").nth(3)).to_be_visible()
    text = " ".join(page.locator(s).inner_text() for s in ("#layer-list", "#tab-filters", "#kernel-table"))
    found = [w for w in ENGLISH_ON_FILTERS if w.lower() in text.lower()]
    assert found == [], found
    assert "Entrada" in text and "filtros de" in text and "identidad" in text.lower()
    assert page.errors == [], page.errors
    page.context.close()


def test_classify_in_spanish_says_the_servers_errors_in_spanish(browser, server, tmp_path):
    page = new_page(browser, 1366, 768)
    page.goto(server + "/classify?lang=es")
    expect(page.locator("#model option").first).to_be_attached()
    names = page.locator("#model").inner_text()
    assert "photo network" not in names.lower() and "digit CNN" not in names, names
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image at all")
    page.locator("input[type=file]").first.set_input_files(str(bad))
    card = page.locator("#cards .card.failed")
    expect(card).to_be_visible()
    message = card.locator(".status").inner_text()
    assert "Send a PNG" not in message and "image" not in message.split(), message
    assert "PNG" in message  # the formats it takes, in Spanish
    page.context.close()


# --- item 10: names, not ids; the photo read; no canvas warnings -------------------------------

def test_draw_reads_its_canvas_without_warnings(browser, server):
    page = new_page(browser)
    page.goto(server + "/draw")
    stroke(page, [(0.5, 0.1), (0.5, 0.9)])
    expect(page.locator("#verdict")).not_to_have_attribute("data-state", "empty")
    page.locator("#robust summary").click()
    page.locator("#r-noise").fill("10")
    expect(page.locator("#verdict")).not_to_have_attribute("data-state", "empty")
    page.locator("#r-noise").fill("20")
    expect(page.locator("#r-answer")).not_to_have_text("…")
    assert [e for e in page.errors if "willReadFrequently" in e] == []
    page.context.close()


def test_spanish_pages_name_the_shipped_models_in_spanish(browser, server):
    page = new_page(browser, 1366, 768)
    page.goto(server + "/classify?lang=es")
    expect(page.locator("#model option[value=digits]")).to_have_text("Dígitos (CNN de dígitos)")
    page.goto(server + "/draw?lang=es")
    expect(page.locator("#model option[value=digits]")).to_contain_text("Dígitos (CNN de dígitos)")
    assert "digit CNN" not in page.locator("#model").inner_text()
    page.goto(server + "/?lang=es")
    expect(page.locator("table.models")).to_contain_text("Dígitos (CNN de dígitos)")
    assert "digit CNN" not in page.locator("table.models").inner_text()
    page.goto(server + "/draw?lang=en")  # English pages keep the names as they are
    expect(page.locator("#model option[value=digits]")).to_contain_text("Digits (digit CNN)")
    assert page.errors == [], page.errors
    page.context.close()
