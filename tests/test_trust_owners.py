"""Trust: nobody on the school network can change, delete or steer another person's work; ids
cannot be guessed; a foreign page cannot use a visitor's browser against the server (issue 11)."""
from __future__ import annotations

import re
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.main import create_app
from app.owners import token_hash
from engine import models
from engine.stores import store
from tests.conftest import OWNER
from tests.helpers import draw_digit, encode, object_photo

ADMIN = "admin-key-for-the-tests-0123456789"
ALICE = {"X-Owner-Token": OWNER}                              # the default client's own token
BOB = {"X-Owner-Token": "b0b" + "0" * 29}
MALLORY = {"X-Owner-Token": "ma11" + "f" * 28}
AS_ADMIN = {"X-Admin-Key": ADMIN}
HEX128 = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def client(settings, monkeypatch):
    monkeypatch.setenv("PYTHONASYNCIODEBUG", "1")
    settings.admin_key = ADMIN
    with TestClient(create_app(settings), headers=ALICE) as c:
        yield c


def saved_model(client, model_id: str, owner_headers: dict | None, name="Alice's digits") -> str:
    """A small trained-here model owned by the token in `owner_headers` (None: no owner)."""
    owner = token_hash(owner_headers["X-Owner-Token"]) if owner_headers else None
    card = store.ModelCard(id=model_id, name=name, task="digits", dataset="mnist", labels=list("0123456789"),
                           architecture="mlp_16", preprocess="digit", owner=owner)
    registry = client.app.state.services.registry
    store.save(registry.user_folder, card, models.build("mlp_16"))
    registry.add(model_id)
    return model_id


def listed(client, headers=None) -> set[str]:
    return {m["id"] for m in client.get("/api/models", headers=headers or {}).json()["models"]}


def test_another_owners_model_cannot_be_renamed_or_deleted_and_is_not_listed(client):
    mine = saved_model(client, "alices-net", ALICE)
    assert mine in listed(client) and mine not in listed(client, BOB) and mine in listed(client, AS_ADMIN)
    assert {"digits", "fashion"} <= listed(client, BOB)  # shipped models are everybody's
    anonymous = TestClient(client.app)  # no token at all
    assert anonymous.patch(f"/api/models/{mine}", json={"name": "pwned"}).status_code == 403
    for headers in (BOB, {"X-Owner-Token": ""}):
        renamed = client.patch(f"/api/models/{mine}", json={"name": "pwned"}, headers=headers)
        assert renamed.status_code in (403, 422) and client.get(f"/api/models/{mine}").json()["name"] == "Alice's digits"
    assert client.patch(f"/api/models/{mine}", json={"name": "x"}, headers=BOB).json()["error"] == "not_owner"
    assert client.delete(f"/api/models/{mine}", headers=BOB).status_code == 403
    assert "owner" not in client.get(f"/api/models/{mine}").json()  # the owner's hash is never shown
    assert "Alice&#39;s digits" not in client.get("/").text and "Alice's digits" not in client.get("/").text
    assert client.patch(f"/api/models/{mine}", json={"name": "Ours"}).json()["name"] == "Ours"
    assert client.delete("/api/models/digits", headers=AS_ADMIN).status_code == 403  # shipped: read-only
    assert client.delete(f"/api/models/{mine}", headers={**BOB, **AS_ADMIN}).status_code == 204


def test_a_malformed_owner_token_is_a_clear_422(client):
    response = client.get("/api/projects", headers={"X-Owner-Token": "short"})
    assert response.status_code == 422 and "X-Owner-Token" in response.json()["fields"]


def test_another_owners_project_cannot_be_changed_and_is_not_listed(client):
    project = client.post("/api/projects", json={"name": "Santa", "classes": ["Santa", "not Santa"]}).json()
    pid, cls = project["id"], project["classes"][0]["id"]
    assert HEX128.fullmatch(pid)
    photo = [("images", ("a.jpg", encode(object_photo(0, np.random.default_rng(1)), "JPEG"), "image/jpeg"))]
    sample = client.post(f"/api/projects/{pid}/samples", data={"class_id": cls}, files=photo).json()["samples"][0]
    attacks = [("PATCH", f"/api/projects/{pid}", {"json": {"name": "x"}}),
               ("POST", f"/api/projects/{pid}/classes", {"json": {"name": "x"}}),
               ("PATCH", f"/api/projects/{pid}/classes/{cls}", {"json": {"name": "x"}}),
               ("DELETE", f"/api/projects/{pid}/classes/{cls}", {}),
               ("POST", f"/api/projects/{pid}/samples", {"data": {"class_id": cls}, "files": photo}),
               ("DELETE", f"/api/projects/{pid}/samples/{sample['id']}", {}),
               ("POST", f"/api/projects/{pid}/train", {"json": {}}),
               ("DELETE", f"/api/projects/{pid}", {})]
    for method, path, kwargs in attacks:
        response = client.request(method, path, headers=BOB, **kwargs)
        assert response.status_code == 403 and response.json()["error"] == "not_owner", (method, path, response.text)
    kept = client.get(f"/api/projects/{pid}").json()
    assert kept["name"] == "Santa" and [c["count"] for c in kept["classes"]] == [1, 0]
    assert [p["id"] for p in client.get("/api/projects").json()["projects"]] == [pid]
    assert client.get("/api/projects", headers=BOB).json()["projects"] == []
    assert [p["id"] for p in client.get("/api/projects", headers=AS_ADMIN).json()["projects"]] == [pid]
    assert client.patch(f"/api/projects/{pid}", json={"name": "Renamed by admin"}, headers=AS_ADMIN).status_code == 200
    assert client.delete(f"/api/projects/{pid}").status_code == 204


def test_a_client_with_no_token_gets_one_made_and_it_works(client):
    made = TestClient(client.app).post("/api/projects", json={"name": "API user"})  # sends no token
    token = made.json()["owner_token"]
    assert made.status_code == 201 and HEX128.fullmatch(token)
    pid = made.json()["id"]
    assert client.patch(f"/api/projects/{pid}", json={"name": "x"}).status_code == 403  # not Alice's
    assert client.patch(f"/api/projects/{pid}", json={"name": "Mine"}, headers={"X-Owner-Token": token}).status_code == 200


def test_another_owners_job_cannot_be_paused_stopped_or_re_rated(client):
    job = client.post("/api/train", json={"architecture": "mlp_16", "train_size": 640, "val_size": 500,
                                           "start_paused": True}).json()
    assert HEX128.fullmatch(job["id"])
    for method, path, body in [("POST", f"/api/train/{job['id']}/stop", None),
                               ("POST", f"/api/train/{job['id']}/step", None),
                               ("POST", f"/api/train/{job['id']}/resume", None),
                               ("PATCH", f"/api/train/{job['id']}", {"learning_rate": 5})]:
        response = client.request(method, path, json=body, headers=MALLORY)
        assert response.status_code == 403 and response.json()["error"] == "not_owner", path
    assert client.get(f"/api/train/{job['id']}", headers=MALLORY).status_code == 200  # watching is fine
    assert client.post(f"/api/train/{job['id']}/stop", headers=AS_ADMIN).status_code == 200


def test_the_admin_key_acts_as_any_teacher_and_a_wrong_one_as_nobody(client):
    session = client.post("/api/sessions", json={}).json()
    code = session["code"]
    assert len(session["teacher_key"]) >= 32  # 192 random bits
    assert client.patch(f"/api/sessions/{code}", json={"reveal": False}, headers={"X-Admin-Key": "wrong" * 5}).status_code == 403
    assert client.patch(f"/api/sessions/{code}", json={"reveal": False}, headers=AS_ADMIN).json()["reveal"] is False
    assert client.post(f"/api/sessions/{code}/end", json={}, headers=AS_ADMIN).status_code == 200


def test_a_model_a_live_session_reads_with_cannot_be_deleted(client):
    model_id = saved_model(client, "class-model", ALICE)
    session = client.post("/api/sessions", json={"model": model_id}).json()
    refused = client.delete(f"/api/models/{model_id}")
    assert refused.status_code == 409 and refused.json()["error"] == "model_in_use" and session["code"] in refused.json()["message"]
    client.post(f"/api/sessions/{session['code']}/end", json={}, headers={"X-Teacher-Key": session["teacher_key"]})
    assert client.delete(f"/api/models/{model_id}").status_code == 204


def test_a_session_whose_model_vanished_answers_409_not_500(client, settings):
    model_id = saved_model(client, "gone-soon", ALICE)
    session = client.post("/api/sessions", json={"model": model_id}).json()
    code, key = session["code"], session["teacher_key"]
    student = client.post(f"/api/sessions/{code}/students", json={"name": "Ada"}).json()
    for suffix in (".json", ".safetensors"):  # removed behind the server's back (by hand, a disk fault)
        (settings.data_dir / "models" / f"{model_id}{suffix}").unlink()
    with TestClient(create_app(settings), headers=ALICE) as again:
        info = again.get(f"/api/sessions/{code}")
        assert info.status_code == 409 and info.json()["error"] == "model_missing"
        drawing = again.post(f"/api/sessions/{code}/drawings", headers={"X-Student-Key": student["student_key"]},
                             files={"image": ("d.png", encode(draw_digit("3")), "image/png")})
        assert drawing.status_code == 409 and "no longer on the server" in drawing.json()["message"]
        assert again.get(f"/api/sessions/{code}/gallery", headers={"X-Teacher-Key": key}).status_code == 409
        with again.websocket_connect(f"/ws/sessions/{code}") as ws:
            ws.send_json({"key": key})
            assert ws.receive_json()["error"] == "model_missing"


def test_the_exported_script_cannot_be_made_to_run_code_by_a_name(client, tmp_path):
    marker = tmp_path / "pwned"
    evil = f'"""\nopen({str(marker)!r}, "w")\n"""'
    model_id = saved_model(client, "evil-name", ALICE, name=evil)
    card = client.app.state.services.registry.card(model_id)
    card.labels = ["a'''\"\"\"\\", *card.labels[1:]]
    card.dataset = 'mnist"""; import os #'
    script = client.get(f"/api/models/{model_id}/export").text
    namespace = {"__name__": "exported"}
    exec(compile(script, "export.py", "exec"), namespace)  # what whoever runs the export does
    assert not marker.exists()
    assert namespace["NAME"] == evil and namespace["LABELS"][0] == card.labels[0]
    assert namespace["TRAINED_ON"] == card.dataset


@pytest.mark.parametrize("path", ["/ws/draw", "/ws/sessions/ABCDE", "/ws/train/" + "0" * 32])
def test_websockets_from_a_foreign_origin_are_refused(client, path):
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect(path, headers={"Origin": "http://evil.example"}) as ws:
            ws.receive_json()
    assert refused.value.code == 1008
    with client.websocket_connect("/ws/draw", headers={"Origin": "http://testserver"}) as ws:
        assert ws.receive_json()["type"] == "ready"  # the server's own pages still connect


def test_changes_from_a_foreign_origin_are_refused_and_an_allowed_origin_passes(settings):
    settings.allowed_origins = ["http://projector.school:8000"]
    with TestClient(create_app(settings), headers=ALICE) as client:
        foreign = client.post("/api/projects", json={"name": "x"}, headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403 and foreign.json()["error"] == "foreign_origin"
        assert client.get("/api/models", headers={"Origin": "http://evil.example"}).status_code == 200  # reads
        allowed = client.post("/api/projects", json={"name": "x"}, headers={"Origin": "http://projector.school:8000"})
        assert allowed.status_code == 201
        with client.websocket_connect("/ws/draw", headers={"Origin": "http://projector.school:8000"}) as ws:
            assert ws.receive_json()["type"] == "ready"


def test_the_gallery_key_goes_in_the_first_message_not_the_address(client):
    session = client.post("/api/sessions", json={}).json()
    code, key = session["code"], session["teacher_key"]
    with client.websocket_connect(f"/ws/sessions/{code}?key={key}") as ws:  # the old way: refused
        ws.send_json({"hello": True})
        assert ws.receive_json()["error"] == "not_teacher"
    with client.websocket_connect(f"/ws/sessions/{code}") as ws:
        ws.send_json({"key": key})
        assert ws.receive_json()["type"] == "snapshot"


def test_gallery_events_from_threadpool_endpoints_reach_the_socket_under_asyncio_debug(client):
    """join, label, reveal, clear and end run in worker threads; asyncio's debug mode (on for the
    in-process tests) refuses any non-thread-safe call into the loop from them."""
    session = client.post("/api/sessions", json={}).json()
    code, teacher = session["code"], {"X-Teacher-Key": session["teacher_key"]}
    with client.websocket_connect(f"/ws/sessions/{code}") as ws:
        ws.send_json({"key": session["teacher_key"]})
        assert ws.receive_json()["type"] == "snapshot"
        student = client.post(f"/api/sessions/{code}/students", json={"name": "Ada"})
        assert student.status_code == 201
        assert ws.receive_json() == {"type": "students", "count": 1}
        drawing = client.post(f"/api/sessions/{code}/drawings", headers={"X-Student-Key": student.json()["student_key"]},
                              files={"image": ("d.png", encode(draw_digit("7")), "image/png")}).json()
        assert ws.receive_json()["drawing"]["id"] == drawing["id"]
        client.put(f"/api/sessions/{code}/drawings/{drawing['id']}/label", json={"label": 7},
                   headers={"X-Student-Key": student.json()["student_key"]})
        assert ws.receive_json()["drawing"]["label"] == "7"
        assert client.patch(f"/api/sessions/{code}", json={"reveal": False}, headers=teacher).status_code == 200
        assert ws.receive_json() == {"type": "reveal", "reveal": False}
        assert client.post(f"/api/sessions/{code}/clear", headers=teacher).status_code == 200
        assert ws.receive_json()["type"] == "snapshot"
        assert client.post(f"/api/sessions/{code}/end", json={}, headers=teacher).status_code == 200
        assert ws.receive_json()["type"] == "ended"


def test_a_second_gallery_and_a_departed_one_leave_no_subscriber_behind(client):
    session = client.post("/api/sessions", json={}).json()
    code = session["code"]
    for _ in range(3):
        with client.websocket_connect(f"/ws/sessions/{code}") as ws:
            ws.send_json({"key": session["teacher_key"]})
            ws.receive_json()
    deadline = time.time() + 5
    while client.app.state.services.classroom.galleries.subscribers and time.time() < deadline:
        time.sleep(0.05)
    assert client.app.state.services.classroom.galleries.subscribers == {}
