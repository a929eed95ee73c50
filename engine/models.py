"""Named network architectures. Each is an nn.Sequential of plain layers applied in order,
so that every intermediate output can be recorded by walking the layers (see `layer_outputs`).

Inputs are (B, 1, 28, 28) floats in 0..1, ink bright; outputs are logits (B, classes).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

ARCHITECTURES: dict[str, Callable[[int], nn.Sequential]] = {}
DESCRIPTIONS: dict[str, str] = {}


def architecture(name: str, description: str):
    def register(fn: Callable[[int], nn.Sequential]):
        ARCHITECTURES[name] = fn
        DESCRIPTIONS[name] = description
        return fn
    return register


@architecture("mnist_recipe", "The lesson's Keras recipe: Conv 32 3x3 ReLU, BatchNorm, MaxPool 2, "
              "Dense 100 ReLU, BatchNorm, Dense 10 (he_uniform init).")
def mnist_recipe(classes: int = 10) -> nn.Sequential:
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3),          # (B, 32, 26, 26)
        nn.ReLU(),
        nn.BatchNorm2d(32),
        nn.MaxPool2d(2),              # (B, 32, 13, 13)
        nn.Flatten(),                 # (B, 5408)
        nn.Linear(32 * 13 * 13, 100),
        nn.ReLU(),
        nn.BatchNorm1d(100),
        nn.Linear(100, classes),      # (B, classes); softmax is applied at prediction time
    )
    for layer in net:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")  # Keras he_uniform
            nn.init.zeros_(layer.bias)
    return net


def _conv_block(c_in: int, c_out: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


@architecture("compact_cnn", "Three conv blocks (24 5x5, 48 3x3, 64 3x3; BatchNorm, ReLU, MaxPool 2), "
              "Dense 128 with dropout, Dense 10. About 115k weights.")
def compact_cnn(classes: int = 10) -> nn.Sequential:
    return nn.Sequential(
        *_conv_block(1, 24, 5), nn.MaxPool2d(2),    # (B, 24, 14, 14)
        *_conv_block(24, 48, 3), nn.MaxPool2d(2),   # (B, 48, 7, 7)
        *_conv_block(48, 64, 3), nn.MaxPool2d(2),   # (B, 64, 3, 3)
        nn.Flatten(),                               # (B, 576)
        nn.Linear(64 * 3 * 3, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(),
        nn.Dropout(0.25),
        nn.Linear(128, classes),                    # (B, classes)
    )


def build(name: str, classes: int = 10) -> nn.Sequential:
    if name not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {name!r}; choose one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name](classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.inference_mode()
def layer_outputs(model: nn.Sequential, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Apply the layers in order and record each output: [(layer type, (B, ...)), ...]."""
    outputs = []
    for layer in model:
        x = layer(x)
        outputs.append((type(layer).__name__, x))
    return outputs
