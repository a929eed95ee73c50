"""One refusal, one answer: whatever part refuses (a store, the job manager, image decoding, the
model registry, an architecture check) raises an engine.refusal.Refusal, and it reaches HTTP as
{"error", "message", "fields"?} with its status, and a WebSocket as {"type": "error", ...} of the
same body."""
from __future__ import annotations

import pickle

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.errors import ApiError, install, refusal_message
from engine import imageio, models
from engine.refusal import Refusal
from engine.stores.db import StoreError
from engine.stores.store import ShippedModel, UnknownModel
from engine.training.jobs import JobError


def body_shape(body: dict) -> None:
    assert set(body) <= {"error", "message", "fields"} and {"error", "message"} <= set(body)
    assert isinstance(body["error"], str) and body["message"] and isinstance(body["message"], str)


def architecture_error() -> models.ArchitectureError:
    with pytest.raises(models.ArchitectureError) as info:
        models.measure([{"type": "teleport"}])
    return info.value


def image_error() -> imageio.ImageError:
    with pytest.raises(imageio.ImageError) as info:
        imageio.decode(b"", 1000)
    return info.value


def every_kind() -> list[Refusal]:
    return [StoreError(404, "project_not_found", "There is no project 'x'.", "project"),
            JobError(429, "One job at a time.", retry_after=30),
            image_error(), UnknownModel("There is no model 'x'. See GET /api/models."),
            ShippedModel("'digits' ships with NeuronLab and cannot be changed or deleted."),
            architecture_error(), ApiError(422, "invalid_request", "label must be below 10", {"label": "no such class"})]


def test_each_part_refuses_with_its_status_and_code():
    store, job, image, unknown, shipped, architecture, api = every_kind()
    assert (image.status, image.code, image.kind) == (400, "image_empty", "empty")
    assert (unknown.status, unknown.code, str(unknown)) == (404, "unknown_model", unknown.message)
    assert (shipped.status, shipped.code, str(shipped)) == (403, "shipped_model", shipped.message)
    assert (architecture.status, architecture.code, architecture.field) == (422, "invalid_request", "architecture")
    assert (job.status, job.code, job.retry_after) == (429, "too_many_jobs", 30)
    # the builtins they were before, for code that catches those
    assert isinstance(unknown, KeyError) and isinstance(shipped, PermissionError)
    assert isinstance(image, ValueError) and isinstance(architecture, ValueError)
    assert api.body() == {"error": "invalid_request", "message": "label must be below 10",
                          "fields": {"label": "no such class"}}
    assert store.body()["fields"] == {"project": store.message}


@pytest.mark.parametrize("make", [lambda: imageio.ImageError("The file is empty.", "empty"), architecture_error,
                                  lambda: UnknownModel("There is no model 'x'."), lambda: ShippedModel("no")])
def test_refusals_cross_processes_whole(make):
    """The frame reader and the training workers are other processes: a refusal pickles intact."""
    before = make()
    after = pickle.loads(pickle.dumps(before))
    assert type(after) is type(before) and after.body() == before.body() and after.status == before.status


def test_one_handler_answers_every_refusal_over_http_and_one_message_on_a_socket():
    kinds = every_kind()
    app = FastAPI()
    install(app)

    @app.get("/refuse/{i}")
    def refuse(i: int):
        raise kinds[i]

    with TestClient(app) as client:
        for i, refusal in enumerate(kinds):
            response = client.get(f"/refuse/{i}")
            assert response.status_code == refusal.status, (refusal, response.text)
            assert response.json() == refusal.body()
            body_shape(response.json())
            assert response.headers.get("Retry-After") == (str(refusal.retry_after) if refusal.retry_after else None)
            assert refusal_message(refusal) == {"type": "error", **refusal.body()}


def test_refusals_reach_the_app_s_http_routes(client):
    cases = [
        (client.get("/api/projects/nope"), 404, "project_not_found"),            # a store
        (client.get("/api/train/nope"), 404, "job_not_found"),                   # the job manager
        (client.post("/api/predict", files={"image": ("a.png", b"", "image/png")}), 400, "image_empty"),
        (client.get("/api/models/nope"), 404, "unknown_model"),                  # the registry
        (client.delete("/api/models/digits"), 403, "shipped_model"),             # a shipped model
        (client.post("/api/architectures/describe", json={"architecture": [{"type": "teleport"}]}),
         422, "invalid_request"),                                                # an architecture
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        body = response.json()
        body_shape(body)
        assert body["error"] == code
    unknown = cases[3][0].json()["message"]
    assert unknown.startswith("There is no model 'nope'. Known models: ") and unknown.endswith(" See GET /api/models.")
    assert "architecture" in cases[5][0].json()["fields"]


def test_refusals_reach_the_app_s_sockets(client):
    with client.websocket_connect("/ws/draw?model=nope") as ws:  # the registry
        reply = ws.receive_json()
    assert reply["type"] == "error" and reply["error"] == "unknown_model"
    assert reply["message"] == client.get("/api/models/nope").json()["message"]
    with client.websocket_connect("/ws/train/nope") as ws:       # the job manager
        reply = ws.receive_json()
    assert reply == {"type": "error", **client.get("/api/train/nope").json()}
    with client.websocket_connect("/ws/sessions/NOPE") as ws:    # a store
        ws.send_json({"key": "not-a-key"})
        reply = ws.receive_json()
    assert reply["type"] == "error" and reply["error"] and reply["message"]
