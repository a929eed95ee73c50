"""Real browser tests of the classroom: a class session with a teacher and two students, projector
mode, shortcuts, lesson links, languages, no outside requests, and an accessibility check."""
from __future__ import annotations

import zipfile

import pytest
from playwright.sync_api import expect

from app.routers.pages import JOIN, PAGES
from app.settings import ROOT
from tests.helpers import ARTIFACTS, stroke

pytestmark = pytest.mark.browser
PROJECTOR_PAGES = ["/", *(path for path, _ in PAGES), JOIN[0]]
EVERY_PAGE = [*PROJECTOR_PAGES, "/docs"]


def descent_ready(page):
    """The descent page has its first path from the server (its numbers are shown): keys act now."""
    page.wait_for_function("document.querySelectorAll('#numbers dd').length > 0")


def test_a_class_session_with_a_teacher_and_two_students(browser, server):
    contexts = [browser.new_context(viewport={"width": 1280, "height": 720}, bypass_csp=True) for _ in range(3)]
    teacher, ada, bo = (c.new_page() for c in contexts)
    errors = []
    for p in (teacher, ada, bo):
        p.on("pageerror", lambda e: errors.append(str(e)))
    teacher.on("dialog", lambda d: d.accept())
    teacher.goto(server + "/session")
    teacher.click("#start")
    teacher.wait_for_function("document.getElementById('code').textContent.length === 5")
    code = teacher.locator("#code").text_content()
    teacher.wait_for_function("document.getElementById('qr').complete && document.getElementById('qr').naturalWidth > 0")

    ada.goto(server + f"/join?code={code}")
    ada.fill("#join-name", "Ada")
    ada.click("#join-form button[type=submit]")
    ada.wait_for_selector("#student-panel:not([hidden])")
    stroke(ada, [(0.25, 0.15), (0.75, 0.15), (0.45, 0.9)])  # a 7
    ada.wait_for_selector("#label-box:not([hidden])")
    ada.get_by_role("button", name="7", exact=True).click()
    ada.wait_for_function("document.getElementById('student-status').textContent.includes('you drew 7')")

    bo.goto(server + "/join")
    bo.fill("#join-code", code.lower())
    bo.fill("#join-name", "<b>Bo</b>")
    bo.click("#join-form button[type=submit]")
    bo.wait_for_selector("#student-panel:not([hidden])")
    stroke(bo, [(0.5, 0.1), (0.5, 0.9)])  # a 1
    bo.wait_for_selector("#label-box:not([hidden])")

    teacher.wait_for_function("document.querySelectorAll('#gallery .tile').length === 2")
    names = teacher.locator("#gallery .student").all_text_contents()
    assert sorted(names) == ["<b>Bo</b>", "Ada"]
    expect(teacher.locator("#gallery b")).to_have_count(0)
    assert "✓ is 7" in teacher.locator("#gallery").text_content()
    teacher.keyboard.press("g")  # hide the guesses
    teacher.wait_for_function("[...document.querySelectorAll('.tile-guess')].every(e => e.textContent === '?')")

    key = ada.evaluate(f"JSON.parse(localStorage.getItem('neuronlab.student.{code}')).student_key")
    status = ada.evaluate("""async ([code, key]) => (await fetch(`/api/sessions/${code}/end`, {method: 'POST',
        headers: {'Content-Type': 'application/json', 'X-Teacher-Key': key}, body: '{}'})).status""", [code, key])
    assert status == 403  # a student cannot end the session
    teacher.click("#session-more summary")
    with teacher.expect_download() as saving:  # the class's labelled drawings, as a dataset
        teacher.click("#download-drawings")
    saved = zipfile.ZipFile(saving.value.path())
    assert saving.value.suggested_filename == f"class-{code}-drawings.zip"
    assert [row.split(",")[1] for row in saved.read("labels.csv").decode().split()[1:]] == ["7"]  # Ada's; Bo gave none
    teacher.click("#end")  # ending asks what becomes of the drawings
    teacher.get_by_role("button", name="End and delete the drawings").click()
    teacher.wait_for_function("document.getElementById('session-status').textContent.includes('ended')")
    ada.wait_for_selector("#ended-box:not([hidden])")  # told at once, without drawing again
    ARTIFACTS.mkdir(exist_ok=True)
    teacher.screenshot(path=str(ARTIFACTS / "session.png"))
    for c in contexts:
        c.close()
    assert errors == []




def test_no_page_requests_an_outside_address(browser, server):
    """Every request a page makes goes to this server; the CSP header (enforced here) says so to the
    browser too, and no page breaks it."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    for path in EVERY_PAGE:
        response = page.goto(server + path)
        assert "default-src 'self'" in response.headers["content-security-policy"], path
        page.wait_for_load_state("networkidle")
    outside = [u for u in requested if not u.startswith((server, "data:", "blob:"))]
    context.close()
    assert requested and outside == []
    assert page.errors == []  # a CSP violation would show up here


def test_no_serious_accessibility_violations(browser, server):
    """axe-core (from npm node_modules) on every page of ours: no serious or critical issue. (/docs is
    Swagger UI's own interface, not checked here.)"""
    axe = ROOT / "node_modules" / "axe-core" / "axe.min.js"
    context = browser.new_context(viewport={"width": 1280, "height": 720}, bypass_csp=True)  # to inject axe
    page = context.new_page()
    found = {}
    for path in [p for p in EVERY_PAGE if p != "/docs"]:
        page.goto(server + path)
        page.wait_for_load_state("networkidle")
        page.add_script_tag(path=str(axe))
        result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                               ".filter(v => ['serious', 'critical'].includes(v.impact))"
                               ".map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))")
        if result:
            found[path] = result
    context.close()
    assert found == {}, "\n".join(f"{p}: {v}" for p, v in found.items())




def test_projector_mode_reads_at_1280x720_on_every_page(page, server):
    page.goto(server + "/draw")
    normal = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
    page.keyboard.press("Shift+P")
    assert "projector=1" in page.url
    ARTIFACTS.mkdir(exist_ok=True)
    for path in PROJECTOR_PAGES:
        page.goto(server + path)  # remembered: no parameter needed
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.classList.contains('projector')"), path
        size = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
        assert size >= 24 and size > normal, (path, size, normal)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, (path, overflow)
        page.screenshot(path=str(ARTIFACTS / f"projector{path.replace('/', '-') or '-home'}.png"))
    page.click("#projector-toggle")
    assert "projector" not in page.url and page.evaluate("localStorage.getItem('neuronlab.projector')") == "0"
    assert page.errors == []


def test_shortcut_overlay_and_a_presentation_clicker(page, server):
    page.goto(server + "/descent?tab=parabola&optimizer=sgd&lr=0.5")
    descent_ready(page)
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()
    assert "one step" in page.locator("#shortcuts").text_content()
    page.keyboard.press("Escape")
    page.keyboard.press("PageDown")  # the clicker's "next" is Space: one step
    page.wait_for_function("document.getElementById('counter').textContent === '1'")
    page.keyboard.press("PageUp")    # its "back" is R: reset
    page.wait_for_function("document.getElementById('counter').textContent === '0'")
    assert page.errors == []


def test_a_lesson_link_restores_the_setup_with_hidden_controls_and_a_note(page, server, browser):
    page.goto(server + "/descent?tab=parabola&optimizer=sgd&lr=1.05")
    page.wait_for_function("document.getElementById('lr-number').value === '1.05'")
    page.click("#lesson-toggle")
    page.get_by_label("Learning rate", exact=True).last.check()  # in the dialog: hide the learning rate
    page.fill("#lesson-text", "Press STEP: why does it <b>diverge</b>?")
    link = page.locator("#lesson-link").input_value()
    assert "lr=1.05" in link and "hide=learning-rate" in link
    page.wait_for_function("document.getElementById('lesson-qr').complete && document.getElementById('lesson-qr').naturalWidth > 0")
    student = browser.new_context(viewport={"width": 1280, "height": 720}, bypass_csp=True).new_page()
    student.goto(link)
    student.wait_for_function("document.getElementById('lr-number').value === '1.05'")
    descent_ready(student)
    assert not student.locator("[data-control=learning-rate]").is_visible()
    expect(student.locator("#lesson-note-text")).to_have_text("Press STEP: why does it <b>diverge</b>?")
    student.keyboard.press("Space")
    student.wait_for_function("document.getElementById('counter').textContent === '1'")
    student.context.close()
    assert page.errors == []


def test_the_interface_in_spanish(page, server):
    page.goto(server + "/draw")
    page.select_option("#lang-pick", "es")
    page.wait_for_url("**lang=es**")
    assert page.locator("html").get_attribute("lang") == "es"
    expect(page.locator("#draw-title")).to_have_text("Dibuja un dígito")
    page.goto(server + "/join")  # the cookie keeps the language
    expect(page.locator("#join-title")).to_have_text("Unirse a una clase")
    assert page.errors == []
