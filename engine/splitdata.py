"""'Split the data': a tiny network learns to separate two classes of 2-D points.

Stateless: the caller keeps the network's weights (plain nested lists) and sends them back with
each request, so any number of students can step their own networks without server sessions.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.choices import layer

DATASETS = ("blobs", "circles", "xor", "spiral")
# Regression (lesson 001: "what is the temperature going to be tomorrow?"): a curve y = f(x) to fit,
# the network's one output a number, its loss the mean squared error.
CURVES = ("wave", "vee")
TASKS = ("classification", "regression")
CURVE_POINTS = 97   # where the fitted curve is drawn: this many x over [-EXTENT, EXTENT]
EXTENT = 1.2        # the plane shown: [-EXTENT, EXTENT] on both axes
GRID = 48           # decision-boundary grid size
NEURON_GRID = 20    # each hidden neuron's own map (TensorFlow Playground's thumbnails)
BATCH = 10          # one step is one epoch of mini-batches of this size, as TensorFlow Playground counts


def make_points(name: str, n: int = 200, noise: float = 0.1, seed: int = 0) -> np.ndarray:
    """(n, 3) rows of x, y, label in [-1, 1]^2."""
    rng = np.random.default_rng(seed)
    label = np.arange(n) % 2
    if name == "blobs":
        centre = np.where(label[:, None] == 0, [-0.5, -0.4], [0.5, 0.4])
        xy = centre + rng.normal(0, 0.25 + noise, (n, 2))
    elif name == "circles":
        radius = np.where(label == 0, rng.uniform(0, 0.4, n), rng.uniform(0.65, 1.0, n))
        angle = rng.uniform(0, 2 * math.pi, n)
        xy = np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1) + rng.normal(0, noise / 2, (n, 2))
    elif name == "xor":
        xy = rng.uniform(-1, 1, (n, 2))
        xy += np.sign(xy) * 0.05
        label = ((xy[:, 0] > 0) ^ (xy[:, 1] > 0)).astype(int)
        xy += rng.normal(0, noise / 2, (n, 2))
    elif name == "spiral":
        t = rng.uniform(0.25, 1.0, n) * 3 * math.pi
        r = t / (3 * math.pi)
        angle = t + label * math.pi
        xy = np.stack([r * np.cos(angle), r * np.sin(angle)], 1) + rng.normal(0, noise / 3, (n, 2))
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return np.concatenate([np.clip(xy, -1.1, 1.1), label[:, None]], axis=1)


def make_curve(name: str, n: int = 60, noise: float = 0.1, seed: int = 0) -> np.ndarray:
    """(n, 2) rows of x, y with x in [-1, 1]: a wave y = 0.8 sin(3x), or a vee y = 1.4|x| - 0.7
    (two straight pieces: what ReLU neurons are made of), plus noise."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-1, 1, n))
    if name == "wave":
        y = 0.8 * np.sin(3 * x)
    elif name == "vee":
        y = 1.4 * np.abs(x) - 0.7
    else:
        raise ValueError(f"unknown curve {name!r}; choose one of {', '.join(CURVES)}")
    return np.stack([x, np.clip(y + rng.normal(0, noise / 2, n), -1.1, 1.1)], 1)


def build(layers: list[int], activation: str, inputs: int = 2) -> nn.Sequential:
    """`inputs` inputs (2: a point's x1, x2; 1: a curve's x) -> hidden layers -> 1 output (a logit,
    or the predicted number)."""
    modules, width = [], inputs
    for units in layers:
        modules += [nn.Linear(width, units), layer(activation)]
        width = units
    return nn.Sequential(*modules, nn.Linear(width, 1))


def get_state(net: nn.Sequential) -> list[dict]:
    return [{"weight": m.weight.detach().tolist(), "bias": m.bias.detach().tolist()}
            for m in net if isinstance(m, nn.Linear)]


def _tensor(value, shape: torch.Size, where: str) -> torch.Tensor:
    """One weight or bias list as a tensor of `shape`, or ValueError saying what is wrong where."""
    expected = "x".join(str(n) for n in shape)
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list of numbers of shape {expected}")
    try:
        t = torch.tensor(value, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        raise ValueError(f"{where} must be a list of numbers of shape {expected}") from None
    if t.shape != shape:
        got = "x".join(str(n) for n in t.shape) or "a single number"
        raise ValueError(f"{where} has shape {got}, the network's layers need {expected}")
    if not t.isfinite().all():
        raise ValueError(f"{where} holds a number that is not finite")
    return t


def set_state(net: nn.Sequential, state: list[dict]) -> None:
    """Load weights sent by a client; ValueError naming the part (state[i].weight or .bias) that
    does not fit the network."""
    linears = [m for m in net if isinstance(m, nn.Linear)]
    if not isinstance(state, list) or len(state) != len(linears):
        raise ValueError(f"the weights do not match the network's layers (it has {len(linears)} weight "
                         f"layers, the state {len(state) if isinstance(state, list) else 'none'})")
    loaded = []
    for i, (m, s) in enumerate(zip(linears, state)):
        if not isinstance(s, dict) or "weight" not in s or "bias" not in s:
            raise ValueError(f"state[{i}] must be {{\"weight\": [...], \"bias\": [...]}}")
        loaded.append((_tensor(s["weight"], m.weight.shape, f"state[{i}].weight"),
                       _tensor(s["bias"], m.bias.shape, f"state[{i}].bias")))
    with torch.no_grad():
        for m, (w, b) in zip(linears, loaded):
            m.weight.copy_(w)
            m.bias.copy_(b)


def grid_probabilities(net: nn.Sequential) -> np.ndarray:
    """(GRID, GRID) probability of class 1, rows from top (y = +EXTENT) to bottom."""
    axis = torch.linspace(-EXTENT, EXTENT, GRID)
    ys, xs = torch.meshgrid(axis.flip(0), axis, indexing="ij")
    with torch.no_grad():
        return torch.sigmoid(net(torch.stack([xs.ravel(), ys.ravel()], 1))).reshape(GRID, GRID).numpy()


def neuron_maps(net: nn.Sequential, inputs: int = 2) -> list[list[np.ndarray]]:
    """Every hidden neuron's output over the plane, per layer: (NEURON_GRID, NEURON_GRID) arrays
    scaled to 0..1 (0.5 = zero for tanh; the layer's own range otherwise), rows from the top.
    With one input (a curve's x) each map is one row, (1, NEURON_GRID), x from left to right."""
    axis = torch.linspace(-EXTENT, EXTENT, NEURON_GRID)
    if inputs == 1:
        h, shape = axis[:, None], (1, NEURON_GRID)
    else:
        ys, xs = torch.meshgrid(axis.flip(0), axis, indexing="ij")
        h, shape = torch.stack([xs.ravel(), ys.ravel()], 1), (NEURON_GRID, NEURON_GRID)  # (G*G, 2)
    maps = []
    with torch.no_grad():
        for m in list(net)[:-1]:
            h = m(h)
            if isinstance(m, nn.Linear):
                continue
            if isinstance(m, nn.Tanh):
                scaled = (h + 1) / 2
            else:
                lo, hi = h.min(0).values, h.max(0).values
                scaled = (h - lo) / (hi - lo).clamp_min(1e-6)
            maps.append([scaled[:, j].reshape(shape).numpy() for j in range(h.shape[1])])
    return maps


def descend(net: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn, learning_rate: float, steps: int,
            seed: int, blown: float = math.inf) -> tuple[list[float], str]:
    """`steps` epochs of mini-batch SGD (batches of BATCH points, shuffled) on loss_fn(output, y);
    the loss after each epoch over all points, and "running", or "diverged" once it is not finite
    or above `blown`."""
    opt = torch.optim.SGD(net.parameters(), lr=learning_rate)
    order = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    for _ in range(steps):
        for batch in torch.randperm(len(x), generator=order).split(BATCH):
            loss = loss_fn(net(x[batch]).squeeze(1), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            epoch_loss = loss_fn(net(x).squeeze(1), y).item()
        if not math.isfinite(epoch_loss) or epoch_loss > blown:
            return losses, "diverged"
        losses.append(epoch_loss)
    return losses, "running"


def train(points: np.ndarray, layers: list[int], activation: str, learning_rate: float, steps: int,
          state: list[dict] | None = None, seed: int = 0) -> dict:
    """`steps` epochs of mini-batch SGD (batches of BATCH points, shuffled) on the binary
    cross-entropy; the loss after each epoch, over all points."""
    torch.manual_seed(seed)
    net = build(layers, activation)
    if state is not None:
        set_state(net, state)
    x = torch.tensor(points[:, :2], dtype=torch.float32)
    y = torch.tensor(points[:, 2], dtype=torch.float32)
    losses, status = descend(net, x, y, F.binary_cross_entropy_with_logits, learning_rate, steps, seed)
    with torch.no_grad():
        logits = net(x).squeeze(1)
        final = F.binary_cross_entropy_with_logits(logits, y).item()
        accuracy = float(((logits > 0).float() == y).float().mean())
    if not math.isfinite(final) or not all(p.isfinite().all() for p in net.parameters()):
        return {"status": "diverged", "loss": [v for v in losses if math.isfinite(v)], "accuracy": None,
                "state": None, "grid": None}
    return {"status": status, "loss": losses, "final_loss": final, "accuracy": accuracy,
            "state": get_state(net), "grid": grid_probabilities(net), "neurons": neuron_maps(net)}


def fit_curve(points: np.ndarray, layers: list[int], activation: str, learning_rate: float, steps: int,
              state: list[dict] | None = None, seed: int = 0) -> dict:
    """Regression: `steps` epochs of mini-batch SGD (batches of BATCH points, shuffled) fitting
    y = f(x) with the mean squared error (the network's output is the number itself, no sigmoid);
    the MSE after each epoch, over all points, and the fitted curve at CURVE_POINTS x."""
    torch.manual_seed(seed)
    net = build(layers, activation, inputs=1)
    if state is not None:
        set_state(net, state)
    x = torch.tensor(points[:, :1], dtype=torch.float32)
    y = torch.tensor(points[:, 1], dtype=torch.float32)
    losses, status = descend(net, x, y, F.mse_loss, learning_rate, steps, seed, blown=1e6)
    with torch.no_grad():
        final = F.mse_loss(net(x).squeeze(1), y).item()
        axis = torch.linspace(-EXTENT, EXTENT, CURVE_POINTS)
        curve = net(axis[:, None]).squeeze(1)
    if status == "diverged" or not math.isfinite(final) or not all(p.isfinite().all() for p in net.parameters()):
        return {"status": "diverged", "loss": [v for v in losses if math.isfinite(v)], "accuracy": None,
                "state": None, "grid": None, "curve": None}
    return {"status": status, "loss": losses, "final_loss": final, "accuracy": None, "state": get_state(net),
            "grid": None, "curve": np.round(torch.stack([axis, curve], 1).numpy().astype(np.float64), 5).tolist(),
            "neurons": neuron_maps(net, inputs=1)}
