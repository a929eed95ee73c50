"""Gradient descent lab: engine steps against hand computation and torch.optim, and the API."""
import base64
import json
import math

import numpy as np
import pytest
import torch

from engine import descent, splitdata


def test_line_fit_step_is_the_hand_computed_update():
    # a = 1, b = 1 with the slides' points (2, 5) and (4, 9): predictions 3 and 5, errors -2 and -4
    # MSE = (4 + 16) / 2 = 10; dMSE/da = 2/N * sum(err * x) = -20; dMSE/db = 2/N * sum(err) = -6
    r = descent.run("line_fit", "sgd", learning_rate=0.01, start=[1, 1], steps=1)
    assert r.loss[0] == 10 and r.gradient[0] == [-20, -6]
    assert r.path == [[1, 1], [pytest.approx(1.2), pytest.approx(1.06)]]


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_momentum_and_adam_match_torch_optim(optimizer):
    r = descent.run("rosenbrock", optimizer, learning_rate=0.001, momentum=0.8, start=[-1.5, 2], steps=25)
    p = torch.tensor([-1.5, 2.0], dtype=torch.float64, requires_grad=True)
    opt = (torch.optim.SGD([p], lr=0.001, momentum=0.8) if optimizer == "momentum"
           else torch.optim.Adam([p], lr=0.001))
    for _ in range(25):
        opt.zero_grad()
        ((1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2).backward()
        opt.step()
    assert r.path[-1] == pytest.approx(p.detach().tolist(), rel=1e-12)


@pytest.mark.parametrize("lr, status", [(0.01, "running"), (0.5, "converged"), (0.9, "converged"), (1.05, "diverged")])
def test_the_learning_rate_regimes_on_the_parabola(lr, status):
    # L(w) = (w - 2)^2: the step multiplies the distance to 2 by (1 - 2 lr): crawl, one step,
    # oscillate, and past the stability limit lr = 1, diverge
    r = descent.run("parabola", "sgd", learning_rate=lr, steps=100)
    assert r.status == status
    if lr == 0.5:
        assert len(r.path) == 2
    if lr == 0.9:  # it oscillates around the minimum on its way
        signs = [np.sign(w - 2) for (w,) in r.path[:6]]
        assert signs == [-1, 1, -1, 1, -1, 1]


def test_divergence_stops_with_finite_numbers():
    r = descent.run("valley", "sgd", learning_rate=0.6, steps=1000)
    assert r.status == "diverged" and len(r.path) < 1000
    assert all(math.isfinite(v) for v in [*r.loss, *sum(r.path, []), *sum(r.gradient, [])])


def test_split_the_data_learns_circles_and_keeps_its_weights():
    points = splitdata.make_points("circles", n=200, seed=1)
    first = splitdata.train(points, [6, 6], "tanh", 0.5, 200, seed=1)
    more = splitdata.train(points, [6, 6], "tanh", 0.5, 200, state=first["state"], seed=1)
    assert more["final_loss"] < first["final_loss"] and more["accuracy"] >= 0.95
    assert first["grid"].shape == (splitdata.GRID, splitdata.GRID)
    with pytest.raises(ValueError, match="do not match"):
        splitdata.train(points, [3], "tanh", 0.5, 1, state=first["state"])


@pytest.mark.parametrize("name", splitdata.DATASETS)
def test_datasets_have_two_classes_in_the_plane(name):
    pts = splitdata.make_points(name, n=100)
    assert pts.shape == (100, 3) and set(pts[:, 2]) == {0, 1} and np.abs(pts[:, :2]).max() <= 1.1


# --- API -------------------------------------------------------------------------------------

def test_run_api(client):
    body = client.post("/api/descent/run", json={"problem": "line_fit", "learning_rate": 0.01,
                                                  "start": [1, 1], "steps": 3}).json()
    assert len(body["path"]) == len(body["loss"]) == len(body["gradient"]) == 4
    assert body["gradient"][0] == [-20, -6] and body["status"] == "running"
    diverged = client.post("/api/descent/run", json={"problem": "parabola", "learning_rate": 5, "steps": 500})
    text = diverged.text
    assert diverged.json()["status"] == "diverged" and "NaN" not in text and "Infinity" not in text
    json.loads(text)


@pytest.mark.parametrize("fields, bad", [
    ({"learning_rate": -0.1}, "learning_rate"),
    ({"learning_rate": "fast"}, "learning_rate"),
    ({"steps": 10**7}, "steps"),
    ({"problem": "himmelblau"}, "problem"),
    ({"problem": "line_fit", "data": {"x": [1, 2, 3], "y": [1, 2]}}, "data"),
    ({"problem": "bowl", "start": [1]}, "start"),
    ({"optimizer": "lbfgs"}, "optimizer"),
])
def test_run_api_bad_values_name_the_field(client, fields, bad):
    response = client.post("/api/descent/run", json=fields)
    assert response.status_code == 422 and any(k.startswith(bad) for k in response.json()["fields"]), response.json()


def test_surface_and_problems(client):
    problems = {p["name"]: p for p in client.get("/api/descent/problems").json()["problems"]}
    assert problems["line_fit"]["start"] == [1, 1] and problems["parabola"]["dims"] == 1
    curve = client.post("/api/descent/surface", json={"problem": "parabola"}).json()
    assert min(curve["loss"]) == pytest.approx(0, abs=1e-2)
    grid = client.post("/api/descent/surface", json={"problem": "line_fit", "data": {"x": [2, 4], "y": [5, 9]}}).json()
    assert len(grid["loss"]) == 64 and len(grid["loss"][0]) == 64


def test_split_api_round_trip_and_bad_input(client):
    first = client.post("/api/split/step", json={"dataset": "xor", "layers": [6], "steps": 50, "learning_rate": 1}).json()
    assert len(first["loss"]) == 50 and first["grid"]["width"] == 48 and len(first["points"]) == 200
    again = client.post("/api/split/step", json={"dataset": "xor", "layers": [6], "steps": 5, "learning_rate": 1,
                                                 "state": first["state"]}).json()
    assert again["loss"][0] <= first["loss"][0]
    mine = client.post("/api/split/step", json={"points": [[0.5, 0.5, 1], [-0.5, -0.5, 0]], "steps": 3}).json()
    assert len(mine["points"]) == 2
    for bad, field in [({"points": [[0, 0, 2]]}, "points"), ({"points": [[0, 0, 1]]}, "points"),
                       ({"layers": [4], "state": first["state"]}, "state"), ({"activation": "swish"}, "activation"),
                       ({"layers": [99]}, "layers"), ({"learning_rate": float("nan")}, "learning_rate")]:
        body = bad if field != "learning_rate" else None
        response = (client.post("/api/split/step", json=body) if body is not None else
                    client.post("/api/split/step", content='{"learning_rate": NaN}',
                                headers={"content-type": "application/json"}))
        assert response.status_code == 422 and any(k.startswith(field) for k in response.json()["fields"]), (bad, response.json())


@pytest.mark.parametrize("lr, epochs", [(0.3, 100), (0.08, 250)])
def test_split_the_data_defaults_learn_circles_at_once(lr, epochs):
    """The page's defaults (circles, 4,4, tanh) learn as TensorFlow Playground's do: a step is an
    epoch of mini-batches of 10, so a few seconds of RUN separate the circles."""
    points = splitdata.make_points("circles")
    result = splitdata.train(points, [4, 4], "tanh", lr, epochs)
    assert result["accuracy"] >= 0.95, result["accuracy"]
    maps = result["neurons"]
    assert [len(layer) for layer in maps] == [4, 4] and maps[0][0].shape == (splitdata.NEURON_GRID,) * 2
    assert all(0 <= m.min() and m.max() <= 1 for layer in maps for m in layer)


def test_split_steps_are_capped_at_200_epochs_a_request(client):
    too_many = client.post("/api/split/step", json={"steps": 201})
    assert too_many.status_code == 422 and "steps" in too_many.json()["fields"]
    assert client.post("/api/split/step", json={"steps": "many"}).status_code == 422
    body = client.post("/api/split/step", json={"steps": 2}).json()
    assert len(body["loss"]) == 2 and [len(layer) for layer in body["neurons"]["layers"]] == [4, 4]
    neuron, grid = body["neurons"]["layers"][0][0], body["grid"]  # the one image form of every endpoint
    assert (neuron["width"], neuron["height"], grid["width"], grid["height"]) == (20, 20, 48, 48)
    assert len(base64.b64decode(grid["base64"])) == 48 * 48 and grid["extent"] == 1.2
