"""A neuron, and how it learns: the lessons' first half with real numbers.

One neuron (weighted sum + activation), the activation functions and their derivatives, MSE and
cross-entropy against a one-hot label, one training step of a tiny 2-3-2 network with every
number of the forward pass, every gradient (torch autograd) and the chain rule for two weights
written out, and batch arithmetic. Pure torch; every derivative comes from autograd.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine import choices
from engine.choices import activate

ACTIVATIONS = tuple(choices.ACTIVATIONS)  # every shape a neuron can have, maxout included

# The slides' perceptron: sigmoid(3.2) = 0.96. Three inputs, their weights and a bias whose
# weighted sum is 3.2 (the slides show only the sum).
SLIDES_NEURON = {"inputs": [2.0, 3.0, 1.0], "weights": [0.4, 0.6, 0.4], "bias": 0.2, "activation": "sigmoid"}

# Lesson 002's "deep learning process": find a and b in y = ax + b by trial for the target
# (3, 10), i.e. 10 = 3a + b. Its six trials (a, b), in its order; the slide's errors are
# target - prediction: 6, -5, 2, -1, 1, 0.
SLIDES_TRIALS = {"x": 3.0, "y": 10.0, "trials": [[1.0, 1.0], [4.0, 3.0], [2.0, 2.0], [3.0, 2.0], [2.0, 3.0], [2.0, 4.0]]}

# Every shape the neuron page offers: the activations, and the shapes only a neuron shows (step)
NEURON_SHAPES = ACTIVATIONS + tuple(choices.NEURON_SHAPES)


def value_and_slope(name: str, z: float) -> tuple[float, float]:
    """g(z) and g'(z) (autograd; at a kink, the slope torch uses)."""
    t = torch.tensor(float(z), dtype=torch.float64, requires_grad=True)
    out = activate(name, t)
    out.backward()
    return out.item(), t.grad.item()


def curves(lo: float = -5.0, hi: float = 5.0, n: int = 201) -> dict:
    """Every activation and its derivative on n points of [lo, hi] (and the step, the shape only a
    neuron shows: its slope is 0 everywhere, torch's at the jump too)."""
    z = torch.linspace(lo, hi, n, dtype=torch.float64, requires_grad=True)
    out = {"z": z.detach().tolist()}
    for name in NEURON_SHAPES:
        y = activate(name, z)
        (slope,) = torch.autograd.grad(y.sum(), z)
        out[name] = {"y": y.detach().tolist(), "slope": slope.tolist()}
    return out


def neuron(inputs: list[float], weights: list[float], bias: float, activation: str) -> dict:
    """The weighted sum term by term, z, g(z) and g'(z)."""
    if len(inputs) != len(weights):
        raise ValueError(f"{len(inputs)} inputs but {len(weights)} weights: give one weight per input")
    terms = [x * w for x, w in zip(inputs, weights)]
    z = math.fsum(terms) + bias
    a, slope = value_and_slope(activation, z)
    return {"terms": terms, "sum": z, "output": a, "slope": slope, "activation": activation}


def trials(x: float, y: float, tried: list[list[float]]) -> list[dict]:
    """Each trial (a, b) for the target (x, y): the prediction a·x + b and the error written as
    the slide writes it, target - prediction (0: the trial hits the target)."""
    rows = []
    for a, b in tried:
        prediction = math.fsum([a * x, b])
        rows.append({"a": a, "b": b, "prediction": prediction, "error": y - prediction})
    return rows


def losses(probabilities: list[float], label: int) -> dict:
    """MSE (mean over the classes), its root (RMSE), cross-entropy and binary cross-entropy (each
    class its own yes/no question, the mean over the classes) of a prediction against a one-hot label."""
    p = torch.tensor(probabilities, dtype=torch.float64)
    if p.min() < 0 or not math.isclose(p.sum().item(), 1.0, abs_tol=1e-6):
        raise ValueError("probabilities must be 0 or more and add up to 1")
    if not 0 <= label < len(p):
        raise ValueError(f"label must be a class from 0 to {len(p) - 1}")
    y = F.one_hot(torch.tensor(label), len(p)).to(torch.float64)
    clipped = p.clamp_min(1e-12)  # log 0 would be infinite: the loss of a sure, wrong guess is capped
    return {"one_hot": y.tolist(), "mse": F.mse_loss(p, y).item(), "mse_terms": ((p - y) ** 2).tolist(),
            "cross_entropy": F.nll_loss(clipped.log().unsqueeze(0), torch.tensor([label])).item(),
            "p_label": p[label].item(), "rmse": F.mse_loss(p, y).sqrt().item(),
            "bce": F.binary_cross_entropy(p.clamp(1e-12, 1 - 1e-12), y).item(),
            "bce_terms": (-(y * clipped.log() + (1 - y) * (1 - p).clamp_min(1e-12).log())).tolist()}


def batches(samples: int, batch_size: int, epochs: int = 1) -> dict:
    """The slides' arithmetic: 1000 samples, batch 128 -> 8 batches an epoch (the last one 104)."""
    per_epoch = math.ceil(samples / batch_size)
    last = samples - (per_epoch - 1) * batch_size
    return {"batches_per_epoch": per_epoch, "last_batch": last, "steps": per_epoch * epochs,
            "samples_seen": samples * epochs}


# --- one training step of a 2-3-2 network --------------------------------------------------------

@dataclass
class TinyNet:
    """2 inputs -> 3 sigmoid neurons -> 2 outputs with softmax, trained on cross-entropy."""
    w1: list[list[float]]   # (3, 2)
    b1: list[float]         # (3,)
    w2: list[list[float]]   # (2, 3)
    b2: list[float]         # (2,)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in self.__dict__.items()}


START = TinyNet(w1=[[0.15, 0.20], [0.25, 0.30], [0.35, 0.40]], b1=[0.35, 0.35, 0.35],
                w2=[[0.40, 0.45, 0.50], [0.55, 0.60, 0.65]], b2=[0.60, 0.60])
EXAMPLE = {"x": [0.05, 0.10], "label": 0, "learning_rate": 0.5}
SHAPES = {"w1": (3, 2), "b1": (3,), "w2": (2, 3), "b2": (2,)}


def forward(p: dict[str, torch.Tensor], x: torch.Tensor) -> dict[str, torch.Tensor]:
    z1 = p["w1"] @ x + p["b1"]          # (3,)
    h = torch.sigmoid(z1)               # (3,)
    z2 = p["w2"] @ h + p["b2"]          # (2,)
    return {"z1": z1, "h": h, "z2": z2, "p": torch.softmax(z2, 0)}


def step(net: TinyNet, x: list[float], label: int, learning_rate: float) -> dict:
    """Forward pass, cross-entropy, every gradient by autograd, the chain rule for w2[0][0] and
    w1[0][0] worked out by hand from the forward numbers, and the SGD update w - lr * grad."""
    params = net.tensors()
    for name, shape in SHAPES.items():
        if tuple(params[name].shape) != shape:
            raise ValueError(f"{name} must have shape {list(shape)}")
    xt = torch.tensor(x, dtype=torch.float64)
    if xt.shape != (2,) or label not in (0, 1):
        raise ValueError("x must be 2 numbers and the label 0 or 1")
    f = forward(params, xt)
    loss = -torch.log(f["p"][label])
    loss.backward()
    grads = {k: v.grad for k, v in params.items()}
    y = F.one_hot(torch.tensor(label), 2).to(torch.float64)
    with torch.no_grad():
        d_z2 = f["p"] - y                                   # dL/dz2 for softmax + cross-entropy
        d_h0 = (d_z2 * params["w2"][:, 0]).sum()            # dL/dh0, over both outputs
        s0 = f["h"][0] * (1 - f["h"][0])                    # dh0/dz1_0 = sigmoid'(z1_0)
        chain = {
            "w2[0][0]": {"factors": {"dL/dz2[0] = p0 - y0": d_z2[0].item(), "dz2[0]/dw2[0][0] = h0": f["h"][0].item()},
                         "product": (d_z2[0] * f["h"][0]).item(), "autograd": grads["w2"][0, 0].item()},
            "w1[0][0]": {"factors": {"dL/dh0 = Σ (p - y) · w2[:, 0]": d_h0.item(), "dh0/dz1[0] = h0 (1 - h0)": s0.item(),
                                     "dz1[0]/dw1[0][0] = x0": xt[0].item()},
                         "product": (d_h0 * s0 * xt[0]).item(), "autograd": grads["w1"][0, 0].item()},
        }
        updated = {k: (params[k] - learning_rate * grads[k]) for k in params}
        after = forward(updated, xt)
    return {
        "x": x, "label": label, "learning_rate": learning_rate,
        "forward": {k: v.detach().tolist() for k, v in f.items()}, "loss": loss.item(),
        "gradients": {k: g.tolist() for k, g in grads.items()}, "chain": chain,
        "updated": {k: v.tolist() for k, v in updated.items()},
        "loss_after": -math.log(after["p"][label].item()),
    }
