"""The names a student picks, declared once: activations, optimizers and a training job's statuses.

Every page and API that offers one of these names gets it, and what it means, from here: the
neuron page's curves (engine.neuron), the split network (engine.splitdata), the lab's layers
(engine.models, read without torch by engine.lite), the descent lab (engine.descent) and training
(engine.training). Torch is imported only when a layer, a function or an optimizer is made, so
the numpy-only frame reader (engine.lite) can read the constants without loading torch.
"""
from __future__ import annotations

# Leaky ReLU's slope below zero. 0.1, not torch's default 0.01: the neuron page's curves and the
# split network have always drawn 0.1 (tests/test_neuron.py: leaky_relu(-2) = -0.2), and at 0.01
# the leak is a drop of 0.05 over the chart's [-5, 0], so leaky ReLU looks exactly like ReLU. One
# value everywhere, so "leaky ReLU" is the same function on every page and in every network.
LEAKY_SLOPE = 0.1
ELU_ALPHA = 1.0       # ELU's saturation value below zero: -alpha (torch's default)
MAXOUT_SLOPE = 0.25   # maxout of two linear pieces, max(z, 0.25 z): it can learn ReLU-like shapes

# name -> (the torch.nn layer, its arguments), in the order the pages list them. None: a shape
# shown on one neuron only (the neuron page), not offered as a network's layer.
ACTIVATIONS = {
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "relu": ("ReLU", {}),
    "leaky_relu": ("LeakyReLU", {"negative_slope": LEAKY_SLOPE}),
    "elu": ("ELU", {"alpha": ELU_ALPHA}),
    "maxout": None,
}
# Shapes a neuron on the neuron page shows beside the activations, never a network's layer: the
# perceptron's step, 1 from z = 0 on and 0 below. Its slope is 0 wherever it has one, so no gradient
# flows back through it: the lesson draws it beside sigmoid, its smooth stand-in.
NEURON_SHAPES = {"step": "step function"}  # name -> how the neuron page's menu says it
LAYER_ACTIVATIONS = tuple(name for name, made in ACTIVATIONS.items() if made is not None)
DEFAULT_LAYER_ACTIVATION = "relu"  # the one a new layer of the lab (the train page) starts with, as its presets'

# How the lessons spell each one: the split exercise's menu shows these (through the page's
# translation, app/i18n); the lab's layer menu shows the names themselves, as its layer table does.
ACTIVATION_LABELS = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "ReLU", "leaky_relu": "leaky ReLU",
                     "elu": "ELU", "maxout": "maxout"}

# The split exercise (the descent page's small network on 2-D points) offers four of the layers, in
# its menu's order, tanh (its default) first: the four its lesson compares (README, /descent), two
# that saturate and two rectifiers. ELU stays a lab layer, so the split's menu is the lesson's; maxout
# is no layer at all. engine.splitdata builds any layer: this is the exercise's menu, not a limit.
SPLIT_ACTIVATIONS = ("tanh", "sigmoid", "relu", "leaky_relu")
DEFAULT_SPLIT_ACTIVATION = SPLIT_ACTIVATIONS[0]  # the one the split exercise starts with (its page config)

OPTIMIZERS = ("sgd", "momentum", "adam")
OPTIMIZER_LABELS = {"sgd": "SGD", "momentum": "Momentum", "adam": "Adam"}  # the descent page's menu
DEFAULT_OPTIMIZER = "sgd"  # the one the descent page's exercises start with (its page config)
# The lab (the train page) trains with momentum 0.9 (engine.training's TrainConfig) and cannot change
# it, so its menu says so; it starts with momentum, as a training job does when none is named.
LAB_OPTIMIZER_LABELS = {**OPTIMIZER_LABELS, "momentum": "Momentum (0.9)"}
DEFAULT_LAB_OPTIMIZER = "momentum"

# A training job's statuses: while it can still change (ACTIVE), and once it never will (FINAL).
# The train and teach pages get them in their page config; the district's Redis script is written from FINAL.
ACTIVE = ("queued", "running", "paused")
FINAL = ("done", "stopped", "diverged", "failed", "interrupted")
# Each by its upper-case name, for the pages' scripts (their config's jobStatus: {"QUEUED": "queued", ...}):
# they compare a job's status with these, never with a name written by hand.
JOB_STATUSES = {status.upper(): status for status in ACTIVE + FINAL}
DONE = JOB_STATUSES["DONE"]  # what the server writes itself for work that ends at once (a project taught by transfer)


def _unknown(kind: str, name, names) -> ValueError:
    return ValueError(f"unknown {kind} {name!r}; choose one of {', '.join(names)}")


def layer(name: str):
    """A fresh torch.nn module for a network's activation layer. ValueError for an unknown name
    (or one that is not a layer, maxout)."""
    from torch import nn

    if ACTIVATIONS.get(name) is None:
        raise _unknown("activation", name, LAYER_ACTIVATIONS)
    cls, kwargs = ACTIVATIONS[name]
    return getattr(nn, cls)(**kwargs)


def activate(name: str, z):
    """g(z) for a tensor z, elementwise (any dtype, autograd-friendly): the same function as
    `layer(name)`, plus maxout."""
    import torch

    if name == "maxout":
        return torch.maximum(z, MAXOUT_SLOPE * z)
    if name == "step":  # 0 * z keeps it in the graph: its slope is 0, never missing
        return (z >= 0).to(z.dtype) + 0 * z
    if name not in ACTIVATIONS:
        raise _unknown("activation", name, ACTIVATIONS)
    return layer(name)(z)


def make_optimizer(name: str, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0):
    """The torch optimizer a name means: plain SGD, SGD with momentum (`momentum`), or Adam."""
    import torch

    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name not in OPTIMIZERS:
        raise _unknown("optimizer", name, OPTIMIZERS)
    return torch.optim.SGD(params, lr=lr, momentum=momentum if name == "momentum" else 0.0, weight_decay=weight_decay)


# The cost functions lesson 002's table names, in its order, with what each is for (its words);
# the neuron page's loss tab shows one row for each, its values computed by engine.neuron.losses.
LOSSES = {"mse": "Mean Square Error (MSE)", "rmse": "Root Mean Square Error (RMSE)",
          "bce": "Binary Cross Entropy", "cross_entropy": "Categorical Cross Entropy"}
LOSS_USES = {"mse": "Regression", "rmse": "Regression", "bce": "Binary classification",
             "cross_entropy": "Multi-class classification"}

# The split exercise's regression task starts with the slides' Keras example (lesson 002):
# Dense(3, activation='relu'), Dense(3, activation='relu'), Dense(1), loss='mse'.
REGRESSION_START = {"layers": "3,3", "activation": "relu"}
