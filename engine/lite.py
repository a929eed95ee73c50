"""Reading images without torch: a trained network compiled to a few numpy operations (the
compiling, from the torch module, is engine.inference.program_of), and what a reading is.

The live-frame reader runs in a process of its own; with only numpy it needs about a fifth of the
memory a second torch would, and starts in a fraction of the time. Torch stays the reference:
tests/test_lite.py checks every layer type against it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from engine.choices import ELU_ALPHA, LEAKY_SLOPE
from engine.preprocess import Prepared


@dataclass
class Classification:
    model_id: str
    labels: list[str]
    prepared: Prepared
    probabilities: list[float] | None  # same order as labels; None when there was no ink

    @property
    def prediction(self) -> str | None:
        if self.probabilities is None:
            return None
        return self.labels[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float | None:
        """The probability of the prediction."""
        return None if self.probabilities is None else max(self.probabilities)


@dataclass
class Program:
    """A network as numpy operations, in order: ("conv", weight (O, I, k, k), bias or None,
    padding), ("pool", "max" | "avg", size), ("dense", weight (O, I), bias or None), ("scale",
    per-channel factor, shift) (an evaluation-mode BatchNorm), ("flatten",), ("fn", name[, slope])."""
    model_id: str
    labels: list[str]
    preprocess: str
    ops: list[tuple] = field(default_factory=list)


def _conv(x: np.ndarray, weight: np.ndarray, bias, padding: int) -> np.ndarray:
    if padding:  # np.pad does the same, at several times the cost for arrays this small
        framed = np.zeros(x.shape[:2] + (x.shape[2] + 2 * padding, x.shape[3] + 2 * padding), x.dtype)
        framed[:, :, padding:-padding, padding:-padding] = x
        x = framed
    n, _, h, w = x.shape
    out_channels, _, kh, kw = weight.shape
    h, w = h - kh + 1, w - kw + 1
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))  # (N, I, H', W', k, k), no copy
    columns = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, -1)  # one row per output pixel
    out = columns @ weight.reshape(out_channels, -1).T  # (N*H'*W', O): one matrix product
    if bias is not None:
        out += bias
    return out.reshape(n, h, w, out_channels).transpose(0, 3, 1, 2)


def _pool(x: np.ndarray, kind: str, size: int) -> np.ndarray:
    n, c, h, w = x.shape
    h, w = h // size, w // size
    blocks = x[:, :, :h * size, :w * size].reshape(n, c, h, size, w, size)
    return blocks.max(axis=(3, 5)) if kind == "max" else blocks.mean(axis=(3, 5))


# A network's activation layers (engine.choices.LAYER_ACTIVATIONS) in numpy. A compiled program
# carries each layer's own slope or alpha; without one, the value every layer is built with.
FUNCTIONS = {
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "leaky_relu": lambda x, slope=LEAKY_SLOPE: np.where(x > 0, x, x * slope),
    "elu": lambda x, alpha=ELU_ALPHA: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))),
}


def forward(program: Program, x: np.ndarray) -> np.ndarray:
    """Logits (N, classes) for inputs (N, C, H, W), float32."""
    for op in program.ops:
        kind = op[0]
        if kind == "conv":
            x = _conv(x, *op[1:])
        elif kind == "pool":
            x = _pool(x, *op[1:])
        elif kind == "dense":
            x = x @ op[1].T if op[2] is None else x @ op[1].T + op[2]
        elif kind == "scale":
            shape = (1, -1) + (1,) * (x.ndim - 2)
            x = x * op[1].reshape(shape) + op[2].reshape(shape)
        elif kind == "flatten":
            x = x.reshape(len(x), -1)
        elif kind == "fn":
            x = FUNCTIONS[op[1]](x, *op[2:])
    return x


def probabilities(program: Program, inputs: np.ndarray) -> np.ndarray:
    """Softmax probabilities (N, classes) for prepared inputs (N, 28, 28) or (N, C, H, W) in 0..1."""
    x = np.ascontiguousarray(inputs, dtype=np.float32)
    logits = forward(program, x[:, None] if x.ndim == 3 else x).astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def classifications(model_id: str, labels: list[str], prepared: list[Prepared], read) -> list[Classification]:
    """Classify inputs already prepared for one network, in one pass (frames that arrive together
    from many drawers share it); `read` maps a stack of inputs to their probabilities (numpy here,
    torch in engine.inference). The ones without ink get no probabilities."""
    inked = [p.input for p in prepared if not p.empty]
    probs = iter(read(np.stack(inked)).tolist() if inked else [])
    return [Classification(model_id, labels, p, None if p.empty else next(probs)) for p in prepared]


def classify_prepared(program: Program, prepared: list[Prepared]) -> list[Classification]:
    return classifications(program.model_id, program.labels, prepared, lambda x: probabilities(program, x))
