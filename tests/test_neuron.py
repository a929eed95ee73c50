"""The lessons' first half (issue 13): a neuron, activations, losses, one training step and batch
arithmetic, with torch and hand computations as the oracles; and their API."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine import neuron


def test_the_slides_perceptron_gives_sigmoid_3_2_equal_0_96():
    out = neuron.neuron(**neuron.SLIDES_NEURON)
    assert out["sum"] == pytest.approx(3.2) and round(out["output"], 2) == 0.96
    assert out["output"] == pytest.approx(1 / (1 + math.exp(-3.2)))
    assert out["terms"] == pytest.approx([0.8, 1.8, 0.4])
    assert out["slope"] == pytest.approx(out["output"] * (1 - out["output"]))  # sigmoid' = s (1 - s)


@pytest.mark.parametrize("name, z, value, slope", [
    ("relu", -2, 0, 0), ("relu", 3, 3, 1), ("leaky_relu", -2, -0.2, 0.1), ("tanh", 0, 0, 1),
    ("elu", -1, math.exp(-1) - 1, math.exp(-1)), ("maxout", -4, -1, 0.25), ("maxout", 2, 2, 1),
])
def test_activations_and_their_slopes(name, z, value, slope):
    assert neuron.value_and_slope(name, z) == pytest.approx((value, slope))


def test_curves_show_sigmoid_saturating_where_relu_keeps_its_slope():
    c = neuron.curves()
    far = c["z"].index(5.0)
    assert c["sigmoid"]["slope"][far] < 0.01 and c["relu"]["slope"][far] == 1.0
    assert max(c["sigmoid"]["slope"]) == pytest.approx(0.25)  # at most a quarter: gradients shrink


def test_mse_and_cross_entropy_against_a_one_hot_label():
    out = neuron.losses([0.7, 0.2, 0.1], 0)
    assert out["one_hot"] == [1, 0, 0]
    assert out["mse"] == pytest.approx((0.3 ** 2 + 0.2 ** 2 + 0.1 ** 2) / 3)
    assert out["cross_entropy"] == pytest.approx(-math.log(0.7))
    assert neuron.losses([0.0, 1.0], 0)["cross_entropy"] == pytest.approx(-math.log(1e-12))  # finite
    with pytest.raises(ValueError):
        neuron.losses([0.5, 0.6], 0)


def test_the_slides_batch_arithmetic():
    assert neuron.batches(1000, 128, 3) == {"batches_per_epoch": 8, "last_batch": 104, "steps": 24,
                                            "samples_seen": 3000}


def hand_step(net: neuron.TinyNet, x, label, learning_rate):
    lr = learning_rate
    """Backprop by hand in numpy: the chain rule, layer by layer."""
    w1, b1, w2, b2 = (np.array(v, dtype=np.float64) for v in (net.w1, net.b1, net.w2, net.b2))
    x = np.array(x)
    h = 1 / (1 + np.exp(-(w1 @ x + b1)))
    z2 = w2 @ h + b2
    p = np.exp(z2) / np.exp(z2).sum()
    y = np.eye(2)[label]
    d_z2 = p - y
    g_w2, g_b2 = np.outer(d_z2, h), d_z2
    d_z1 = (w2.T @ d_z2) * h * (1 - h)
    g_w1, g_b1 = np.outer(d_z1, x), d_z1
    return -np.log(p[label]), {"w1": w1 - lr * g_w1, "b1": b1 - lr * g_b1, "w2": w2 - lr * g_w2, "b2": b2 - lr * g_b2}


def test_one_step_equals_a_hand_computation_and_torch_sgd():
    out = neuron.step(neuron.START, **neuron.EXAMPLE)
    loss, expected = hand_step(neuron.START, **neuron.EXAMPLE)
    assert out["loss"] == pytest.approx(loss)
    for k, v in expected.items():
        assert np.allclose(out["updated"][k], v, atol=1e-12), k
    params = {k: torch.nn.Parameter(torch.tensor(v, dtype=torch.float64)) for k, v in neuron.START.__dict__.items()}
    opt = torch.optim.SGD(params.values(), lr=neuron.EXAMPLE["learning_rate"])
    f = neuron.forward(params, torch.tensor(neuron.EXAMPLE["x"], dtype=torch.float64))
    (-torch.log(f["p"][0])).backward()
    opt.step()
    for k, p in params.items():
        assert np.allclose(out["updated"][k], p.detach().numpy(), atol=1e-12), k
    for chain in out["chain"].values():  # the chain rule written out equals autograd
        assert chain["product"] == pytest.approx(chain["autograd"])
        assert chain["product"] == pytest.approx(math.prod(chain["factors"].values()))
    assert out["loss_after"] < out["loss"]


def test_steps_repeat_from_the_updated_weights_and_keep_lowering_the_loss():
    net, losses = neuron.START, []
    for _ in range(5):
        out = neuron.step(net, **neuron.EXAMPLE)
        losses.append(out["loss"])
        net = neuron.TinyNet(**out["updated"])
    assert losses == sorted(losses, reverse=True)


def test_the_api(client):
    assert client.get("/api/neuron/example").json()["neuron"]["inputs"] == [2.0, 3.0, 1.0]
    forward = client.post("/api/neuron/forward", json=neuron.SLIDES_NEURON).json()
    assert round(forward["output"], 2) == 0.96
    assert client.post("/api/neuron/forward", json={**neuron.SLIDES_NEURON, "weights": [1]}).status_code == 422
    assert client.post("/api/neuron/forward", json={**neuron.SLIDES_NEURON, "activation": "nope"}).status_code == 422
    assert client.post("/api/neuron/forward", json={**neuron.SLIDES_NEURON, "bias": "NaN"}).status_code == 422
    assert len(client.get("/api/neuron/activations").json()["z"]) == 201
    assert client.post("/api/neuron/loss", json={"probabilities": [0.7, 0.3], "label": 0}).json()["one_hot"] == [1, 0]
    bad = client.post("/api/neuron/loss", json={"probabilities": [0.7, 0.7], "label": 0})
    assert bad.status_code == 422 and "add up to 1" in bad.json()["message"]
    assert client.post("/api/neuron/loss", json={"probabilities": [1.0], "label": 3}).status_code == 422
    step = client.post("/api/neuron/step", json={}).json()
    assert step["loss_after"] < step["loss"]
    again = client.post("/api/neuron/step", json={"net": step["updated"]}).json()
    assert again["loss"] == pytest.approx(step["loss_after"])
    assert client.post("/api/neuron/step", json={"net": {**step["updated"], "w1": [[1]]}}).status_code == 422
    assert client.get("/api/neuron/batches", params={"samples": 1000, "batch_size": 128}).json()["batches_per_epoch"] == 8
    assert client.get("/api/neuron/batches", params={"samples": 0, "batch_size": 128}).status_code == 422
