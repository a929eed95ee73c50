"""Gradient descent on small problems, one real torch autograd + optimizer step at a time.

Problems map parameters (a 1-D or 2-D tensor) to a loss. `run` records the path: the start plus
one point per step, the loss and the gradient at each point, and stops early when the run has
converged (at the minimum) or diverged (the loss or the parameters blew up). The step that blew up
is recorded (where it jumped to, and the loss there), so a page can show it; a step whose numbers
cannot be computed at all is not, and `overflow` says so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from engine.choices import OPTIMIZERS as OPTIMIZERS  # the optimizers the descent lab offers
from engine.choices import make_optimizer

Loss = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Problem:
    name: str
    title: str
    formula: str
    dims: int
    start: tuple[float, ...]
    view: tuple[tuple[float, float], ...]   # plotting range per parameter
    loss: Callable[[torch.Tensor, dict], torch.Tensor]
    minimum: Callable[[dict], float] = lambda data: 0.0


def _line_mse(p: torch.Tensor, data: dict) -> torch.Tensor:
    """MSE = 1/N * sum((a*x + b - y)^2), as the slides define it; p = [a, b]."""
    x = torch.tensor(data["x"], dtype=p.dtype)
    y = torch.tensor(data["y"], dtype=p.dtype)
    return ((p[0] * x + p[1] - y) ** 2).mean()


def _line_minimum(data: dict) -> float:
    x = torch.tensor(data["x"], dtype=torch.float64)
    y = torch.tensor(data["y"], dtype=torch.float64)
    design = torch.stack([x, torch.ones_like(x)], dim=1)
    solution = torch.linalg.lstsq(design, y.unsqueeze(1)).solution.squeeze(1)
    return float(_line_mse(solution, data))


LINE_EXAMPLE = {"x": [2.0, 4.0], "y": [5.0, 9.0]}  # the slides: 5 = 2a + b, 9 = 4a + b

PROBLEMS = {p.name: p for p in [
    Problem("parabola", "A convex loss curve", "L(w) = (w - 2)²", 1, (-4.0,), ((-6.0, 10.0),),
            lambda p, d: (p[0] - 2) ** 2),
    Problem("bowl", "A round bowl", "L(x, y) = x² + y²", 2, (-4.0, 3.0), ((-5.0, 5.0), (-5.0, 5.0)),
            lambda p, d: p[0] ** 2 + p[1] ** 2),
    Problem("valley", "A long narrow valley", "L(x, y) = 0.05·x² + 2·y²", 2, (-9.0, 2.0),
            ((-10.0, 10.0), (-4.0, 4.0)), lambda p, d: 0.05 * p[0] ** 2 + 2 * p[1] ** 2),
    Problem("rosenbrock", "Rosenbrock's banana", "L(x, y) = (1 - x)² + 100·(y - x²)²", 2, (-1.5, 2.0),
            ((-2.0, 2.0), (-1.0, 3.0)), lambda p, d: (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2),
    Problem("line_fit", "Fit a line y = ax + b", "MSE(a, b) = 1/N · Σ (a·x + b − y)²", 2, (1.0, 1.0),
            ((-2.0, 6.0), (-4.0, 6.0)), _line_mse, _line_minimum),
]}

BLOW_UP = 1e4        # the loss this many times its start, or a parameter past 1e6, is divergence
TOLERANCE = 1e-6     # loss this close to the minimum (relative to the start) is convergence


@dataclass
class DescentResult:
    path: list[list[float]] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    gradient: list[list[float]] = field(default_factory=list)
    status: str = "running"   # running | converged | diverged
    minimum: float = 0.0
    overflow: bool = False    # diverged because the next step's numbers were too large to compute


def _finite(values) -> bool:
    return all(math.isfinite(v) for v in values)


def run(problem: str, optimizer: str = "sgd", learning_rate: float = 0.1, momentum: float = 0.9,
        start: list[float] | None = None, steps: int = 1, data: dict | None = None) -> DescentResult:
    """Take up to `steps` optimizer steps from `start`, recording the path."""
    spec = PROBLEMS[problem]
    data = data or (LINE_EXAMPLE if problem == "line_fit" else {})
    p = torch.tensor(list(start if start is not None else spec.start), dtype=torch.float64, requires_grad=True)
    opt = make_optimizer(optimizer, [p], learning_rate, momentum)
    result = DescentResult(minimum=spec.minimum(data))
    first_gap = None
    for step in range(steps + 1):
        opt.zero_grad()
        loss = spec.loss(p, data)
        loss.backward()
        value, point, grad = loss.item(), p.detach().tolist(), p.grad.tolist()
        if not _finite([value, *point, *grad]):
            result.status, result.overflow = "diverged", True
            return result
        result.path.append(point)
        result.loss.append(value)
        result.gradient.append(grad)
        if first_gap is not None and (value - result.minimum > BLOW_UP * max(first_gap, 1e-12)
                                      or max(map(abs, point)) > 1e6):
            result.status = "diverged"  # the step that blew up is kept: where it went, and its loss
            return result
        gap = value - result.minimum
        first_gap = gap if first_gap is None else first_gap
        if gap <= TOLERANCE * max(first_gap, 1.0) and max(map(abs, grad)) < 1e-3:
            result.status = "converged"
            return result
        if step < steps:
            opt.step()
    return result
