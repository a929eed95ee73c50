"""Class sessions over HTTP and WebSocket: teacher and students, the live gallery, who may do
what, fine-tuning on the class's drawings, ending, and persistence across a restart."""
from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from tests.helpers import draw_digit, encode


def start(client, **body):
    response = client.post("/api/sessions", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def join(client, code, name):
    response = client.post(f"/api/sessions/{code}/students", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()


def draw(client, code, student, digit="7", drawing_id=None, **kwargs):
    data = {} if drawing_id is None else {"drawing_id": str(drawing_id)}
    return client.post(f"/api/sessions/{code}/drawings", data=data,
                       files={"image": ("d.png", encode(draw_digit(digit, **kwargs)), "image/png")},
                       headers={"X-Student-Key": student["student_key"]})


def teacher(session):
    return {"X-Teacher-Key": session["teacher_key"]}


def test_a_session_from_join_to_gallery(client):
    session = start(client)
    code = session["code"]
    assert len(code) == 5 and session["model_id"] == "digits" and session["join_path"].endswith(code)
    qr = client.get(f"/api/sessions/{code}/qr.svg")
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml") and b"<svg" in qr.content
    ada = join(client, code.lower(), "<i>Ada</i>")  # codes are read case-insensitively
    assert ada["labels"][7] == "7"
    with client.websocket_connect(f"/ws/sessions/{code}") as ws:
        ws.send_json({"key": session["teacher_key"]})
        first = ws.receive_json()
        assert first["type"] == "snapshot" and first["drawings"] == []
        drawn = draw(client, code, ada, "7")
        assert drawn.status_code == 201 and drawn.json()["guess"] == "7"
        event = ws.receive_json()
        assert event["type"] == "drawing" and event["drawing"]["student"] == "<i>Ada</i>"
        assert event["drawing"]["image"]["width"] == 28
        again = draw(client, code, ada, "1", drawing_id=drawn.json()["id"])  # still drawing: same tile
        assert again.json()["id"] == drawn.json()["id"] and ws.receive_json()["drawing"]["guess"] == "1"
        labelled = client.put(f"/api/sessions/{code}/drawings/{drawn.json()['id']}/label", json={"label": 7},
                              headers={"X-Student-Key": ada["student_key"]})
        assert labelled.json()["label"] == "7" and labelled.json()["misread"] is True
        assert ws.receive_json()["drawing"]["misread"] is True
        assert client.patch(f"/api/sessions/{code}", json={"reveal": False}, headers=teacher(session)).status_code == 200
        assert ws.receive_json() == {"type": "reveal", "reveal": False}
    gallery = client.get(f"/api/sessions/{code}/gallery", headers=teacher(session)).json()
    assert len(gallery["drawings"]) == 1 and gallery["reveal"] is False and gallery["students"] == 1


def test_students_cannot_act_as_the_teacher(client):
    session = start(client)
    code = session["code"]
    bob = join(client, code, "Bob")
    drawing = draw(client, code, bob).json()
    as_student = {"X-Teacher-Key": bob["student_key"]}
    for method, path, body in [("post", f"/api/sessions/{code}/end", {"keep": False}),
                               ("post", f"/api/sessions/{code}/clear", None),
                               ("post", f"/api/sessions/{code}/finetune", None),
                               ("patch", f"/api/sessions/{code}", {"reveal": True}),
                               ("put", f"/api/sessions/{code}/drawings/{drawing['id']}/dataset", {"on": True}),
                               ("get", f"/api/sessions/{code}/gallery", None)]:
        for headers in (as_student, {}):
            response = client.request(method.upper(), path, json=body, headers=headers)
            assert response.status_code == 403 and response.json()["error"] == "not_teacher", (path, response.text)
    with client.websocket_connect(f"/ws/sessions/{code}") as ws:
        ws.send_json({"key": bob["student_key"]})
        assert ws.receive_json()["error"] == "not_teacher"
    other = join(client, code, "Eve")
    relabel = client.put(f"/api/sessions/{code}/drawings/{drawing['id']}/label", json={"label": 1},
                         headers={"X-Student-Key": other["student_key"]})
    assert relabel.status_code == 404  # nobody labels another student's drawing
    no_key = client.post(f"/api/sessions/{code}/drawings", files={"image": ("d.png", encode(draw_digit("3")), "image/png")})
    assert no_key.status_code == 403 and no_key.json()["error"] == "not_a_student"


def test_bad_input_is_explained(client):
    assert client.get("/api/sessions/ZZZZZ").status_code == 404
    session = start(client)
    code = session["code"]
    assert client.post(f"/api/sessions/{code}/students", json={"name": "  "}).json()["error"] == "invalid_name"
    kim = join(client, code, "Kim")
    blank = client.post(f"/api/sessions/{code}/drawings", headers={"X-Student-Key": kim["student_key"]},
                        files={"image": ("b.png", encode(Image.new("RGB", (280, 280), "white")), "image/png")})
    assert blank.status_code == 422 and blank.json()["error"] == "image_blank"
    d = draw(client, code, kim).json()
    bad_label = client.put(f"/api/sessions/{code}/drawings/{d['id']}/label", json={"label": 12},
                           headers={"X-Student-Key": kim["student_key"]})
    assert bad_label.status_code == 422 and "label" in bad_label.json()["fields"]
    unlabelled = client.put(f"/api/sessions/{code}/drawings/{d['id']}/dataset", json={"on": True}, headers=teacher(session))
    assert unlabelled.status_code == 422 and unlabelled.json()["error"] == "no_label"
    empty = client.post(f"/api/sessions/{code}/finetune", headers=teacher(session))
    assert empty.status_code == 422 and empty.json()["error"] == "empty_dataset"
    photo_model = client.post("/api/sessions", json={"model": "no-such-model"})
    assert photo_model.status_code == 404


def test_fine_tuning_learns_the_class_handwriting(client):
    """Every student's 4 is drawn like this and keeps being misread: put them in the class
    dataset, fine-tune, and the class's drawings are read right, without forgetting MNIST."""
    session = start(client)
    code = session["code"]
    students = [join(client, code, f"S{i}") for i in range(3)]
    ids = []
    for i, s in enumerate(students):  # a "4" the digit model reads otherwise: labelled 4 by its students
        for slant in (-0.3, 0.0, 0.3):
            d = draw(client, code, s, "9", slant=slant, width=18 + 4 * i).json()
            client.put(f"/api/sessions/{code}/drawings/{d['id']}/label", json={"label": 4},
                       headers={"X-Student-Key": s["student_key"]})
            client.put(f"/api/sessions/{code}/drawings/{d['id']}/dataset", json={"on": True}, headers=teacher(session))
            ids.append(d["id"])
    report = client.post(f"/api/sessions/{code}/finetune", headers=teacher(session))
    assert report.status_code == 200, report.text
    r = report.json()
    assert r["class_accuracy_before"] <= 0.2 and r["class_accuracy_after"] >= 0.8, r
    assert r["replay_accuracy_after"] >= r["replay_accuracy_before"] - 0.03, r
    gallery = client.get(f"/api/sessions/{code}/gallery", headers=teacher(session)).json()
    assert gallery["model_id"] == r["model_id"] and sum(d["guess"] == "4" for d in gallery["drawings"]) >= 7
    assert client.get(f"/api/models/{r['model_id']}").json()["training"]["from"] == "digits"
    assert re.fullmatch(rf"class-{code.lower()}-1-[0-9a-f]{{32}}", r["model_id"])  # not guessable
    mine = {m["id"]: m["mine"] for m in client.get("/api/models").json()["models"]}
    assert mine[r["model_id"]] is True  # the teacher's (the browser that started the session)
    others = client.get("/api/models", headers={"X-Owner-Token": "someone-else-0123456789ab"}).json()["models"]
    assert r["model_id"] not in {m["id"] for m in others}


def test_ending_deletes_drawings_unless_kept_and_sessions_survive_a_restart(client, settings):
    kept, dropped = start(client), start(client)
    for session in (kept, dropped):
        s = join(client, session["code"], "Lee")
        assert draw(client, session["code"], s, "3").status_code == 201
    assert client.post(f"/api/sessions/{kept['code']}/end", json={"keep": True}, headers=teacher(kept)).status_code == 200
    assert client.post(f"/api/sessions/{dropped['code']}/end", json={}, headers=teacher(dropped)).status_code == 200
    late = client.post(f"/api/sessions/{kept['code']}/students", json={"name": "Late"})
    assert late.status_code == 410 and late.json()["error"] == "session_ended"
    with TestClient(create_app(settings)) as again:
        assert len(again.get(f"/api/sessions/{kept['code']}/gallery", headers=teacher(kept)).json()["drawings"]) == 1
        assert again.get(f"/api/sessions/{dropped['code']}/gallery", headers=teacher(dropped)).json()["drawings"] == []
        assert again.get(f"/api/sessions/{kept['code']}").json()["ended"] is not None


@pytest.mark.parametrize("data, status, code", [
    (b"", 400, "image_empty"),
    (b"hello, not a drawing", 415, "image_unsupported"),
    (b"\x89PNG" + b"0" * (3 * 1024 * 1024), 413, "body_too_large"),
])
def test_bad_drawings_are_refused(client, data, status, code):
    session = start(client)
    kim = join(client, session["code"], "Kim")
    response = client.post(f"/api/sessions/{session['code']}/drawings", headers={"X-Student-Key": kim["student_key"]},
                           files={"image": ("d.png", data, "image/png")})
    assert response.status_code == status and response.json()["error"] == code
    assert client.get(f"/api/sessions/{session['code']}/gallery", headers=teacher(session)).json()["drawings"] == []


@pytest.mark.parametrize("path, body", [
    ("students", {"name": 42}), ("students", {"name": "x" * 41}), ("students", {}),
    ("drawings/1/label", {"label": "seven"}), ("drawings/1/label", {"label": -1}),
])
def test_wrong_types_name_the_field(client, path, body):
    session = start(client)
    kim = join(client, session["code"], "Kim")
    method = "PUT" if path.endswith("label") else "POST"
    response = client.request(method, f"/api/sessions/{session['code']}/{path}", json=body,
                              headers={"X-Student-Key": kim["student_key"]})
    assert response.status_code == 422 and response.json()["message"]


def test_a_session_needs_a_drawing_model(client):
    assert client.post("/api/sessions", json={"model": 5}).status_code == 422
    assert client.post("/api/sessions", json={"model": "digits", "extra": 1}).status_code == 422


def test_two_students_called_bob_are_told_apart(client):
    code = start(client)["code"]
    names = [join(client, code, name)["name"] for name in ("Bob", "bob", "Bob", "Ada")]
    assert names == ["Bob", "bob 2", "Bob 3", "Ada"]


def test_the_join_help_says_what_a_code_is_made_of():
    """Codes mix letters and digits (8YR5M): the join page's help must not say "five letters"."""
    import json

    from app.i18n import FOLDER
    from engine.stores.sessions import CODE_ALPHABET, CODE_LENGTH
    assert any(c.isdigit() for c in CODE_ALPHABET) and CODE_LENGTH == 5
    for lang in ("en", "es"):
        help_text = json.loads((FOLDER / f"{lang}.json").read_text())["join.code_help"]
        assert ("digits" in help_text) if lang == "en" else ("cifras" in help_text), help_text


def test_every_student_hears_at_once_that_the_session_ended_and_what_was_kept(client):
    """Students follow the session over their own socket (their key first); ending it reaches them
    at once, and a student who connects later hears it too. The session says what was kept."""
    session = start(client)
    code = session["code"]
    ada, bo = join(client, code, "Ada"), join(client, code, "Bo")
    assert draw(client, code, ada).status_code == 201
    with client.websocket_connect(f"/ws/sessions/{code}/student") as wa, \
            client.websocket_connect(f"/ws/sessions/{code}/student") as wb:
        wa.send_json({"key": ada["student_key"]})
        wb.send_json({"key": bo["student_key"]})
        assert wa.receive_json() == {"type": "session", "ended": False, "kept": None}
        assert wb.receive_json()["ended"] is False
        for ws in (wa, wb):  # and what the class is shown now: nothing
            assert ws.receive_json() == {"type": "project", "shared": False}
        assert client.post(f"/api/sessions/{code}/end", json={"keep": True}, headers=teacher(session)).status_code == 200
        assert wa.receive_json() == {"type": "ended", "kept": True}
        assert wb.receive_json() == {"type": "ended", "kept": True}
    assert client.get(f"/api/sessions/{code}").json()["kept"] is True
    # ending again cannot change what the first end did
    client.post(f"/api/sessions/{code}/end", json={"keep": False}, headers=teacher(session))
    assert client.get(f"/api/sessions/{code}").json()["kept"] is True
    assert len(client.get(f"/api/sessions/{code}/gallery", headers=teacher(session)).json()["drawings"]) == 1
    with client.websocket_connect(f"/ws/sessions/{code}/student") as late:
        late.send_json({"key": bo["student_key"]})
        assert late.receive_json() == {"type": "ended", "kept": True}
    with client.websocket_connect(f"/ws/sessions/{code}/student") as stranger:
        stranger.send_json({"key": "not-a-key"})
        assert stranger.receive_json()["error"] == "not_a_student"
    deleted = start(client)
    client.post(f"/api/sessions/{deleted['code']}/end", json={"keep": False}, headers=teacher(deleted))
    assert client.get(f"/api/sessions/{deleted['code']}").json()["kept"] is False


def test_the_join_qr_code_holds_the_address_students_can_reach(client, settings, monkeypatch):
    """Not the address the teacher's page was opened on when only this machine can reach it
    (127.0.0.1): the same address logic as /api/server/addresses and the session page."""
    import app.routers.health as health
    import app.routers.sessions as sessions

    held = []
    monkeypatch.setattr(sessions, "qr_svg", lambda text: held.append(text) or "<svg/>")
    monkeypatch.setattr(health, "lan_addresses", lambda: ["192.168.1.10"])
    monkeypatch.setattr(health, "answers", lambda ip, port, timeout=0.3: True)
    code = start(client)["code"]
    local = client.get(f"http://127.0.0.1:8000/api/sessions/{code}/qr.svg")
    assert local.status_code == 200 and local.headers["content-type"].startswith("image/svg+xml")
    assert held[-1] == f"http://192.168.1.10:8000/join?code={code}"
    client.get(f"http://10.0.0.7:8000/api/sessions/{code}/qr.svg")  # a reachable address stays
    assert held[-1] == f"http://10.0.0.7:8000/join?code={code}"
    monkeypatch.setattr(settings, "public_url", "https://neuronlab.school.example/")
    client.get(f"http://127.0.0.1:8000/api/sessions/{code}/qr.svg")
    assert held[-1] == f"https://neuronlab.school.example/join?code={code}"


def test_the_class_drawings_download_as_pngs_and_a_csv_of_labels(client):
    """The teacher takes the class's labelled drawings away as a dataset: a PNG each (the 28x28 the
    network read) and labels.csv marking what the fine-tune learns from; names only when asked,
    written so that a spreadsheet never runs one as a formula; a student cannot download it."""
    import csv
    import io
    import zipfile

    import numpy as np

    session = start(client)
    code = session["code"]
    ann, evil = join(client, code, "Ann"), join(client, code, "=HYPERLINK(\"x\")")
    kept = []
    for s, label, chosen in ((ann, 7, True), (evil, 1, False), (ann, None, False)):
        d = draw(client, code, s, "7").json()
        if label is not None:
            client.put(f"/api/sessions/{code}/drawings/{d['id']}/label", json={"label": label},
                       headers={"X-Student-Key": s["student_key"]})
        if chosen:
            client.put(f"/api/sessions/{code}/drawings/{d['id']}/dataset", json={"on": True}, headers=teacher(session))
        kept.append(d)
    assert client.get(f"/api/sessions/{code}/dataset.zip", headers={"X-Teacher-Key": ann["student_key"]}).status_code == 403
    got = client.get(f"/api/sessions/{code}/dataset.zip", headers=teacher(session))
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(got.content))
    rows = list(csv.DictReader(io.StringIO(z.read("labels.csv").decode())))
    assert [(r["label"], r["in_dataset"]) for r in rows] == [("7", "1"), ("1", "0")]  # the unlabelled one is left out
    assert "student" not in rows[0]
    gallery = {d["id"]: d for d in client.get(f"/api/sessions/{code}/gallery", headers=teacher(session)).json()["drawings"]}
    first = np.array(Image.open(io.BytesIO(z.read(rows[0]["file"]))))
    shown = gallery[kept[0]["id"]]["image"]
    assert first.shape == (28, 28) and first.tobytes() == __import__("base64").b64decode(shown["base64"])
    named = client.get(f"/api/sessions/{code}/dataset.zip?names=true", headers=teacher(session))
    rows = list(csv.DictReader(io.StringIO(zipfile.ZipFile(io.BytesIO(named.content)).read("labels.csv").decode())))
    assert [r["student"] for r in rows] == ["Ann", "'=HYPERLINK(\"x\")"]
