"""The gradient descent lab: real torch steps on small problems, and a tiny network that splits
two classes of points."""
from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import torch
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from app.errors import ApiError
from app.serialize import image
from engine import choices, descent, splitdata

router = APIRouter(tags=["descent"])

Finite = Annotated[float, Field(allow_inf_nan=False, ge=-1e4, le=1e4)]
ProblemName = Literal["parabola", "bowl", "valley", "rosenbrock", "line_fit"]


class LineData(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: list[Finite] = Field(min_length=1, max_length=200)
    y: list[Finite] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def same_length(self):
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} values and y has {len(self.y)}: give one y for each x")
        return self


class ProblemRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    problem: ProblemName = "parabola"
    data: LineData | None = Field(None, description="for line_fit: the points (default: the slides' (2, 5), (4, 9))")

    def data_dict(self) -> dict | None:
        return None if self.data is None else self.data.model_dump()


class RunRequest(ProblemRequest):
    optimizer: Literal[choices.OPTIMIZERS] = "sgd"
    learning_rate: float = Field(0.1, gt=0, le=1000, allow_inf_nan=False)
    momentum: float = Field(0.9, ge=0, lt=1, allow_inf_nan=False)
    start: list[Finite] | None = Field(None, description="the starting parameters (default: the problem's)")
    steps: int = Field(1, ge=0, le=10_000, description="optimizer steps to take (at most 10,000)")

    @field_validator("start")
    @classmethod
    def start_fits(cls, start, info: ValidationInfo):
        problem = info.data.get("problem")
        dims = descent.PROBLEMS[problem].dims if problem else None
        if start is not None and dims is not None and len(start) != dims:
            raise ValueError(f"start must have {dims} number(s) for {problem}")
        return start


@router.get("/api/descent/problems")
def problems() -> dict:
    """The problems: name, title, formula, number of parameters, default start, plotting range."""
    return {"problems": [{"name": p.name, "title": p.title, "formula": p.formula, "dims": p.dims,
                          "start": p.start, "view": p.view} for p in descent.PROBLEMS.values()],
            "line_example": descent.LINE_EXAMPLE}


@router.post("/api/descent/run")
def run(body: RunRequest) -> dict:
    """Up to `steps` real optimizer steps: the path (start plus one point per step), the loss and
    gradient at each point, and whether it is still running, converged or diverged. A diverged
    run's last point is where the step that blew up went (`overflow`: the next step's numbers
    were too large to compute, so it is not in the path)."""
    result = descent.run(body.problem, body.optimizer, body.learning_rate, body.momentum, body.start,
                         body.steps, body.data_dict())
    return {"path": result.path, "loss": result.loss, "gradient": result.gradient,
            "status": result.status, "minimum": result.minimum, "steps": len(result.path) - 1,
            "overflow": result.overflow}


@router.post("/api/descent/surface")
def surface(body: ProblemRequest, size: int = 64) -> dict:
    """The loss over the problem's plotting range: a curve (1-D) or a grid (2-D, rows from the top)."""
    spec = descent.PROBLEMS[body.problem]
    data = body.data_dict() or (descent.LINE_EXAMPLE if body.problem == "line_fit" else {})
    size = max(8, min(size, 128))
    axes = [torch.linspace(lo, hi, size if spec.dims == 2 else 201, dtype=torch.float64) for lo, hi in spec.view]
    if spec.dims == 1:
        loss = torch.stack([spec.loss(w.view(1), data) for w in axes[0]])
        return {"x": axes[0].tolist(), "loss": loss.tolist()}
    ys, xs = torch.meshgrid(axes[1].flip(0), axes[0], indexing="ij")
    points = torch.stack([xs.ravel(), ys.ravel()])  # (2, size*size): the loss functions broadcast
    loss = spec.loss(points, data) if body.problem != "line_fit" else _line_grid(points, data)
    return {"x": axes[0].tolist(), "y": axes[1].flip(0).tolist(),
            "loss": np.round(loss.reshape(size, size).numpy(), 6).tolist()}


def _line_grid(points: torch.Tensor, data: dict) -> torch.Tensor:
    x = torch.tensor(data["x"], dtype=torch.float64)
    y = torch.tensor(data["y"], dtype=torch.float64)
    return ((points[0][:, None] * x + points[1][:, None] - y) ** 2).mean(dim=1)


class SplitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: Literal[splitdata.TASKS] = Field("classification", description=(
        "classification: two classes of 2-D points, binary cross-entropy; regression: a curve y = f(x), "
        "one input, the output a number, mean squared error"))
    dataset: Literal[splitdata.DATASETS + splitdata.CURVES] = Field(
        "circles", description=f"classification: {', '.join(splitdata.DATASETS)}; regression: {', '.join(splitdata.CURVES)}")
    noise: float = Field(0.1, ge=0, le=1, allow_inf_nan=False)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    points: list[Annotated[list[Finite], Field(min_length=2, max_length=3)]] | None = Field(
        None, max_length=1000, description=("[[x, y, label 0 or 1], ...] (classification) or [[x, y], ...] "
                                            "(regression) instead of a generated dataset"))
    layers: list[Annotated[int, Field(ge=1, le=16)]] = Field([4, 4], max_length=4,
                                                             description="neurons per hidden layer")
    activation: Literal[choices.SPLIT_ACTIVATIONS] = "tanh"
    learning_rate: float = Field(0.3, gt=0, le=100, allow_inf_nan=False)
    steps: int = Field(1, ge=0, le=200, description="epochs (each one pass of mini-batches of 10 over the points)")
    state: list[dict] | None = Field(None, description="the weights from the last answer (null: start afresh)")

    @field_validator("points")
    @classmethod
    def labels_are_classes(cls, points, info: ValidationInfo):
        if points is None:
            return points
        if info.data.get("task") == "regression":
            if any(len(p) != 2 for p in points):
                raise ValueError("a curve's points are [x, y]: two numbers each")
        elif any(len(p) != 3 or p[2] not in (0, 1) for p in points):
            raise ValueError("each point is [x, y, class]: its third number is its class, 0 or 1")
        return points

    @model_validator(mode="after")
    def dataset_fits_task(self):
        names = splitdata.CURVES if self.task == "regression" else splitdata.DATASETS
        if self.points is None and self.dataset not in names:
            raise ValueError(f"{self.dataset} is not a {self.task} dataset; choose one of {', '.join(names)}")
        return self


def _trained(body: SplitRequest, points: np.ndarray, fit) -> dict:
    """`fit` (splitdata.train or fit_curve) on the points from the body's state; the neurons' maps
    as images, the points and the task beside the result."""
    try:
        result = fit(points, body.layers, body.activation, body.learning_rate, body.steps, body.state, body.seed)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"state: {exc}; send state null to start afresh.",
                       {"state": str(exc)}) from exc
    result["neurons"] = {"layers": [[image(m) for m in layer] for layer in result.pop("neurons", None) or []]}
    result["points"] = np.round(points, 4).tolist()
    result["task"] = body.task
    return result


@router.post("/api/split/step")
def split_step(body: SplitRequest) -> dict:
    """Train the small network `steps` epochs (mini-batches of 10, as TensorFlow Playground);
    returns the new weights (send them back next time), the loss after each epoch, the accuracy,
    the decision boundary as a 48x48 grid of class-1 probabilities (compact image form, bytes 0..255,
    rows from the top, over [-1.2, 1.2]^2) and `neurons`: each hidden neuron's own 20x20 map, per layer.
    With task "regression" the network fits a curve y = f(x) instead (one input, MSE): `curve` is
    the fitted [x, y] at 97 x over [-1.2, 1.2], `grid` and `accuracy` are null, each neuron's map one row."""
    if body.task == "regression":
        points = (np.array(body.points, dtype=np.float64) if body.points
                  else splitdata.make_curve(body.dataset, noise=body.noise, seed=body.seed))
        if len(points) < 2:
            raise ApiError(422, "invalid_request", "Add at least two points before fitting a curve.",
                           {"points": "need at least two points"})
        return _trained(body, points, splitdata.fit_curve)
    points = (np.array(body.points, dtype=np.float64) if body.points
              else splitdata.make_points(body.dataset, noise=body.noise, seed=body.seed))
    if len(points) == 0 or len(set(points[:, 2].tolist())) < 2:
        raise ApiError(422, "invalid_request", "Add points of both classes (0 and 1) before training.",
                       {"points": "need points of both classes"})
    result = _trained(body, points, splitdata.train)
    grid = result.pop("grid")
    result["grid"] = None if grid is None else {**image(grid), "extent": splitdata.EXTENT}
    return result
