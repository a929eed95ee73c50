"""A project as one file, in a real browser: download it from /teach as a .neuronlab file, open
that file on the same page, and the new project shows the same classes, photo counts and score."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
from playwright.sync_api import expect

from tests.test_browser_photos import api, cat_or_coffee

pytestmark = pytest.mark.browser


def test_download_a_project_and_open_the_file_as_a_new_project(page, server, tmp_path):
    p = cat_or_coffee(page, server, 5)
    trained = api(server, f"/api/projects/{p['id']}/train", {})["project"]
    page.goto(server + f"/teach?project={p['id']}")
    page.wait_for_function("document.getElementById('accuracy').textContent.endsWith('%')")
    score = page.locator("#accuracy").text_content()

    button = page.get_by_role("button", name="Download project (.neuronlab)")
    with page.expect_download() as download:
        button.click()
    assert download.value.suggested_filename.startswith("Cat or coffee")
    assert download.value.suggested_filename.endswith(".neuronlab")
    path = tmp_path / "cat-or-coffee.neuronlab"
    download.value.save_as(path)
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert {"model.safetensors", "model.json"} <= set(zf.namelist())
    assert [len(c["photos"]) for c in manifest["classes"]] == [5, 5]

    page.set_input_files("#import-project", str(path))
    page.wait_for_function("(old) => { const id = new URLSearchParams(location.search).get('project'); "
                           "return id && id !== old; }", arg=p["id"])
    page.wait_for_function("document.getElementById('accuracy').textContent.endsWith('%')")
    expect(page.locator("#project-name")).to_have_text("Cat or coffee?")
    rows = page.locator("#classes .class-row")
    assert rows.locator(".class-name").all_text_contents() == ["cat", "coffee"]
    assert rows.locator(".count").all_text_contents() == ["5 photos", "5 photos"]
    expect(rows.nth(0).locator(".thumbs img")).to_have_count(5)
    assert page.locator("#accuracy").text_content() == score
    assert page.locator("#compare-transfer").text_content() == score
    new_id = page.evaluate("new URLSearchParams(location.search).get('project')")
    imported = api(server, f"/api/projects/{new_id}", method="GET")
    assert imported["model_id"] != trained["model_id"] and imported["result"]["accuracy"] == trained["result"]["accuracy"]
    # both are listed: the original and the imported copy
    assert page.locator("#project-list .project-pick").count() >= 2

    assert page.errors == []

    # a file that is not a project: a clear message, nothing opened
    bad = tmp_path / "notes.neuronlab"
    bad.write_text("not a project")
    page.set_input_files("#import-project", str(bad))
    page.wait_for_function("document.getElementById('projects-error').textContent.length > 0")
    assert "not a zip" in page.locator("#projects-error").text_content()
    assert page.evaluate("new URLSearchParams(location.search).get('project')") == new_id
    assert page.errors == ["Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"]
