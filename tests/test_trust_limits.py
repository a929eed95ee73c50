"""Trust: one anonymous client cannot exhaust the server, and odd input gets a 4xx naming the
field, never a 500 (issue 11)."""
from __future__ import annotations

import multiprocessing
import resource
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from engine import imageio, models
from engine.stores import store
from tests.conftest import OWNER
from tests.helpers import draw_digit, encode, object_photo

SMALL_JOB = {"architecture": "mlp_16", "train_size": 640, "val_size": 500, "batch_size": 64}


def token(name: str) -> dict:
    return {"X-Owner-Token": (name + "-" * 22)[:max(22, len(name))]}


def status(client, job_id: str) -> dict:
    return client.get(f"/api/train/{job_id}").json()


def wait_for(client, job_id: str, statuses: set, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = status(client, job_id)
        if body["status"] in statuses:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{job_id}: {body['status']}, not {statuses}")


@pytest.fixture
def limited(settings, monkeypatch):
    monkeypatch.setenv("PYTHONASYNCIODEBUG", "1")

    def make(**overrides):
        for key, value in overrides.items():
            setattr(settings, key, value)
        return TestClient(create_app(settings), headers={"X-Owner-Token": OWNER})
    return make


def test_a_full_queue_answers_503_with_retry_after(limited):
    with limited(max_queue=1, jobs_per_address=10) as client:
        running = client.post("/api/train", json={**SMALL_JOB, "start_paused": True}, headers=token("a"))
        queued = client.post("/api/train", json=SMALL_JOB, headers=token("b"))
        assert (running.status_code, queued.status_code) == (201, 201) and queued.json()["position"] == 1
        full = client.post("/api/train", json=SMALL_JOB, headers=token("c"))
        assert full.status_code == 503 and full.json()["error"] == "queue_full"
        assert int(full.headers["Retry-After"]) > 0
        client.post(f"/api/train/{running.json()['id']}/stop", headers=token("a"))
        client.post(f"/api/train/{queued.json()['id']}/stop", headers=token("b"))


def test_new_tokens_do_not_dodge_the_per_address_cap(limited):
    with limited(jobs_per_address=2, max_queue=10) as client:
        ids = [client.post("/api/train", json={**SMALL_JOB, "start_paused": True}, headers=token(n)).json()["id"]
               for n in ("one", "two")]
        third = client.post("/api/train", json=SMALL_JOB, headers=token("three"))
        assert third.status_code == 429 and third.json()["error"] == "too_many_jobs"
        assert "Retry-After" in third.headers
        again = client.post("/api/train", json=SMALL_JOB, headers=token("one"))
        assert again.status_code == 409  # and one job per owner token
        for job_id, name in zip(ids, ("one", "two")):
            client.post(f"/api/train/{job_id}/stop", headers=token(name))


def test_a_huge_architecture_is_measured_without_being_built(client):
    huge = [{"type": "dense", "units": 4096}] * 40
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    probe = threading.Event()
    health = []

    def ping():  # the server keeps answering while it measures
        while not probe.is_set():
            t = time.perf_counter()
            client.get("/healthz")
            health.append(time.perf_counter() - t)
    pinger = threading.Thread(target=ping)
    pinger.start()
    t = time.perf_counter()
    described = client.post("/api/architectures/describe", json={"architecture": huge})
    took = time.perf_counter() - t
    probe.set()
    pinger.join()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    body = described.json()
    expected = 784 * 4096 + 4096 + 39 * (4096 * 4096 + 4096) + 4096 * 10 + 10
    assert described.status_code == 200 and body["fits"] is False and body["parameters"] == expected
    assert len(body["layers"]) == 42  # every row still there for the editor to remove layers from
    assert took < 2 and grown_mb < 200 and max(health, default=0) < 2, (took, grown_mb, max(health, default=0))
    refused = client.post("/api/train", json={"architecture": huge})
    assert refused.status_code == 422 and "too large" in refused.json()["message"]


def test_a_paused_job_gives_its_slot_to_the_queue_and_resumes_in_turn(limited):
    with limited(paused_release=0.5, jobs_per_address=10) as client:
        paused = client.post("/api/train", json={**SMALL_JOB, "start_paused": True}, headers=token("p")).json()
        wait_for(client, paused["id"], {"paused"})
        waiting = client.post("/api/train", json={**SMALL_JOB, "start_paused": True}, headers=token("w")).json()
        assert waiting["status"] == "queued"
        wait_for(client, waiting["id"], {"paused"}, timeout=30)  # it got the slot
        resumed = client.post(f"/api/train/{paused['id']}/resume", headers=token("p")).json()
        assert resumed["status"] == "queued" and resumed["position"] == 1  # waits its turn, paused
        client.post(f"/api/train/{waiting['id']}/resume", headers=token("w"))
        assert wait_for(client, waiting["id"], {"done"})["model_ids"]
        done = wait_for(client, paused["id"], {"done"})  # then it carried on where it was
        assert done["step"] == done["total_steps"] == 10


def test_finished_jobs_are_forgotten_after_the_grace_period_and_leave_no_process(limited):
    with limited(job_grace=0.5) as client:
        job = client.post("/api/train", json=SMALL_JOB).json()
        done = wait_for(client, job["id"], {"done"})
        deadline = time.time() + 10
        while job["id"] in client.app.state.services.training.jobs.jobs and time.time() < deadline:
            time.sleep(0.1)
        assert job["id"] not in client.app.state.services.training.jobs.jobs  # out of memory...
        kept = status(client, job["id"])
        assert kept["status"] == "done" and kept["model_ids"] == done["model_ids"]  # ...its record on disk
        assert not [p for p in multiprocessing.active_children() if p.name.startswith("train-")]


def test_trained_models_are_loaded_only_while_used_at_most_model_cache(limited, settings):
    folder = settings.data_dir / "models"
    for i in range(4):
        card = store.ModelCard(id=f"m{i}", name=f"m{i}", task="digits", dataset="mnist", labels=list("0123456789"),
                               architecture="mlp_16", preprocess="digit")
        store.save(folder, card, models.build("mlp_16"))
    with limited(model_cache=2) as client:
        registry = client.app.state.services.registry
        assert registry.loaded() == []  # nothing loaded at start
        image = encode(draw_digit("3"))
        for i in range(4):
            r = client.post("/api/predict", data={"model": f"m{i}"}, files={"image": ("d.png", image, "image/png")})
            assert r.status_code == 200
        assert registry.loaded() == ["m2", "m3"]


def test_a_huge_png_is_refused_before_decoding_and_a_huge_jpeg_is_decoded_reduced(client):
    big = Image.new("RGBA", (6300, 6300))
    data = encode(big, "PNG", compress_level=1)
    del big
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    refused = client.post("/api/predict", files={"image": ("big.png", data, "image/png")})
    assert refused.status_code == 413 and refused.json()["error"] == "image_too_large"
    assert "memory" in refused.json()["message"]
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 40  # MB: never decoded
    photo = object_photo(0, np.random.default_rng(0), size=(6000, 4000))
    jpeg = encode(photo, "JPEG", quality=70)
    decoded = imageio.decode(jpeg, 40_000_000)
    assert max(decoded.size) <= 3000 and decoded.size[0] / decoded.size[1] == pytest.approx(1.5, rel=0.01)


BIG = 99999999999999999999  # past SQLite's 64-bit integers


def test_odd_ids_and_values_get_a_4xx_naming_the_field(client):
    qr = client.get("/api/qr.svg", params={"text": "€" * 1000})
    assert qr.status_code == 422 and "text" in qr.json()["fields"]
    seed = client.get("/api/samples", params={"seed": -1})
    assert seed.status_code == 422 and "seed" in seed.json()["fields"]
    project = client.post("/api/projects", json={"name": "p", "classes": ["a", "b"]}).json()
    pid = project["id"]
    for method, path in [("GET", f"/api/projects/{pid}/samples/{BIG}.jpg"), ("DELETE", f"/api/projects/{pid}/samples/{BIG}"),
                         ("PATCH", f"/api/projects/{pid}/classes/{BIG}"), ("DELETE", f"/api/projects/{pid}/classes/{BIG}")]:
        response = client.request(method, path, json={"name": "x"})
        assert response.status_code == 422 and response.json()["fields"], (path, response.text)
    photo = [("images", ("a.jpg", encode(object_photo(0, np.random.default_rng(1)), "JPEG"), "image/jpeg"))]
    form = client.post(f"/api/projects/{pid}/samples", data={"class_id": str(BIG)}, files=photo)
    assert form.status_code == 422 and "class_id" in form.json()["fields"]
    for odd in (f"/api/projects/{'9' * 200}", "/api/projects/..%2F..%2Fetc", f"/api/train/{'f' * 5000}",
                "/api/models/" + "x" * 300, f"/api/sessions/{'Z' * 100}"):
        response = client.get(odd)
        assert response.status_code in (404, 422) and len(response.text) < 2000, odd

    session = client.post("/api/sessions", json={}).json()
    code, teacher = session["code"], {"X-Teacher-Key": session["teacher_key"]}
    student = client.post(f"/api/sessions/{code}/students", json={"name": "Ada"}).json()
    as_student = {"X-Student-Key": student["student_key"]}
    label = client.put(f"/api/sessions/{code}/drawings/{BIG}/label", json={"label": 1}, headers=as_student)
    assert label.status_code == 422 and "drawing_id" in label.json()["fields"]
    dataset = client.put(f"/api/sessions/{code}/drawings/{BIG}/dataset", json={"on": True}, headers=teacher)
    assert dataset.status_code == 422
    drawing = client.post(f"/api/sessions/{code}/drawings", data={"drawing_id": str(BIG)}, headers=as_student,
                          files={"image": ("d.png", encode(draw_digit("3")), "image/png")})
    assert drawing.status_code == 422 and "drawing_id" in drawing.json()["fields"]


def test_a_learning_rate_for_a_run_the_job_does_not_have_is_a_422_and_the_job_lives_on(client):
    job = client.post("/api/train", json={**SMALL_JOB, "start_paused": True}).json()
    wait_for(client, job["id"], {"paused"})
    wrong = client.patch(f"/api/train/{job['id']}", json={"learning_rate": 0.1, "run": 3})
    assert wrong.status_code == 422 and "run" in wrong.json()["fields"]
    assert client.patch(f"/api/train/{job['id']}", json={"learning_rate": 0.1, "run": 0}).status_code == 200
    client.post(f"/api/train/{job['id']}/resume")
    assert wait_for(client, job["id"], {"done", "failed"})["status"] == "done"
