"""A neuron, and how it learns (the lessons' first half): thin endpoints over engine.neuron."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from app.errors import ApiError
from engine import choices, neuron

router = APIRouter(prefix="/api/neuron", tags=["a neuron"])

Finite = Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False)]
Activation = Literal[tuple(choices.ACTIVATIONS)]


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


def _explained(fn, *args, field: str, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc), {field: str(exc)}) from exc


@router.get("/example")
def example() -> dict:
    """The lesson's numbers: the slides' neuron (sigmoid(3.2) = 0.96) and the tiny network's start."""
    return {"neuron": neuron.SLIDES_NEURON, "net": neuron.START.__dict__, "step": neuron.EXAMPLE,
            "activations": list(neuron.ACTIVATIONS)}


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
    """MSE and cross-entropy of a prediction against the one-hot label."""
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
