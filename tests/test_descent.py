"""Gradient descent lab: engine steps against hand computation and torch.optim, and the API."""
import base64
import json
import math
import shutil
import subprocess
from pathlib import Path

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


# --- the truth of a run's end (issue 23, item 3) -----------------------------------------------

LEARNING_RATES = (0.001, 0.01, 0.03, 0.08, 0.3, 0.5, 0.9, 1.05, 1.5)
PROBLEM_NAMES = ("parabola", "bowl", "valley", "rosenbrock", "line_fit")


def test_a_step_that_blows_up_is_recorded_with_where_it_went():
    """Rosenbrock at 0.08: the first step jumps from (-1.5, 2) to (10.9, 6), where the loss is
    about 100,000 times its start. The run records that step (the page shows the ball leave), not
    a path that never moved."""
    r = descent.run("rosenbrock", "sgd", learning_rate=0.08, steps=500)
    assert r.status == "diverged" and r.overflow is False
    assert len(r.path) == 2 and r.path[1] == [pytest.approx(10.9), pytest.approx(6.0)]
    assert r.loss[1] > descent.BLOW_UP * r.loss[0]
    assert all(math.isfinite(v) for v in [*r.loss, *sum(r.path, []), *sum(r.gradient, [])])


def test_a_step_that_overflows_says_so(monkeypatch):
    """A step whose numbers are too large to compute is not recorded (JSON carries no infinity),
    but the run says it overflowed rather than nothing."""
    spec = descent.PROBLEMS["bowl"]
    huge = descent.Problem("huge", "t", "f", 2, (1.0, 1.0), spec.view,
                           lambda p, d: 1e200 * p[0] ** 2 + p[1] ** 2)
    monkeypatch.setitem(descent.PROBLEMS, "huge", huge)
    r = descent.run("huge", "sgd", learning_rate=1.0, steps=10)
    assert r.status == "diverged" and r.overflow is True and len(r.path) == 1


@pytest.mark.parametrize("problem", PROBLEM_NAMES)
@pytest.mark.parametrize("optimizer", descent.OPTIMIZERS)
def test_a_runs_status_is_what_happened(problem, optimizer):
    """converged: at the minimum at the end; diverged: the last recorded step is the blow-up (or the
    next one overflowed); running: neither yet. Momentum's loss may rise for steps on end while it
    converges (round bowl, lr 0.08: up 3 steps in a row around step 30, converged at 126)."""
    for lr in LEARNING_RATES:
        r = descent.run(problem, optimizer, learning_rate=lr, momentum=0.9, steps=500)
        start_gap = r.loss[0] - r.minimum
        end_gap = r.loss[-1] - r.minimum
        if r.status == "converged":
            assert end_gap <= descent.TOLERANCE * max(start_gap, 1.0), (lr, end_gap)
        elif r.status == "diverged":
            assert r.overflow or end_gap > descent.BLOW_UP * start_gap or max(map(abs, r.path[-1])) > 1e6, (lr, r.loss[-3:])
        else:
            assert len(r.path) == 501, lr


def test_momentum_in_the_round_bowl_rises_for_a_while_and_converges():
    r = descent.run("bowl", "momentum", learning_rate=0.08, momentum=0.9, steps=500)
    assert r.status == "converged" and len(r.path) - 1 == 126
    assert all(r.loss[k] > r.loss[k - 1] for k in (28, 29, 30))  # the rise the page once called diverging


# --- the page's verdict (static/js/descent-verdict.js), run by node over the engine's runs -----

JS = Path(__file__).resolve().parent.parent / "static" / "js"
PREDICTS_ARRIVAL = ("getting there", "getting closer", "reached the minimum", "comes back down")


def verdicts(tmp_path, runs: list[dict]) -> list[list[str]]:
    """The verdict at every step of each run, as the page writes it (English)."""
    for name in ("descent-verdict.js", "format.js"):
        shutil.copy(JS / name, tmp_path / name)
    (tmp_path / "package.json").write_text('{"type": "module"}')
    (tmp_path / "runs.json").write_text(json.dumps(runs))
    (tmp_path / "judge.js").write_text(
        'import { judge } from "./descent-verdict.js";\n'
        'import { readFileSync } from "node:fs";\n'
        'const runs = JSON.parse(readFileSync(process.argv[2], "utf8"));\n'
        'const fill = (v) => v.text.replace(/\\{(\\w+)\\}/g, (m, k) => (k in v.values ? String(v.values[k]) : m));\n'
        'console.log(JSON.stringify(runs.map((r) => r.path.map((_, i) => {\n'
        '  const v = judge(r, i, { names: r.dims === 1 ? ["w"] : ["x", "y"] });\n'
        '  return `${v.state}|${fill(v)}`; }))));\n')
    done = subprocess.run(["node", str(tmp_path / "judge.js"), str(tmp_path / "runs.json")],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def as_page_gets_it(problem, optimizer, lr, steps=500):
    r = descent.run(problem, optimizer, learning_rate=lr, momentum=0.9, steps=steps)
    return {"problem": problem, "optimizer": optimizer, "lr": lr, "dims": descent.PROBLEMS[problem].dims,
            "path": r.path, "loss": r.loss, "gradient": r.gradient, "status": r.status,
            "minimum": r.minimum, "overflow": r.overflow}


@pytest.mark.skipif(shutil.which("node") is None, reason="node is installed by scripts/setup.sh")
def test_the_verdict_at_every_step_agrees_with_how_the_run_ends(tmp_path):
    """Every optimizer on every surface at rates from crawling to blowing up: a run the engine
    takes to the minimum is never called diverging, one that blows up is never said to get
    there, and one whose end is not known yet gets no prediction either way."""
    runs = [as_page_gets_it(p, o, lr) for p in PROBLEM_NAMES for o in descent.OPTIMIZERS for lr in LEARNING_RATES]
    for run, said in zip(runs, verdicts(tmp_path, runs)):
        case = (run["problem"], run["optimizer"], run["lr"], run["status"])
        for i, text in enumerate(said):
            if run["status"] != "diverged":
                assert "diverg" not in text and "✗" not in text, (case, i, text)
            if run["status"] != "converged":
                assert not any(p in text for p in PREDICTS_ARRIVAL), (case, i, text)
        if run["status"] == "converged":
            assert said[-1].startswith("converged|reached the minimum in"), (case, said[-1])
        if run["status"] == "diverged":
            assert said[-1].startswith("diverged|") and "✗" in said[-1], (case, said[-1])


@pytest.mark.skipif(shutil.which("node") is None, reason="node is installed by scripts/setup.sh")
def test_the_verdicts_the_page_once_got_wrong_and_the_crash_course_ones(tmp_path):
    runs = [as_page_gets_it("bowl", "momentum", 0.08), as_page_gets_it("rosenbrock", "sgd", 0.08),
            *(as_page_gets_it("parabola", "sgd", lr) for lr in (0.08, 0.5, 0.9, 1.05))]
    momentum, rosenbrock, slow, ideal, overshoot, diverging = verdicts(tmp_path, runs)
    assert momentum[30] == "|the loss rises for now, but it comes back down and reaches the minimum ↺"
    assert momentum[126] == "converged|reached the minimum in 126 steps ✓"
    # Rosenbrock at 0.08: one step, and it says where it went (off the plot at (10.9, 6))
    assert rosenbrock[0] == "|" and rosenbrock[1].startswith(
        "diverged|diverged after 1 step ✗ — it jumped to x = 10.9, y = 6, where the loss is 1.27e+6"), rosenbrock[1]
    assert "slow but getting there" in slow[6]
    assert ideal[1] == "converged|reached the minimum in 1 step ✓"
    assert "overshooting back and forth, but getting closer" in overshoot[6]
    assert diverging[6].startswith("diverging|diverging ✗")
