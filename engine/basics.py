"""Training basics lesson 002 names, each shown with real torch numbers: weight initialisation (all
zeros cannot break the symmetry of a hidden layer; random can), centring and scaling of inputs (its
Age/Salary table, and what it does to gradient descent on a line fit), maxout as the max of two
learned linear pieces, and full-batch beside mini-batch gradient descent."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine import descent

INITS = ("zeros", "random")
# The four corners of XOR, and its centre as a fifth point of class 1: no one straight line splits
# them, so the hidden neurons must come to differ. (With XOR's corners alone the classes are half
# and half, and from all zeros not one weight would ever move; the fifth point lets them move.)
XOR = {"x": [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.5, 0.5]], "y": [0.0, 1.0, 1.0, 0.0, 1.0]}
HIDDEN = 3


def symmetry(init: str, steps: int = 50, learning_rate: float = 1.0, seed: int = 0) -> dict:
    """A 2-3-1 network (sigmoid hidden layer, sigmoid output, binary cross-entropy) trained on XOR's points
    by full-batch gradient descent from all-zero weights or from random ones (a standard normal,
    mean 0 and SD 1, as the slide says). Every step's hidden weights (one row per neuron: its two
    input weights and its bias) and loss; `identical` says whether the three hidden neurons are
    still one and the same."""
    if init not in INITS:
        raise ValueError(f"unknown initialisation {init!r}; choose one of {', '.join(INITS)}")
    gen = torch.Generator().manual_seed(seed)
    shapes = {"w1": (HIDDEN, 2), "b1": (HIDDEN,), "w2": (1, HIDDEN), "b2": (1,)}
    p = {k: (torch.zeros(s, dtype=torch.float64) if init == "zeros"
             else torch.randn(s, generator=gen, dtype=torch.float64)).requires_grad_() for k, s in shapes.items()}
    x = torch.tensor(XOR["x"], dtype=torch.float64)
    y = torch.tensor(XOR["y"], dtype=torch.float64)
    opt = torch.optim.SGD(p.values(), lr=learning_rate)
    history = []
    for step in range(steps + 1):
        h = torch.sigmoid(x @ p["w1"].T + p["b1"])
        out = (h @ p["w2"].T + p["b2"]).squeeze(1)
        loss = F.binary_cross_entropy_with_logits(out, y)
        hidden = torch.cat([p["w1"], p["b1"][:, None]], 1).detach()
        history.append({"step": step, "loss": loss.item(), "hidden": hidden.tolist(),
                        "out": p["w2"].detach()[0].tolist(),
                        "identical": bool(torch.allclose(hidden, hidden[:1].expand_as(hidden), atol=1e-12))})
        if step < steps:
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        h = torch.sigmoid(x @ p["w1"].T + p["b1"])
        predicted = torch.sigmoid(h @ p["w2"].T + p["b2"]).squeeze(1)
    return {"init": init, "history": history, "predicted": predicted.tolist(), "targets": XOR["y"],
            "inputs": XOR["x"], "learning_rate": learning_rate}


# --- centring and scaling: the slide's three employees --------------------------------------------

EMPLOYEES = {"features": ["Age", "Salary", "Service"], "ids": [1001, 1002, 1003],
             "rows": [[28.0, 40000.0, 5.0], [47.0, 60000.0, 20.0], [35.0, 55000.0, 10.0]]}


def standardise(rows: list[list[float]]) -> dict:
    """Each column centred on its mean and divided by its standard deviation (the population's, as
    the slide's numbers are: Age 28 -> -1.10). A column whose values are all equal becomes 0."""
    table = np.array(rows, dtype=np.float64)
    mean, sd = table.mean(0), table.std(0)
    scaled = (table - mean) / np.where(sd > 0, sd, 1.0)
    return {"mean": mean.tolist(), "sd": sd.tolist(), "scaled": scaled.tolist()}


def scaling_descent(x: list[float], y: list[float], steps: int = 200) -> dict:
    """Gradient descent on the line fit y = ax + b, once with x as it is and once with x centred and
    scaled, each at the largest learning rate that does not diverge there (0.9 × 2 / the loss's
    steepest curvature, which raw values of tens make tiny). Each run's losses, where it got to, and
    how many steps it took to reach the minimum (null: not within `steps`)."""
    runs = {}
    for name, xs in (("raw", np.array(x, dtype=np.float64)), ("scaled", None)):
        if xs is None:
            raw = np.array(x, dtype=np.float64)
            xs = (raw - raw.mean()) / (raw.std() or 1.0)
        curvature = 2 * np.linalg.eigvalsh(np.array([[np.mean(xs ** 2), np.mean(xs)], [np.mean(xs), 1.0]])).max()
        rate = float(0.9 * 2 / curvature)
        result = descent.run("line_fit", "sgd", rate, start=[0.0, 0.0], steps=steps,
                             data={"x": xs.tolist(), "y": list(map(float, y))})
        runs[name] = {"x": xs.tolist(), "learning_rate": rate, "loss": result.loss, "status": result.status,
                      "end": result.path[-1], "minimum": result.minimum,
                      "steps_to_minimum": len(result.path) - 1 if result.status == "converged" else None}
    return runs


# --- maxout: the max of two learned lines ----------------------------------------------------------

class Maxout(nn.Module):
    """`pieces` linear functions of the input per output, and the largest of them:
    max(w1·x + b1, w2·x + b2) for two pieces (Goodfellow et al.'s maxout unit)."""

    def __init__(self, inputs: int, outputs: int, pieces: int = 2):
        super().__init__()
        self.outputs, self.pieces = outputs, pieces
        self.linear = nn.Linear(inputs, outputs * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(*x.shape[:-1], self.outputs, self.pieces).max(-1).values


MAXOUT_TARGETS = {  # shapes two lines can make: ReLU, the absolute value, a leaky ReLU
    "relu": lambda x: torch.relu(x),
    "abs": lambda x: x.abs(),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.1),
}
MAXOUT_LABELS = {"relu": "ReLU", "abs": "|x|", "leaky_relu": "leaky ReLU"}  # as the page's menu says them


def maxout_fit(target: str = "abs", steps: int = 300, learning_rate: float = 0.1, seed: int = 0) -> dict:
    """One maxout unit of one input learns its two lines by gradient descent (full batch, MSE) to
    match a target shape on [-2, 2]: the two lines (slope, intercept) at the end, their max, and
    the loss every step."""
    if target not in MAXOUT_TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(MAXOUT_TARGETS)}")
    torch.manual_seed(seed)
    unit = Maxout(1, 1).double()
    x = torch.linspace(-2, 2, 41, dtype=torch.float64)[:, None]
    y = MAXOUT_TARGETS[target](x)
    opt = torch.optim.SGD(unit.parameters(), lr=learning_rate)
    losses = []
    for _ in range(steps):
        loss = F.mse_loss(unit(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        w, b = unit.linear.weight[:, 0], unit.linear.bias
        out = unit(x)
        final = F.mse_loss(out, y).item()
    return {"target": target, "x": x[:, 0].tolist(), "y": y[:, 0].tolist(), "output": out[:, 0].tolist(),
            "pieces": [{"slope": w[k].item(), "intercept": b[k].item()} for k in range(2)],
            "loss": losses, "final_loss": final}


# --- full batch beside mini-batch -----------------------------------------------------------------

def batch_race(samples: int = 1000, batch_size: int = 128, epochs: int = 5, learning_rate: float = 0.1,
               seed: int = 0) -> dict:
    """The same line fit (y = 2x + 1 plus noise, `samples` points) trained the two ways the slide
    names: batch gradient descent (one step an epoch, the gradient of the whole training set) and
    mini-batch (ceil(samples / batch_size) steps an epoch, each on one shuffled batch). The loss over
    all the data after every step of each, and where (a, b) ended."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(samples, generator=gen, dtype=torch.float64) * 2 - 1
    y = 2 * x + 1 + 0.3 * torch.randn(samples, generator=gen, dtype=torch.float64)
    runs = {}
    for name, size in (("full", samples), ("mini", min(batch_size, samples))):
        p = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([p], lr=learning_rate)
        order = torch.Generator().manual_seed(seed)
        losses, epoch_ends = [], []
        for _ in range(epochs):
            for batch in torch.randperm(samples, generator=order).split(size):
                loss = ((p[0] * x[batch] + p[1] - y[batch]) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    losses.append(((p[0] * x + p[1] - y) ** 2).mean().item())
            epoch_ends.append(len(losses))
        runs[name] = {"batch_size": size, "steps_per_epoch": math.ceil(samples / size), "loss": losses,
                      "epoch_ends": epoch_ends, "end": p.detach().tolist()}
    return runs
