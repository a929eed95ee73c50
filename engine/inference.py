"""Classify one image with a stored model: prepare it, run the network, softmax. And compile a
network for the torch-free reader of live frames (engine.lite)."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from engine.lite import Classification, Program, classifications
from engine.preprocess import Prepared, prepare
from engine.stores.store import StoredModel

__all__ = ["Classification", "classify", "classify_prepared", "probabilities", "program_of"]


@torch.inference_mode()
def probabilities(model: StoredModel, inputs: np.ndarray) -> np.ndarray:
    """Softmax probabilities (N, classes) for prepared inputs (N, 28, 28) or (N, C, H, W) in 0..1."""
    x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    x = x.unsqueeze(1) if x.ndim == 3 else x  # (N, C, H, W)
    return torch.softmax(model.module(x).double(), dim=1).numpy()


def classify(model: StoredModel, img: Image.Image) -> Classification:
    return classify_prepared(model, [prepare(img, model.card.preprocess)])[0]


def classify_prepared(model: StoredModel, prepared: list[Prepared]) -> list[Classification]:
    """Classify inputs already prepared for this model, in one forward pass (engine.lite.classifications)."""
    return classifications(model.card.id, model.card.labels, prepared, lambda x: probabilities(model, x))


def program_of(model: StoredModel) -> Program:
    """The network as numpy operations (engine.lite), for reading without torch. ValueError for a
    layer type the reader does not know."""
    def array(t):
        return None if t is None else t.detach().float().numpy().copy()
    ops = []
    for m in model.module:
        if isinstance(m, nn.Conv2d):
            if m.stride != (1, 1) or m.dilation != (1, 1) or m.groups != 1 or m.padding[0] != m.padding[1]:
                raise ValueError(f"the live reader cannot run {m}")
            ops.append(("conv", array(m.weight), array(m.bias), int(m.padding[0])))
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            ops.append(("pool", "max" if isinstance(m, nn.MaxPool2d) else "avg", int(m.kernel_size)))
        elif isinstance(m, nn.Linear):
            ops.append(("dense", array(m.weight), array(m.bias)))
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            factor = m.weight / torch.sqrt(m.running_var + m.eps)
            ops.append(("scale", array(factor), array(m.bias - m.running_mean * factor)))
        elif isinstance(m, nn.Flatten):
            ops.append(("flatten",))
        elif isinstance(m, nn.LeakyReLU):
            ops.append(("fn", "leaky_relu", float(m.negative_slope)))
        elif isinstance(m, nn.ELU):
            ops.append(("fn", "elu", float(m.alpha)))
        elif isinstance(m, (nn.ReLU, nn.Sigmoid, nn.Tanh)):
            ops.append(("fn", type(m).__name__.lower()))
        elif not isinstance(m, (nn.Dropout, nn.Identity)):
            raise ValueError(f"the live reader cannot run {type(m).__name__}")
    return Program(model.card.id, list(model.card.labels), model.card.preprocess, ops)
