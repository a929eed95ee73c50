"""Showing the class a project: the teacher puts one of their projects on the class's screen;
students read it (its classes and a few photos), classify photos with its model and copy it into a
project of their own, only while it is shown. Who may do what, and the ways in that must stay shut."""
from __future__ import annotations

import sqlite3

import pytest
from PIL import Image

from app.settings import ROOT
from engine.stores.projects import Limits, ProjectStore
from engine.stores.sessions import SessionStore
from tests.test_projects import add, jpeg, new_project
from tests.test_sessions import join, start, teacher

STUDENT = {"X-Owner-Token": "fedcba9876543210fedcba9876543210"}  # another browser: a student's phone
OTHER = {"X-Owner-Token": "00112233445566778899aabbccddeeff"}    # someone else again
PHOTO_NETWORK = (ROOT / "models" / "imagenet.safetensors").is_file()


def squares(colour: str, n: int) -> list[Image.Image]:
    return [Image.new("RGB", (40 + 8 * i, 40), colour) for i in range(n)]


def shown_project(client, **headers) -> dict:
    """A ball-or-box project of the client's (4 photos a class) and a session that shows it."""
    session = start(client)
    p = new_project(client)
    for c, colour in zip(p["classes"], ("red", "blue")):
        assert add(client, p["id"], c["id"], squares(colour, 4)).status_code == 201
    share = client.put(f"/api/sessions/{session['code']}/project", json={"project": p["id"]}, headers=teacher(session))
    assert share.status_code == 200, share.text
    return {"session": session, "code": session["code"], "project": client.get(f"/api/projects/{p['id']}").json()}


def test_students_see_the_shown_project_at_once_read_only_and_copy_it(client, settings):
    session = start(client)
    code = session["code"]
    p = new_project(client, "Ball or box", ["ball", "box"])
    for c, colour in zip(p["classes"], ("red", "blue")):
        assert add(client, p["id"], c["id"], squares(colour, 5)).status_code == 201
    ada = join(client, code, "Ada")
    assert client.get(f"/api/sessions/{code}/project", headers=STUDENT).status_code == 404  # nothing shown yet
    with client.websocket_connect(f"/ws/sessions/{code}/student") as ws:
        ws.send_json({"key": ada["student_key"]})
        assert ws.receive_json()["type"] == "session"
        assert ws.receive_json() == {"type": "project", "shared": False}  # what is shown now: nothing (no 404 to ask)
        shared = client.put(f"/api/sessions/{code}/project", json={"project": p["id"]}, headers=teacher(session))
        assert shared.status_code == 200 and shared.json()["shown"]["name"] == "Ball or box"
        assert ws.receive_json() == {"type": "project", "shared": True}  # at once

        view = client.get(f"/api/sessions/{code}/project", headers=STUDENT)
        assert view.status_code == 200
        body = view.json()
        assert body["name"] == "Ball or box" and body["trained"] is False and body["accuracy"] is None
        assert [(c["name"], c["count"], len(c["samples"])) for c in body["classes"]] == [("ball", 5, 4), ("box", 5, 4)]
        assert body["photos"] == 10
        for secret in (p["id"], "owner", "model_id", str(settings.data_dir)):  # no id, owner hash or path
            assert secret not in view.text
        project = client.get(f"/api/projects/{p['id']}").json()
        first = project["classes"][0]["samples"][0]
        thumb = client.get(f"/api/sessions/{code}/project/samples/{first}", headers=STUDENT)
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert thumb.content == client.get(f"/api/projects/{p['id']}/samples/{first}.jpg").content
        untrained = client.post(f"/api/sessions/{code}/project/predict", headers=STUDENT,
                                files={"image": ("p.jpg", jpeg(squares("red", 1)[0]), "image/jpeg")})
        assert untrained.status_code == 409 and untrained.json()["error"] == "not_trained"

        # read-only: the student cannot change, rename or delete it
        assert client.patch(f"/api/projects/{p['id']}", json={"name": "mine"}, headers=STUDENT).status_code == 403
        assert client.delete(f"/api/projects/{p['id']}", headers=STUDENT).status_code == 403
        assert add(client, p["id"], p["classes"][0]["id"], squares("red", 1)).status_code == 201  # (its owner can)

        # ...but copies it into a project of their own: same classes and photos, new ids, untrained
        copied = client.post(f"/api/sessions/{code}/project/copy", headers=STUDENT)
        assert copied.status_code == 201, copied.text
        copy = copied.json()
        assert copy["id"] != p["id"] and copy["name"] == "Ball or box" and copy["model_id"] is None
        assert "owner_token" not in copy  # the student's browser sent its token
        original = client.get(f"/api/projects/{p['id']}").json()
        assert [(c["name"], c["count"]) for c in copy["classes"]] == [(c["name"], c["count"]) for c in original["classes"]]
        assert {c["id"] for c in copy["classes"]}.isdisjoint(c["id"] for c in original["classes"])
        for mine, theirs in zip(copy["classes"], original["classes"]):
            assert set(mine["samples"]).isdisjoint(theirs["samples"])
            for a, b in zip(mine["samples"], theirs["samples"]):  # byte for byte
                assert (client.get(f"/api/projects/{copy['id']}/samples/{a}.jpg").content
                        == client.get(f"/api/projects/{p['id']}/samples/{b}.jpg").content)
        folder = settings.data_dir / "projects"
        assert len(list((folder / copy["id"]).glob("*.f32"))) == len(list((folder / p["id"]).glob("*.f32")))
        mine = client.get("/api/projects", headers=STUDENT).json()["projects"]
        assert [m["id"] for m in mine] == [copy["id"]]  # the student's own...
        assert copy["id"] not in [m["id"] for m in client.get("/api/projects").json()["projects"]]  # ...not the teacher's
        assert client.patch(f"/api/projects/{copy['id']}", json={"name": "Mine"}, headers=STUDENT).status_code == 200
        assert client.patch(f"/api/projects/{copy['id']}", json={"name": "Yours"}).status_code == 403
        assert add(client, copy["id"], copy["classes"][0]["id"], squares("red", 1)).status_code == 403

        # the teacher stops showing it: the students hear it, and every read-only way in is shut
        stop = client.put(f"/api/sessions/{code}/project", json={"project": None}, headers=teacher(session))
        assert stop.status_code == 200 and stop.json() == {"project": None, "shown": None}
        assert ws.receive_json() == {"type": "project", "shared": False}
    for method, path in [("get", "/project"), ("get", f"/project/samples/{first}"), ("post", "/project/copy")]:
        answer = getattr(client, method)(f"/api/sessions/{code}{path}", headers=STUDENT)
        assert answer.status_code == 404 and answer.json()["error"] == "nothing_shared", path
    assert client.get(f"/api/projects/{copy['id']}", headers=STUDENT).status_code == 200  # the copy stays


def test_the_teachers_page_hears_what_is_shown(client):
    s = shown_project(client)
    with client.websocket_connect(f"/ws/sessions/{s['code']}") as ws:
        ws.send_json({"key": s["session"]["teacher_key"]})
        assert ws.receive_json()["project"] == s["project"]["id"]  # the snapshot names it (for the teacher)
        client.put(f"/api/sessions/{s['code']}/project", json={"project": None}, headers=teacher(s["session"]))
        assert ws.receive_json() == {"type": "project", "shared": False}
    assert "project" not in client.get(f"/api/sessions/{s['code']}").json()  # students' info names none


def test_ending_the_session_stops_showing_the_project(client):
    s = shown_project(client)
    code, sample = s["code"], s["project"]["classes"][0]["samples"][0]
    assert client.post(f"/api/sessions/{code}/end", json={}, headers=teacher(s["session"])).status_code == 200
    for method, path in [("get", "/project"), ("get", f"/project/samples/{sample}"), ("post", "/project/copy")]:
        assert getattr(client, method)(f"/api/sessions/{code}{path}", headers=STUDENT).status_code == 410, path
    again = client.put(f"/api/sessions/{code}/project", json={"project": s["project"]["id"]}, headers=teacher(s["session"]))
    assert again.status_code == 410
    assert client.put(f"/api/sessions/{code}/project", json={"project": None}, headers=teacher(s["session"])).status_code == 200


def test_only_the_teacher_shares_and_only_their_own_project(client):
    s = shown_project(client)
    code, mine = s["code"], s["project"]["id"]
    ada = join(client, code, "Ada")
    theirs = client.post("/api/projects", json={"name": "Not yours", "classes": ["a", "b"]}, headers=OTHER).json()
    unshare = {"project": None}
    for headers in ({}, {"X-Teacher-Key": ada["student_key"]}, {"X-Teacher-Key": "x" * 32}, {**STUDENT}):
        answer = client.put(f"/api/sessions/{code}/project", json=unshare, headers=headers)
        assert answer.status_code == 403 and answer.json()["error"] == "not_teacher"  # a student cannot
    # the teacher's key, but a project of someone else's (or the teacher's key from another browser)
    answer = client.put(f"/api/sessions/{code}/project", json={"project": theirs["id"]}, headers=teacher(s["session"]))
    assert answer.status_code == 403 and answer.json()["error"] == "not_owner"
    answer = client.put(f"/api/sessions/{code}/project", json={"project": mine}, headers={**teacher(s["session"]), **OTHER})
    assert answer.status_code == 403
    assert client.get(f"/api/sessions/{code}/project").json()["name"] == "Ball or box"  # unchanged
    other_session = start(client)
    answer = client.put(f"/api/sessions/{code}/project", json=unshare, headers=teacher(other_session))
    assert answer.status_code == 403  # another session's teacher key


@pytest.mark.parametrize("body, status", [
    ({"project": "0" * 32}, 404), ({"project": "../../etc/passwd"}, 404), ({"project": "a" * 8}, 404),
    ({"project": "a" * 65}, 422), ({"project": "x" * 100_000}, 422), ({"project": 123}, 422), ({}, 422),
    ({"project": None, "extra": 1}, 422), ({"project": ["a"]}, 422)])
def test_odd_projects_to_share(client, body, status):
    session = start(client)
    answer = client.put(f"/api/sessions/{session['code']}/project", json=body, headers=teacher(session))
    assert answer.status_code == status, answer.text


def test_the_session_routes_give_only_the_shown_projects_photos(client):
    s = shown_project(client)
    code = s["code"]
    hidden = new_project(client, "Hidden", ["a", "b"])  # the same teacher's, not shown
    assert add(client, hidden["id"], hidden["classes"][0]["id"], squares("green", 1)).status_code == 201
    secret = client.get(f"/api/projects/{hidden['id']}").json()["classes"][0]["samples"][0]
    answer = client.get(f"/api/sessions/{code}/project/samples/{secret}", headers=STUDENT)
    assert answer.status_code == 404 and hidden["id"] not in answer.text and s["project"]["id"] not in answer.text
    for odd, status in [("-1", 422), (str(2**64), 422), ("abc", 422), ("1.5", 422), ("9" * 400, 422),
                        (str(2**63 - 1), 404), ("0", 404), ("..%2F..%2Fprojects.sqlite3", 404)]:  # (the last: no such route)
        assert client.get(f"/api/sessions/{code}/project/samples/{odd}", headers=STUDENT).status_code == status, odd
    for odd_code in ("ZZZZZ", "x" * 5000, "%00", "<b>"):
        assert client.get(f"/api/sessions/{odd_code}/project").status_code == 404, odd_code
        assert client.post(f"/api/sessions/{odd_code}/project/copy").status_code == 404, odd_code
    not_an_image = client.post(f"/api/sessions/{code}/project/predict", files={"image": ("p.jpg", b"nope", "image/jpeg")})
    assert not_an_image.status_code in (409, 415, 422)  # untrained first, never a 500
    assert client.post(f"/api/sessions/{code}/project/predict").status_code == 422  # no image


def test_a_deleted_project_is_no_longer_shown(client):
    s = shown_project(client)
    assert client.delete(f"/api/projects/{s['project']['id']}").status_code == 204
    answer = client.get(f"/api/sessions/{s['code']}/project")
    assert answer.status_code == 404 and s["project"]["id"] not in answer.text
    assert client.post(f"/api/sessions/{s['code']}/project/copy", headers=STUDENT).status_code == 404


@pytest.mark.skipif(not PHOTO_NETWORK, reason="the photo network is not installed (scripts/setup.sh)")
def test_students_classify_with_the_shown_projects_model_and_cannot_touch_it(client):
    from tests.photos import crops
    session = start(client)
    code = session["code"]
    p = new_project(client, "Cat or coffee?", ["cat", "coffee"])
    for c, name in zip(p["classes"], ("chelsea.png", "coffee.png")):
        assert add(client, p["id"], c["id"], crops(name, 5, seed=len(name))).status_code == 201
    trained = client.post(f"/api/projects/{p['id']}/train", json={}).json()["project"]
    model_id = trained["model_id"]
    assert client.put(f"/api/sessions/{code}/project", json={"project": p["id"]}, headers=teacher(session)).status_code == 200
    view = client.get(f"/api/sessions/{code}/project", headers=STUDENT).json()
    assert view["trained"] is True and view["accuracy"] == trained["result"]["accuracy"] and view["method"] == "transfer"
    assert view["held_out"] == 2
    cat = jpeg(crops("chelsea.png", 1, seed=90)[0])
    read = client.post(f"/api/sessions/{code}/project/predict", headers=STUDENT, files={"image": ("c.jpg", cat, "image/jpeg")})
    assert read.status_code == 200, read.text
    assert read.json()["prediction"] == "cat" and read.json()["labels"] == ["cat", "coffee"] and "model" not in read.json()
    assert isinstance(read.json()["sure"], bool)  # a house would still be given one of its classes: the page says when unsure
    assert model_id not in read.text
    # the model is the teacher's: a student can neither rename nor delete it
    assert client.patch(f"/api/models/{model_id}", json={"name": "mine"}, headers=STUDENT).status_code == 403
    assert client.delete(f"/api/models/{model_id}", headers=STUDENT).status_code == 403
    copy = client.post(f"/api/sessions/{code}/project/copy", headers=STUDENT).json()
    assert copy["model_id"] is None and copy["result"] is None  # the copy starts untrained...
    retrained = client.post(f"/api/projects/{copy['id']}/train", json={}, headers=STUDENT)  # ...and its owner trains it
    assert retrained.status_code == 201 and retrained.json()["project"]["model_id"] != model_id
    assert client.get(f"/api/models/{model_id}").status_code == 200  # the teacher's model is untouched


# --- the stores -----------------------------------------------------------------------------------

def test_a_copy_is_whole_or_nothing_and_within_the_limits(tmp_path):
    store = ProjectStore(tmp_path / "projects", Limits(projects=3))
    p = store.create("Empty", ["a", "b", "c"], owner="teacher")
    copy = store.copy(p["id"], "student")
    assert [c["name"] for c in copy["classes"]] == ["a", "b", "c"] and store.owner(copy["id"]) == "student"
    assert store.list("student")[0]["id"] == copy["id"] and store.owner(p["id"]) == "teacher"
    with_photo = store.create("Photo", ["a"], owner="teacher")
    store.add_sample(with_photo["id"], with_photo["classes"][0]["id"], Image.new("RGB", (30, 20), "red"))
    before = sorted((tmp_path / "projects").iterdir())
    with pytest.raises(Exception) as full:
        store.copy(with_photo["id"], "student")
    assert full.value.status == 409 and full.value.code == "too_many_projects"
    assert len(store.list(None, everyone=True)) == 3 and sorted((tmp_path / "projects").iterdir()) == before
    with pytest.raises(Exception) as unknown:
        store.copy("0" * 32, "student")
    assert unknown.value.status == 404


def test_a_copy_that_fails_midway_leaves_nothing(tmp_path, monkeypatch):
    from engine.stores import files
    store = ProjectStore(tmp_path / "projects")
    p = store.create("Photos", ["a"], owner="teacher")
    store.add_samples(p["id"], p["classes"][0]["id"], squares("red", 3))
    calls = []

    def flaky(path, data, mode=0o644):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(path, data, mode)
    real = files.write_bytes
    monkeypatch.setattr(files, "write_bytes", flaky)
    with pytest.raises(OSError):
        store.copy(p["id"], "student")
    assert [x["id"] for x in store.list(None, everyone=True)] == [p["id"]]
    assert sorted(d.name for d in (tmp_path / "projects").iterdir() if d.is_dir()) == [p["id"]]


def test_the_shared_project_column_is_added_to_an_older_database(tmp_path):
    SessionStore(tmp_path)
    with sqlite3.connect(tmp_path / "sessions.sqlite3") as con:
        con.execute("ALTER TABLE sessions DROP COLUMN project")  # as an older version made it
    store = SessionStore(tmp_path)
    session, _ = store.start("digits")
    assert store.shared(session["code"]) is None
    store.share(session["code"], "0" * 32)
    assert store.shared(session["code"]) == "0" * 32
    store.end(session["code"], keep=False)
    assert store.shared(session["code"], live=False) is None
