"""Training basics of lessons 001 and 002 with their own numbers: y = ax + b by trial (the six trials
of 10 = 3a + b), the split tab's regression, the step, RMSE and binary cross-entropy, full batch
beside mini-batch, zero against random initialisation, maxout's two learned lines, and centring and
scaling (the Age/Salary table). Torch is the oracle."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine import basics, choices, neuron, splitdata

# --- item 4: the slide's six trials -----------------------------------------------------------------

def test_the_six_trials_of_10_equals_3a_plus_b_are_the_slides():
    rows = neuron.trials(3, 10, neuron.SLIDES_TRIALS["trials"])
    assert [(r["a"], r["b"]) for r in rows] == [(1, 1), (4, 3), (2, 2), (3, 2), (2, 3), (2, 4)]
    assert [r["prediction"] for r in rows] == [4, 15, 8, 11, 9, 10]
    assert [r["error"] for r in rows] == [6, -5, 2, -1, 1, 0]  # target - prediction, as the slide


def test_the_trials_api_takes_the_slides_numbers_and_refuses_a_half_trial(client):
    r = client.post("/api/neuron/trials", json={})
    assert r.status_code == 200 and [row["error"] for row in r.json()["rows"]] == [6, -5, 2, -1, 1, 0]
    r = client.post("/api/neuron/trials", json={"x": 2, "y": 5, "trials": [[2, 1]]})
    assert r.json()["rows"] == [{"a": 2, "b": 1, "prediction": 5, "error": 0}]
    bad = client.post("/api/neuron/trials", json={"trials": [[1]]})
    assert bad.status_code == 422 and {"error", "message", "fields"} <= set(bad.json())
    assert client.get("/api/neuron/example").json()["trials"] == neuron.SLIDES_TRIALS


def test_gradient_descent_from_a_trial_reaches_a_line_through_3_10(client):
    r = client.post("/api/descent/run", json={"problem": "line_fit", "learning_rate": 0.08, "steps": 500,
                                              "start": [1, 1], "data": {"x": [3], "y": [10]}}).json()
    a, b = r["path"][-1]
    assert r["status"] == "converged" and 3 * a + b == pytest.approx(10, abs=1e-3)


# --- item 8: regression on the split tab -------------------------------------------------------------

def test_the_regression_network_is_the_keras_example_with_one_input_and_mse():
    net = splitdata.build([3, 3], "relu", inputs=1)
    assert [m.__class__.__name__ for m in net] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert (net[0].in_features, net[0].out_features, net[-1].out_features) == (1, 3, 1)
    points = splitdata.make_curve("wave")
    first = splitdata.fit_curve(points, [3, 3], "relu", 0.3, 0)
    state = splitdata.fit_curve(points, [3, 3], "relu", 0.3, 1)
    check = splitdata.build([3, 3], "relu", inputs=1)
    splitdata.set_state(check, state["state"])
    with torch.no_grad():  # the reported loss is the MSE of the returned network, a number per x (no sigmoid)
        mse = F.mse_loss(check(torch.tensor(points[:, :1], dtype=torch.float32)).squeeze(1),
                         torch.tensor(points[:, 1], dtype=torch.float32)).item()
    assert state["final_loss"] == pytest.approx(mse, rel=1e-5) and first["state"] is not None
    fitted = splitdata.fit_curve(points, [3, 3], "relu", 0.3, 200)
    assert fitted["final_loss"] < 0.05 < fitted["loss"][0] and len(fitted["curve"]) == splitdata.CURVE_POINTS


def test_the_split_api_fits_a_curve_and_says_so(client):
    r = client.post("/api/split/step", json={"task": "regression", "dataset": "wave", "layers": [3, 3],
                                             "activation": "relu", "steps": 3})
    body = r.json()
    assert r.status_code == 200 and body["task"] == "regression" and body["accuracy"] is None and body["grid"] is None
    assert len(body["loss"]) == 3 and len(body["curve"]) == 97 and len(body["points"][0]) == 2
    assert [len(layer) for layer in body["neurons"]["layers"]] == [3, 3]
    mine = client.post("/api/split/step", json={"task": "regression", "points": [[-1, 0], [0, 1], [1, 0]], "steps": 1})
    assert mine.status_code == 200 and mine.json()["points"] == [[-1, 0], [0, 1], [1, 0]]
    classified = client.post("/api/split/step", json={"steps": 1}).json()
    assert classified["task"] == "classification" and classified["accuracy"] is not None


@pytest.mark.parametrize("body", [
    {"task": "regression", "dataset": "circles"},
    {"task": "classification", "dataset": "wave"},
    {"task": "regression", "points": [[0, 1, 1]]},
    {"points": [[0, 1]]},
    {"task": "guess"},
])
def test_a_split_request_that_mixes_the_tasks_is_refused(client, body):
    r = client.post("/api/split/step", json=body)
    assert r.status_code == 422 and {"error", "message", "fields"} <= set(r.json()), r.json()


# --- item 7: step, RMSE and binary cross-entropy -----------------------------------------------------

def test_the_step_is_0_below_and_1_from_zero_with_slope_0():
    z = torch.tensor([-2.0, -1e-9, 0.0, 0.5, 3.0], dtype=torch.float64)
    assert choices.activate("step", z).tolist() == [0, 0, 1, 1, 1]
    assert neuron.value_and_slope("step", -1.0) == (0.0, 0.0) and neuron.value_and_slope("step", 2.0) == (1.0, 0.0)
    curves = neuron.curves()
    assert set(curves["step"]["slope"]) == {0.0} and "step" not in choices.LAYER_ACTIVATIONS


@pytest.mark.parametrize("p,label", [([0.7, 0.2, 0.1], 0), ([0.1, 0.3, 0.6], 1), ([0.5, 0.5], 1)])
def test_rmse_and_binary_cross_entropy_are_torchs(p, label):
    out = neuron.losses(p, label)
    pt = torch.tensor(p, dtype=torch.float64)
    y = F.one_hot(torch.tensor(label), len(p)).to(torch.float64)
    assert out["rmse"] == pytest.approx(math.sqrt(F.mse_loss(pt, y).item()))
    assert out["bce"] == pytest.approx(F.binary_cross_entropy(pt, y).item())
    assert np.mean(out["bce_terms"]) == pytest.approx(out["bce"])


def test_the_loss_api_gives_the_slides_four_cost_functions(client):
    example = client.get("/api/neuron/example").json()
    assert [row["name"] for row in example["losses"]] == ["mse", "rmse", "bce", "cross_entropy"]
    assert [row["use"] for row in example["losses"]] == ["Regression", "Regression", "Binary classification",
                                                         "Multi-class classification"]
    out = client.post("/api/neuron/loss", json={"probabilities": [0.7, 0.2, 0.1], "label": 0}).json()
    assert all(name in out for name in choices.LOSSES)
    assert client.post("/api/neuron/forward", json={"inputs": [1], "weights": [1], "activation": "step"}).json()["output"] == 1


# --- item 7: full batch beside mini-batch ------------------------------------------------------------

def test_full_batch_takes_one_step_an_epoch_with_the_whole_datas_gradient():
    race = basics.batch_race(samples=1000, batch_size=128, epochs=3, learning_rate=0.1)
    assert race["full"]["steps_per_epoch"] == 1 and len(race["full"]["loss"]) == 3
    assert race["mini"]["steps_per_epoch"] == 8 and len(race["mini"]["loss"]) == 24  # ceil(1000 / 128) = 8
    gen = torch.Generator().manual_seed(0)  # the same data, stepped by hand on the whole set
    x = torch.rand(1000, generator=gen, dtype=torch.float64) * 2 - 1
    y = 2 * x + 1 + 0.3 * torch.randn(1000, generator=gen, dtype=torch.float64)
    a = b = 0.0
    for _ in range(3):
        e = a * x + b - y
        a, b = a - 0.1 * (2 * e * x).mean().item(), b - 0.1 * (2 * e).mean().item()
    assert race["full"]["end"] == pytest.approx([a, b])
    assert race["full"]["loss"][-1] == pytest.approx(((a * x + b - y) ** 2).mean().item())


# --- item 7: zero against random initialisation ------------------------------------------------------

def test_all_zero_weights_keep_the_hidden_neurons_identical_random_ones_do_not():
    zeros = basics.symmetry("zeros", steps=50)
    assert all(step["identical"] for step in zeros["history"])
    last = np.array(zeros["history"][-1]["hidden"])
    assert np.abs(last).max() > 0 and (last == last[0]).all()  # they moved, all three the same way
    assert len(set(zeros["history"][-1]["out"])) == 1
    random = basics.symmetry("random", steps=50)
    assert not any(step["identical"] for step in random["history"])
    with pytest.raises(ValueError):
        basics.symmetry("ones")


def test_the_symmetry_api(client):
    r = client.get("/api/neuron/symmetry?init=zeros&steps=5").json()
    assert len(r["history"]) == 6 and r["history"][-1]["identical"]
    assert client.get("/api/neuron/symmetry?init=ones").status_code == 422


# --- item 7: maxout learns its two lines -------------------------------------------------------------

def test_maxout_is_the_max_of_two_linear_layers():
    torch.manual_seed(1)
    unit = basics.Maxout(3, 2)
    first, second = nn.Linear(3, 2), nn.Linear(3, 2)
    with torch.no_grad():  # the unit's pieces are interleaved per output: (out0 piece0, out0 piece1, ...)
        first.weight.copy_(unit.linear.weight[0::2])
        first.bias.copy_(unit.linear.bias[0::2])
        second.weight.copy_(unit.linear.weight[1::2])
        second.bias.copy_(unit.linear.bias[1::2])
    x = torch.randn(5, 3)
    assert torch.allclose(unit(x), torch.maximum(first(x), second(x)))


def test_maxout_learns_the_absolute_value_as_two_lines():
    out = basics.maxout_fit("abs", steps=300)
    slopes = sorted(p["slope"] for p in out["pieces"])
    assert out["final_loss"] < 1e-3 and slopes == pytest.approx([-1, 1], abs=0.02)


# --- item 7: centring and scaling, the slide's employees ---------------------------------------------

def test_the_age_salary_table_centred_and_scaled_is_the_slides():
    scaled = np.array(basics.standardise(basics.EMPLOYEES["rows"])["scaled"])
    slide = [[-1.10, -1.37, -1.07], [1.32, 0.98, 1.34], [-0.21, 0.39, -0.27]]
    assert np.round(scaled, 2).tolist() == slide
    assert np.allclose(scaled.mean(0), 0) and np.allclose(scaled.std(0), 1)


def test_scaling_makes_descent_on_the_line_fit_reach_the_minimum(client):
    out = client.get("/api/neuron/scaling").json()
    raw, scaled = out["descent"]["raw"], out["descent"]["scaled"]
    assert raw["steps_to_minimum"] is None and raw["learning_rate"] < 0.001
    assert scaled["steps_to_minimum"] is not None and scaled["steps_to_minimum"] < 100
    assert out["rows"][0] == [28, 40000, 5]
