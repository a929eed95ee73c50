"""A neuron, and how it learns (the lessons' first half): thin endpoints over engine.neuron."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from app.errors import ApiError
from engine import basics, choices, neuron

router = APIRouter(prefix="/api/neuron", tags=["a neuron"])

Finite = Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False)]
Activation = Literal[neuron.NEURON_SHAPES]  # the activations and the step


class Neuron(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: list[Finite] = Field(min_length=1, max_length=8)
    weights: list[Finite] = Field(min_length=1, max_length=8)
    bias: Finite = 0.0
    activation: Activation = "sigmoid"


class Loss(BaseModel):
    model_config = ConfigDict(extra="forbid")
    probabilities: list[Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]] = Field(min_length=2, max_length=10)
    label: int = Field(ge=0, le=9, description="the true class (its one-hot vector is made here)")


class Net(BaseModel):
    model_config = ConfigDict(extra="forbid")
    w1: list[list[Finite]]
    b1: list[Finite]
    w2: list[list[Finite]]
    b2: list[Finite]


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    net: Net | None = Field(None, description="the weights to step from (default: the lesson's start)")
    x: list[Finite] = Field(neuron.EXAMPLE["x"], min_length=2, max_length=2)
    label: int = Field(neuron.EXAMPLE["label"], ge=0, le=1)
    learning_rate: float = Field(neuron.EXAMPLE["learning_rate"], gt=0, le=100, allow_inf_nan=False)


class Trials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: Finite = Field(neuron.SLIDES_TRIALS["x"], description="the target's x (the slide's 3)")
    y: Finite = Field(neuron.SLIDES_TRIALS["y"], description="the target's y (the slide's 10)")
    trials: list[Annotated[list[Finite], Field(min_length=2, max_length=2)]] = Field(
        neuron.SLIDES_TRIALS["trials"], min_length=1, max_length=20, description="[[a, b], ...]: the trials, in order")


def _explained(fn, *args, field: str, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc), {field: str(exc)}) from exc


@router.get("/example")
def example() -> dict:
    """The lesson's numbers: the slides' neuron (sigmoid(3.2) = 0.96) and the tiny network's start."""
    return {"neuron": neuron.SLIDES_NEURON, "net": neuron.START.__dict__, "step": neuron.EXAMPLE,
            "activations": list(neuron.NEURON_SHAPES), "trials": neuron.SLIDES_TRIALS, "maxout_targets": basics.MAXOUT_LABELS,
            "shapes": choices.NEURON_SHAPES,
            "losses": [{"name": name, "label": label, "use": choices.LOSS_USES[name]} for name, label in choices.LOSSES.items()]}


@router.post("/trials")
def trials(body: Trials) -> dict:
    """y = ax + b by trial for one target (x, y): each trial's prediction a·x + b and its error,
    target - prediction (the slide's six trials of 10 = 3a + b by default)."""
    return {"x": body.x, "y": body.y, "rows": neuron.trials(body.x, body.y, body.trials)}


@router.post("/forward")
def forward(body: Neuron) -> dict:
    """The weighted sum term by term, z, the activation g(z) and its slope g'(z)."""
    return _explained(neuron.neuron, body.inputs, body.weights, body.bias, body.activation, field="weights")


@router.get("/activations")
def activations() -> dict:
    """Every activation function and its derivative on 201 points of [-5, 5]."""
    return neuron.curves()


@router.post("/loss")
def loss(body: Loss) -> dict:
    """MSE, RMSE, cross-entropy and binary cross-entropy of a prediction against the one-hot label."""
    return _explained(neuron.losses, body.probabilities, body.label, field="probabilities")


@router.post("/step")
def step(body: Step) -> dict:
    """One training step of the 2-3-2 network: forward numbers, loss, every gradient (autograd),
    the chain rule for two weights, and the updated weights (send them back to step again)."""
    net = neuron.TinyNet(**body.net.model_dump()) if body.net else neuron.START
    return _explained(neuron.step, net, body.x, body.label, body.learning_rate, field="net")


@router.get("/batches")
def batches(samples: Annotated[int, Query(ge=1, le=10_000_000)] = 1000,
            batch_size: Annotated[int, Query(ge=1, le=100_000)] = 128,
            epochs: Annotated[int, Query(ge=1, le=1000)] = 1) -> dict:
    """Batches per epoch (the last one may be smaller), and steps in all."""
    return neuron.batches(samples, batch_size, epochs)


# --- training basics (lesson 002): initialisation, centring and scaling, maxout, full batch -------

@router.get("/symmetry")
def symmetry(init: Literal[basics.INITS] = "zeros", steps: Annotated[int, Query(ge=0, le=500)] = 100,
             learning_rate: Annotated[float, Query(gt=0, le=10, allow_inf_nan=False)] = 1.0,
             seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> dict:
    """A 2-3-1 network on XOR's points from all-zero or random (standard normal) weights: each step's
    hidden weights, loss and whether the hidden neurons are still identical."""
    return basics.symmetry(init, steps, learning_rate, seed)


@router.get("/scaling")
def scaling(steps: Annotated[int, Query(ge=1, le=2000)] = 200) -> dict:
    """The slide's employees (Age, Salary, Service) centred and scaled, and gradient descent on the
    line fit Service = a·Age + b with Age as it is and centred and scaled."""
    rows = basics.EMPLOYEES["rows"]
    return {**basics.EMPLOYEES, **basics.standardise(rows),
            "descent": basics.scaling_descent([r[0] for r in rows], [r[2] for r in rows], steps)}


@router.get("/maxout")
def maxout(target: Literal[tuple(basics.MAXOUT_TARGETS)] = "abs", steps: Annotated[int, Query(ge=1, le=2000)] = 300,
           learning_rate: Annotated[float, Query(gt=0, le=1, allow_inf_nan=False)] = 0.1) -> dict:
    """One maxout unit, max(w1·x + b1, w2·x + b2), learns its two lines to match a target shape."""
    return basics.maxout_fit(target, steps, learning_rate)


@router.get("/batch-race")
def batch_race(samples: Annotated[int, Query(ge=2, le=5000)] = 1000,
               batch_size: Annotated[int, Query(ge=1, le=5000)] = 128,
               epochs: Annotated[int, Query(ge=1, le=20)] = 5) -> dict:
    """The same line fit by batch gradient descent (one step an epoch, the whole set's gradient) and
    by mini-batches: the loss over all the data after every step of each."""
    return basics.batch_race(samples, batch_size, epochs)
