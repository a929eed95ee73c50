"""A project shown to the class, in real browsers: a teacher and two students in three chromium
contexts. The teacher shows a small project; both students see it at once, without reloading; one
classifies a photo with it, the other copies it and lands on /teach with the copy; the teacher
stops showing it and it goes from the students' pages."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.settings import ROOT
from tests.helpers import ARTIFACTS
from tests.photos import crops
from tests.test_projects import jpeg

pytestmark = pytest.mark.browser
PHOTO_NETWORK = (ROOT / "models" / "imagenet.safetensors").is_file()


def make_project(api, server: str, token: str) -> dict:
    """Cat or coffee? with five photos a class, made through the API (`api`: a browser context's
    requests) as the teacher's browser (its owner token), trained by transfer when the photo
    network is installed."""
    mine = {"X-Owner-Token": token}
    p = api.post(server + "/api/projects", data={"name": "Cat or coffee?", "classes": ["cat", "coffee"]}, headers=mine).json()
    for c, name in zip(p["classes"], ("chelsea.png", "coffee.png")):
        for i, img in enumerate(crops(name, 5, seed=len(name))):
            photo = {"name": f"{i}.jpg", "mimeType": "image/jpeg", "buffer": jpeg(img)}
            added = api.post(server + f"/api/projects/{p['id']}/samples", headers=mine,
                             multipart={"images": photo, "class_id": str(c["id"])})
            assert added.status == 201, added.text()
    if PHOTO_NETWORK:
        assert api.post(server + f"/api/projects/{p['id']}/train", data={}, headers=mine, timeout=120000).status == 201
    return api.get(server + f"/api/projects/{p['id']}").json()


def projects_of(api, server: str, token: str) -> list[dict]:
    return api.get(server + "/api/projects", headers={"X-Owner-Token": token}).json()["projects"]


def join(page, server: str, code: str, name: str) -> None:
    page.goto(server + f"/join?code={code}")
    page.fill("#join-name", name)
    page.click("#join-form button[type=submit]")
    expect(page.locator("#student-panel")).to_be_visible()


def test_the_classroom_share_with_a_teacher_and_two_students(browser, server, tmp_path):
    contexts = [browser.new_context(viewport=size, bypass_csp=True)
                for size in ({"width": 1280, "height": 720}, {"width": 390, "height": 844}, {"width": 390, "height": 844})]
    teacher, ada, bo = (c.new_page() for c in contexts)
    errors = []
    for p in (teacher, ada, bo):
        p.on("pageerror", lambda e: errors.append(str(e)))
    teacher.goto(server + "/session")
    expect(teacher.locator("#model option").first).to_be_attached()  # the page has asked the server: it has its token
    token = teacher.evaluate("localStorage.getItem('neuronlab.owner')")
    project = make_project(contexts[0].request, server, token)
    teacher.click("#start")
    expect(teacher.locator("#code")).to_have_text(re.compile(r"^\w{5}$"))
    code = teacher.locator("#code").text_content()
    expect(teacher.locator("#share-pick option")).to_have_text(["Cat or coffee? (10 photos)"])

    join(ada, server, code, "Ada")
    join(bo, server, code, "Bo")
    expect(teacher.locator("#students")).to_contain_text("2")
    expect(ada.locator("#shared-panel")).to_be_hidden()

    teacher.click("#session-more summary")  # folded away: the gallery keeps the projector's room
    teacher.select_option("#share-pick", project["id"])
    teacher.click("#share")
    expect(teacher.locator("#share-status")).to_have_text("Shown to the class: Cat or coffee?")
    expect(teacher.locator("#unshare")).to_be_visible()
    for student in (ada, bo):  # at once, without reloading
        expect(student.locator("#shared-panel")).to_be_visible()
        expect(student.locator("#shared-name")).to_have_text("Cat or coffee?")
        expect(student.locator("#shared-classes > li")).to_have_count(2)
        expect(student.locator("#shared-classes > li").first).to_contain_text("cat")
        expect(student.locator("#shared-classes > li").first).to_contain_text("5 photos")
        expect(student.locator(".shared-thumbs img")).to_have_count(8)  # four of each class
        for img in student.locator(".shared-thumbs img").all():  # each photo came through the session's route
            expect(img).not_to_have_js_property("naturalWidth", 0)

    if PHOTO_NETWORK:  # Ada tries it with a photo of the cat it was not taught with
        expect(ada.locator("#shared-score")).to_contain_text("Held-out accuracy")
        shot = tmp_path / "cat.jpg"
        shot.write_bytes(jpeg(crops("chelsea.png", 1, seed=90)[0]))
        ada.set_input_files("#shared-photo", str(shot))
        expect(ada.locator(".shared-verdict")).to_contain_text("It says: cat")
        expect(ada.locator(".shared-preview")).to_be_visible()
    else:
        expect(ada.locator("#shared-score")).to_have_text("Not trained yet: its classes and photos only.")
        expect(ada.locator("#shared-try")).to_be_hidden()

    bo.click("#shared-copy")  # Bo copies it into a project of Bo's own, and lands on /teach with it
    bo.wait_for_url("**/teach?project=*")
    copy_id = bo.evaluate("new URLSearchParams(location.search).get('project')")
    assert copy_id != project["id"]
    expect(bo.locator("#project-name")).to_have_text("Cat or coffee?")
    expect(bo.locator("#classes > li")).to_have_count(2)
    bo_token = bo.evaluate("localStorage.getItem('neuronlab.owner')")
    mine = projects_of(contexts[2].request, server, bo_token)
    assert [(p["id"], p["samples"], p["model_id"]) for p in mine] == [(copy_id, 10, None)]  # Bo's, untrained
    assert [p["id"] for p in projects_of(contexts[0].request, server, token)] == [project["id"]]  # the teacher's is theirs

    ARTIFACTS.mkdir(exist_ok=True)
    ada.screenshot(path=str(ARTIFACTS / "join-shared-project-phone.png"))
    teacher.screenshot(path=str(ARTIFACTS / "session-shared-project.png"))
    teacher.click("#unshare")  # the teacher stops showing it: it goes from Ada's page at once
    expect(teacher.locator("#unshare")).to_be_hidden()
    expect(ada.locator("#shared-panel")).to_be_hidden()
    expect(ada.locator("#student-panel")).to_be_visible()  # drawing goes on
    for c in contexts:
        c.close()
    assert errors == []
