"""The live training lab over HTTP and WebSocket, with real worker processes."""
import time

import numpy as np
import pytest

from tests.helpers import encode, on_canvas

SMALL = {"train_size": 640, "batch_size": 64, "epochs": 1, "val_size": 500}


def wait_for(client, job_id, statuses, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = client.get(f"/api/train/{job_id}").json()
        if body["status"] in statuses:
            return body
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached {statuses}: {body}")


def as_owner(name: str) -> dict:
    """The headers of another browser, whose owner token is made from `name`."""
    return {"X-Owner-Token": (name + "-" * 22)[:max(22, len(name))]}


def start(client, client_id=None, **fields):
    response = client.post("/api/train", json={**SMALL, **fields}, headers=as_owner(client_id) if client_id else {})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize("fields, bad", [
    ({"learning_rate": -1}, "learning_rate"),
    ({"learning_rate": 1e308}, "learning_rate"),
    ({"learning_rate": "abc"}, "learning_rate"),
    ({"epochs": 0}, "epochs"),
    ({"epochs": 10**9}, "epochs"),
    ({"batch_size": 0, "seed": -4}, "batch_size"),
    ({"dataset": "cifar"}, "dataset"),
    ({"architecture": "resnet"}, "architecture"),
    ({"architecture": [{"type": "dense", "units": 10}, {"type": "conv", "filters": 4, "kernel": 3}]}, "architecture"),
    ({"architecture": [{"type": "conv", "filters": 8, "kernel": 40}]}, "architecture"),
    ({"learning_rates": [0.1, 0.2, 0.3, 0.4, 0.5]}, "learning_rates"),
])
def test_invalid_values_name_the_field(client, fields, bad):
    response = client.post("/api/train", json={**SMALL, **fields})
    assert response.status_code == 422, response.text
    assert bad in response.json()["fields"], response.json()


def test_nan_learning_rate_is_refused(client):
    response = client.post("/api/train", content='{"learning_rate": NaN}', headers={"content-type": "application/json"})
    assert response.status_code == 422 and "learning_rate" in response.json()["fields"]


def test_an_architecture_too_large_for_the_server(client):
    huge = [{"type": "dense", "units": 4096}, {"type": "dense", "units": 4096}]
    body = client.post("/api/train", json={**SMALL, "architecture": huge}).json()
    assert body["fields"] == {"architecture": "too large for this server"} and "limit" in body["message"]


def test_describe_counts_like_the_slides(client):
    body = client.post("/api/architectures/describe", json={"architecture": "mlp_16"}).json()
    dense = [row for row in body["layers"] if row["type"] == "Linear"]
    assert [(r["weights"], r["biases"]) for r in dense] == [(784 * 16, 16), (16 * 10, 10)]
    assert body["parameters"] == 784 * 16 + 16 + 16 * 10 + 10
    assert {p["name"] for p in client.get("/api/architectures").json()["presets"]} >= {
        "mnist_recipe", "mlp_16", "mlp_512_128", "lenet"}


def test_pause_step_learning_rate_resume_and_use_the_model(client):
    job = start(client, start_paused=True, name="Class model", architecture="mlp_16", learning_rate=0.1)
    assert wait_for(client, job["id"], {"paused"})["step"] == 0
    client.post(f"/api/train/{job['id']}/step")
    body = wait_for(client, job["id"], {"paused"})
    deadline = time.time() + 30
    while body["step"] != 1 and time.time() < deadline:
        body = client.get(f"/api/train/{job['id']}").json()
    assert body["step"] == 1 and body["total_steps"] == 10
    assert client.patch(f"/api/train/{job['id']}", json={"learning_rate": 0.05}).status_code == 200
    assert client.patch(f"/api/train/{job['id']}", json={"learning_rate": -3}).status_code == 422
    client.post(f"/api/train/{job['id']}/resume")
    done = wait_for(client, job["id"], {"done"})
    assert done["step"] == 10 and done["test_accuracy"][0] > 0.2  # chance is 0.1
    model_id = done["model_ids"][0]
    assert model_id.startswith("class-model-")
    assert done["runs"][0]["learning_rate"] == pytest.approx(0.05)

    listed = {m["id"]: m for m in client.get("/api/models").json()["models"]}
    assert listed[model_id]["trained_here"] and listed[model_id]["test_accuracy"] == done["test_accuracy"][0]
    results = client.get(f"/api/train/{job['id']}/results").json()["results"][0]
    assert np.array(results["confusion"]).sum() == 10000
    assert all(len(cell["images"]) <= 16 for cell in results["mistakes"].values())

    digit = encode(on_canvas(np.zeros((28, 28), np.uint8) + np.eye(28, dtype=np.uint8) * 255))
    predicted = client.post("/api/predict", files={"image": ("d.png", digit)}, data={"model": model_id})
    assert predicted.status_code == 200 and predicted.json()["model"] == model_id

    script = client.get(f"/api/models/{model_id}/export").text
    weights = client.get(f"/api/models/{model_id}/weights").content
    namespace = {}
    exec(compile(script, "export.py", "exec"), namespace)
    import io

    import torch
    from safetensors.torch import load as load_bytes
    namespace["model"].load_state_dict(load_bytes(weights))
    x = torch.rand(2, 1, 28, 28)
    stored = client.app.state.services.registry.get(model_id).module
    assert torch.allclose(namespace["model"].eval()(x), stored(x))
    assert io  # (used for clarity of the import above)

    assert client.patch(f"/api/models/{model_id}", json={"name": "Our digits"}).json()["name"] == "Our digits"
    assert client.patch("/api/models/digits", json={"name": "x"}).status_code == 403
    assert client.delete("/api/models/digits").status_code == 403
    assert client.delete(f"/api/models/{model_id}").status_code == 204
    assert client.get(f"/api/models/{model_id}").status_code == 404


def test_one_job_per_client_and_a_queue_with_positions(client):
    first = start(client, "teacher", train_size=3200, epochs=2)
    again = client.post("/api/train", json=SMALL, headers=as_owner("teacher"))
    assert again.status_code == 409 and again.json()["error"] == "job_conflict"
    second = start(client, "student")
    assert second["status"] == "queued" and second["position"] == 1
    assert client.post(f"/api/train/{second['id']}/stop").status_code == 403  # not this browser's job
    assert client.post(f"/api/train/{second['id']}/stop", headers=as_owner("student")).json()["status"] == "stopped"
    client.post(f"/api/train/{first['id']}/stop", headers=as_owner("teacher"))
    stopped = wait_for(client, first["id"], {"stopped"})
    assert stopped["model_ids"]  # the model so far is saved
    assert client.post(f"/api/train/{first['id']}/pause", headers=as_owner("teacher")).status_code == 409
    assert client.get("/api/train/nope").status_code == 404


def test_websocket_streams_and_resumes(client):
    job = start(client, "ws-client", architecture="mlp_16", learning_rate=0.1)
    seen = []
    with client.websocket_connect(f"/ws/train/{job['id']}") as ws:
        while len(seen) < 3:
            seen.append(ws.receive_json())
    assert [e["seq"] for e in seen] == [1, 2, 3]
    rest = []
    with client.websocket_connect(f"/ws/train/{job['id']}?since=3") as ws:
        while not rest or rest[-1]["type"] != "done":
            rest.append(ws.receive_json())
    assert rest[0]["seq"] == 4 and rest[-1]["status"] == "done"
    kinds = {e["type"] for e in seen + rest}
    assert {"status", "progress", "epoch", "done"} <= kinds
    with client.websocket_connect("/ws/train/nope") as ws:
        assert ws.receive_json()["error"] == "job_not_found"


def test_a_name_the_server_made_carries_its_parts_until_a_person_names_the_model(client):
    """Pages say a made name in their reader's language from its parts; a person's name as given."""
    job = start(client, architecture="mlp_16")
    model_id = wait_for(client, job["id"], {"done"})["model_ids"][0]
    listed = {m["id"]: m for m in client.get("/api/models").json()["models"]}
    made = listed[model_id]["made_name"]
    assert made["network"] == "MLP 784-16-10" and made["data"] == "MNIST" and 0 < made["accuracy"] <= 1
    assert listed[model_id]["name"].startswith("MLP 784-16-10 · MNIST · ")
    client.patch(f"/api/models/{model_id}", json={"name": "Our digits"})
    listed = {m["id"]: m for m in client.get("/api/models").json()["models"]}
    assert listed[model_id]["name"] == "Our digits" and listed[model_id]["made_name"] is None


def test_a_huge_learning_rate_ends_as_diverged(client):
    job = start(client, "bold", architecture="mlp_512_128", optimizer="sgd", learning_rate=10)
    done = wait_for(client, job["id"], {"diverged", "done"})
    assert done["status"] == "diverged", done


def test_a_trained_model_survives_a_server_restart(settings):
    from fastapi.testclient import TestClient

    from app.main import create_app
    with TestClient(create_app(settings)) as first:
        job = start(first, "restart", architecture="mlp_16", name="Kept")
        model_id = wait_for(first, job["id"], {"done"})["model_ids"][0]
    with TestClient(create_app(settings)) as second:
        listed = {m["id"] for m in second.get("/api/models", headers=as_owner("restart")).json()["models"]}
        assert model_id in listed
        assert model_id not in {m["id"] for m in second.get("/api/models").json()["models"]}  # not another's
        assert second.get(f"/api/models/{model_id}").json()["name"] == "Kept"


# --- the layer table of a large network answers at once, on a fresh server too (issue 23, item 11) ---

WIDE = [{"type": "conv", "filters": 64, "kernel": 3, "padding": "same", "activation": "relu"},
        {"type": "pool", "size": 2}, {"type": "conv", "filters": 64, "kernel": 4, "padding": "same"},
        {"type": "batchnorm"}, {"type": "pool", "size": 3, "kind": "avg"},
        {"type": "conv", "filters": 32, "kernel": 2, "activation": "tanh"}, {"type": "dropout", "rate": 0.2},
        *[{"type": "dense", "units": 4096, "activation": "leaky_relu"}] * 6, {"type": "batchnorm"}]


def test_describing_a_large_network_needs_no_forward_pass(tmp_path):
    """Shapes are counted, not computed: a forward pass on the meta device makes torch import its
    compiler's decompositions, seconds on the first request of a fresh server (0.2 s later)."""
    import subprocess
    import sys

    from app.settings import ROOT
    probe = ("import sys, json; import torch; from engine import models; "
             f"rows, params, macs = models.measure({WIDE!r}); "
             "print(json.dumps('torch._dynamo' in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "false"  # torch's compiler, imported by a meta forward


@pytest.mark.parametrize("architecture, shape", [
    *((name, (1, 28, 28)) for name in ("mnist_recipe", "mlp_16", "lenet", "digit_cnn", "compact_cnn")),
    (WIDE, (1, 28, 28)), (WIDE[:6], (3, 32, 32)),
])
def test_counted_shapes_are_what_the_network_outputs(architecture, shape):
    import torch

    from engine import models
    rows, params, macs = models.measure(architecture, 10, shape)
    net = models.build(architecture, 10, shape).eval()
    x, outputs = torch.zeros(2, *shape), []
    with torch.no_grad():
        for m in net:
            x = m(x)
            outputs.append(list(x.shape[1:]))
    assert [r["output"] for r in rows] == outputs
    assert params == models.count_parameters(net)


def test_a_layer_that_does_not_fit_is_still_refused_by_name(client):
    too_small = [{"type": "pool", "size": 2}] * 4 + [{"type": "conv", "filters": 4, "kernel": 2}]
    response = client.post("/api/architectures/describe", json={"architecture": too_small})
    assert response.status_code == 422 and "layer 5" in response.text, response.text


# --- overfitting (lessons 003, 004) and k-fold (000) through the API ------------------------------

@pytest.mark.parametrize("fields, bad", [
    ({"weight_decay": -0.1}, "weight_decay"),
    ({"weight_decay": 5}, "weight_decay"),
    ({"dropout": 1}, "dropout"),
    ({"patience": 0}, "patience"),
    ({"folds": 1}, "folds"),
    ({"folds": 11}, "folds"),
    ({"compare": True}, "compare"),  # nothing to compare
    ({"compare": True, "weight_decay": 0.001, "learning_rates": [0.1, 0.2]}, "compare"),
    ({"compare": True, "keep_best": True, "folds": 5}, "compare"),
    ({"folds": 5, "learning_rates": [0.1, 0.2]}, "folds"),
    ({"train_size": 60000}, "train_size"),  # all 60,000 only in folds
    ({"folds": 5, "train_size": 200}, "train_size"),
])
def test_overfitting_and_fold_values_are_checked_by_name(client, fields, bad):
    response = client.post("/api/train", json={**SMALL, **fields})
    assert response.status_code == 422, response.text
    body = response.json()
    assert bad in body["fields"] and body["error"] and body["message"], body


def test_a_comparison_trains_without_and_with_weight_decay_dropout_and_the_best_epoch(client):
    job = start(client, architecture="mlp_16", epochs=2, learning_rate=0.1, weight_decay=0.001, dropout=0.2,
                keep_best=True, compare=True)
    done = wait_for(client, job["id"], {"done"})
    assert done["spec"]["weight_decay"] == 0.001 and done["spec"]["compare"] is True
    assert len(done["runs"]) == 2 and len(done["model_ids"]) == 2
    epochs = [e for e in done["epochs"] if e["run"] == 1]
    assert [e["epoch"] for e in epochs] == [1, 2] and all("best_epoch" in e and "train_loss" in e for e in epochs)
    results = client.get(f"/api/train/{job['id']}/results").json()["results"]
    assert [r["label"] for r in results] == ["without", "with"]
    assert results[1]["kept_epoch"] == epochs[-1]["best_epoch"] and results[0]["kept_epoch"] == 2
    card = client.get(f"/api/models/{results[1]['model_id']}").json()
    assert card["layers"][-1] == {"type": "dropout", "rate": 0.2}  # the saved network has its dropout layer


def test_a_kfold_job_has_one_run_per_fold_and_their_mean_and_spread(client):
    job = start(client, architecture="mlp_16", folds=3, train_size=600, epochs=1, learning_rate=0.1, batch_size=50)
    done = wait_for(client, job["id"], {"done"})
    assert done["total_steps"] == 8  # 400 images of the 600 train each fold: 8 batches of 50
    results = client.get(f"/api/train/{job['id']}/results").json()["results"]
    assert [r["label"] for r in results] == ["fold 1", "fold 2", "fold 3"]
    with client.websocket_connect(f"/ws/train/{job['id']}") as ws:
        event = ws.receive_json()
        while event["type"] != "done":
            event = ws.receive_json()
    folds = event["folds"]
    accuracies = [r["val_accuracy"] for r in results]
    assert folds["accuracies"] == accuracies and folds["mean"] == pytest.approx(np.mean(accuracies))
    assert folds["std"] == pytest.approx(np.std(accuracies))


def test_a_kfold_job_says_its_estimate_and_is_refused_when_longer_than_the_servers_limit(client, settings):
    settings.kfold_time_limit = 120
    slide = {**SMALL, "folds": 5, "train_size": None, "epochs": 10, "batch_size": 32}  # the slide's run
    estimate = client.post("/api/train/estimate", json=slide).json()
    assert estimate["images"] == 60000 and estimate["batches"] == 1500 and estimate["steps"] == 5 * 10 * 1500
    assert estimate["estimate_s"] > 120 and not estimate["fits"] and estimate["limit_s"] == 120
    assert estimate["speed"]["step_s"] > 0 and "timed on this server" in estimate["method"]
    refused = client.post("/api/train", json=slide)
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["error"] == "too_long" and "epochs" in body["fields"]
    message = body["message"]
    assert "would take about" in message and "about 2 min a k-fold job may train here" in message, message
    assert "fewer epochs" in message and "fewer images" in message, message
    assert client.get("/api/train/estimate").status_code in (404, 405)
    no_folds = client.post("/api/train/estimate", json=SMALL)
    assert no_folds.status_code == 422 and "folds" in no_folds.json()["fields"]
    # within the limit: accepted, with its estimate and the job's own limit
    job = start(client, architecture="mlp_16", folds=3, train_size=600, epochs=1, learning_rate=0.1, batch_size=50)
    assert 0 < job["estimate_s"] <= 120 and job["limit_s"] == 120
    done = wait_for(client, job["id"], {"done"})
    assert done["spec"]["time_limit"] == 120


def test_a_learning_rate_change_may_name_any_run_of_a_ten_fold_job(client):
    job = start(client, architecture="mlp_16", folds=10, train_size=1000, epochs=1, learning_rate=0.1,
                batch_size=50, start_paused=True)
    changed = client.patch(f"/api/train/{job['id']}", json={"learning_rate": 0.05, "run": 9})
    assert changed.status_code == 200, changed.text
    assert client.patch(f"/api/train/{job['id']}", json={"learning_rate": 0.05, "run": 10}).status_code == 422
    client.post(f"/api/train/{job['id']}/stop")
    wait_for(client, job["id"], {"stopped", "done"})
