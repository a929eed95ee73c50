"""Network architectures as plain data: a list of layer specs, built into an nn.Sequential of
plain layers applied in order (so every intermediate output can be recorded, `layer_outputs`).

A layer spec is a dict: {"type": "conv", "filters": 32, "kernel": 3, "padding": "valid"|"same",
"activation": "relu", "bias": true}, {"type": "pool", "size": 2}, {"type": "dense", "units": 100,
"activation": "relu"}, {"type": "batchnorm"}, {"type": "dropout", "rate": 0.25},
{"type": "activation", "fn": "relu"}. A Flatten is inserted before the first dense layer and the
output layer (dense, one unit per class, no activation: softmax comes at prediction time) is
appended. Inputs are (B, 1, 28, 28) floats in 0..1, ink bright; outputs are logits (B, classes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from engine import choices
from engine.refusal import Refusal

LAYER_TYPES = ("conv", "pool", "dense", "batchnorm", "dropout", "activation")
INPUT_SHAPE = (1, 28, 28)


class ArchitectureError(Refusal, ValueError):
    """The layer list cannot be built (422 invalid_request, field "architecture"); `index` is the
    offending layer (or None). A ValueError too: request validators turn it into their 422."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(422, "invalid_request", message, "architecture")
        self.index = index

    def __reduce__(self):
        return type(self), (self.message, self.index)


@dataclass(frozen=True)
class Architecture:
    name: str
    title: str
    description: str
    layers: list[dict] = field(default_factory=list)
    init: str = "default"  # or "he_uniform" (Keras' he_uniform, zero biases)


def _conv(filters, kernel, activation=None, padding="valid", bias=True):
    return {"type": "conv", "filters": filters, "kernel": kernel, "padding": padding,
            "activation": activation, "bias": bias}


def _dense(units, activation=None, bias=True):
    return {"type": "dense", "units": units, "activation": activation, "bias": bias}


BN, POOL = {"type": "batchnorm"}, {"type": "pool", "size": 2}
RELU = {"type": "activation", "fn": "relu"}

def _bn_cnn(blocks: list[tuple[int, int]], dense: int, dropout: float) -> list[dict]:
    """Conv (no bias), BatchNorm, ReLU, MaxPool 2 per (filters, kernel) block; then a dense layer
    with BatchNorm, ReLU and dropout."""
    layers = [layer for filters, k in blocks for layer in (_conv(filters, k, padding="same", bias=False), BN, RELU, POOL)]
    return layers + [_dense(dense, bias=False), BN, RELU, {"type": "dropout", "rate": dropout}]


PRESETS = {a.name: a for a in [
    Architecture("mnist_recipe", "Lesson recipe CNN",
                 "The lesson's Keras recipe: Conv 32 3x3 ReLU, BatchNorm, MaxPool 2, Dense 100 ReLU, "
                 "BatchNorm, Dense 10 (he_uniform init).",
                 [_conv(32, 3, "relu"), BN, POOL, _dense(100, "relu"), BN], init="he_uniform"),
    Architecture("mlp_16", "MLP 784-16-10", "One hidden layer of 16 neurons, as in the slides' MNIST 784-16-10.",
                 [_dense(16, "relu")]),
    Architecture("mlp_512_128", "MLP 784-512-128-10", "Two hidden layers (512, 128), as in the slides.",
                 [_dense(512, "relu"), _dense(128, "relu")]),
    Architecture("lenet", "LeNet-like CNN", "Conv 6 5x5, pool, conv 16 5x5, pool, dense 120, dense 84.",
                 [_conv(6, 5, "relu", "same"), POOL, _conv(16, 5, "relu"), POOL, _dense(120, "relu"),
                  _dense(84, "relu")]),
    Architecture("digit_cnn", "Digit CNN (the default digit model)",
                 "Three conv blocks (16, 32, 64 filters 3x3; BatchNorm, ReLU, MaxPool 2), Dense 64 with "
                 "dropout, Dense 10. About 61k weights: fast to train on a small CPU.",
                 _bn_cnn([(16, 3), (32, 3), (64, 3)], dense=64, dropout=0.2)),
    Architecture("compact_cnn", "Compact CNN (the Fashion-MNIST model)",
                 "Three conv blocks (24 5x5, 48 3x3, 64 3x3; BatchNorm, ReLU, MaxPool 2), Dense 128 with "
                 "dropout, Dense 10. About 115k weights.",
                 _bn_cnn([(24, 5), (48, 3), (64, 3)], dense=128, dropout=0.25)),
]}
ARCHITECTURES = PRESETS  # name -> Architecture

PHOTO_INPUT = (3, 32, 32)  # a project's colour photos (engine.preprocess.prepare_photo)
PHOTO_LAYERS = _bn_cnn([(16, 3), (32, 3), (64, 3)], dense=64, dropout=0.3)  # ~88k weights
PHOTO_DESCRIPTION = ("Three conv blocks (16, 32, 64 filters 3x3 over the red, green and blue channels; "
                     "BatchNorm, ReLU, MaxPool 2), Dense 64 with dropout, one output per class.")
DESCRIPTIONS = {name: a.description for name, a in PRESETS.items()}
DESCRIPTIONS["transfer_head"] = ("Transfer learning: the ImageNet network's 1280 features of each photo (frozen), "
                                 "and one dense layer from them to the classes, the only part trained.")


def _int(spec: dict, key: str, lo: int, hi: int, index: int, default=None) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ArchitectureError(f"layer {index + 1} ({spec.get('type')}): {key} must be a whole number "
                                f"from {lo} to {hi}, not {value!r}", index)
    return value


def _activation(name, index: int) -> list[nn.Module]:
    if name in (None, "none", "linear"):
        return []
    if name not in choices.LAYER_ACTIVATIONS:
        raise ArchitectureError(f"layer {index + 1}: unknown activation {name!r}; choose one of "
                                f"{', '.join(choices.LAYER_ACTIVATIONS)}", index)
    return [choices.layer(name)]


SAME_SHAPE = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.ELU, nn.LeakyReLU, nn.ReLU6, nn.Dropout, nn.Identity,
              nn.BatchNorm1d, nn.BatchNorm2d)


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def out_shape(m: nn.Module, shape: tuple) -> tuple:
    """The output shape (no batch) of a layer for an input of `shape`, counted, not computed: a
    forward pass on torch's meta device would cost the first request seconds (torch imports its
    compiler's decompositions then). Layers not counted here are run on a zero input. Raises
    RuntimeError, as torch would, when the layer does not fit its input."""
    if isinstance(m, SAME_SHAPE):
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and shape[0] != m.num_features:
            raise RuntimeError(f"BatchNorm of {m.num_features} features on an input of {shape[0]}")
        return tuple(shape)
    if isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1:
        return (math.prod(shape),)
    if isinstance(m, nn.Linear):
        if shape[-1] != m.in_features:
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({shape[-1]} and {m.in_features})")
        return (*shape[:-1], m.out_features)
    if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)) and len(shape) == 3 and not isinstance(m.padding, str) \
            and not getattr(m, "ceil_mode", False):
        conv = isinstance(m, nn.Conv2d)
        if conv and (shape[0] != m.in_channels or m.groups != 1):
            raise RuntimeError(f"a conv layer of {m.in_channels} input channels given {shape[0]}")
        k, s, p = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding)
        d = _pair(m.dilation) if conv or isinstance(m, nn.MaxPool2d) else (1, 1)
        h, w = ((n + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i, n in enumerate(shape[1:]))
        if h < 1 or w < 1:
            raise RuntimeError(f"output size {h}x{w} is too small")
        return (m.out_channels if conv else shape[0], h, w)
    with torch.no_grad():
        return tuple(m.eval()(torch.zeros(1, *shape, device=_device(m))).shape[1:])


def _device(m: nn.Module) -> torch.device:
    p = next(m.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _shape_after(modules: list[nn.Module], shape: tuple) -> tuple:
    for m in modules:
        shape = out_shape(m, shape)
    return tuple(shape)


def build_layers(layers: list[dict], classes: int = 10, init: str = "default",
                 input_shape: tuple = INPUT_SHAPE) -> nn.Sequential:
    """Build a layer list (see the module docstring) into an nn.Sequential, checking shapes."""
    if not isinstance(layers, list) or len(layers) > 40:
        raise ArchitectureError("architecture must be a list of at most 40 layers")
    modules: list[nn.Module] = []
    shape = tuple(input_shape)  # (C, H, W) or (features,)
    for i, spec in enumerate(layers):
        if not isinstance(spec, dict) or spec.get("type") not in LAYER_TYPES:
            raise ArchitectureError(f"layer {i + 1}: type must be one of {', '.join(LAYER_TYPES)}", i)
        new = _module_for(spec, shape, i)
        for m in new:
            m.spec_index = i  # which layer of the list made this module (for editors)
        try:
            shape = _shape_after(new, shape)
        except RuntimeError as exc:
            raise ArchitectureError(f"layer {i + 1} ({spec['type']}) does not fit its input of shape "
                                    f"{list(shape)}: {str(exc).splitlines()[0]}", i) from exc
        modules += new
    if len(shape) == 3:
        modules.append(nn.Flatten())
        shape = (shape[0] * shape[1] * shape[2],)
    modules.append(nn.Linear(shape[0], classes))
    net = nn.Sequential(*modules)
    if init == "he_uniform":
        for m in net:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    return net


def _module_for(spec: dict, shape: tuple, i: int) -> list[nn.Module]:
    kind, spatial = spec["type"], len(shape) == 3
    if kind == "conv":
        if not spatial:
            raise ArchitectureError(f"layer {i + 1}: a conv layer cannot follow a dense layer", i)
        filters, kernel = _int(spec, "filters", 1, 512, i), _int(spec, "kernel", 1, 11, i)
        padding = spec.get("padding", "valid")
        if padding not in ("valid", "same"):
            raise ArchitectureError(f"layer {i + 1}: padding must be 'valid' or 'same'", i)
        if padding == "valid" and kernel > min(shape[1:]):
            raise ArchitectureError(f"layer {i + 1}: a {kernel}x{kernel} kernel is larger than its "
                                    f"{shape[1]}x{shape[2]} input", i)
        pad = kernel // 2 if padding == "same" else 0
        conv = nn.Conv2d(shape[0], filters, kernel, padding=pad, bias=bool(spec.get("bias", True)))
        return [conv, *_activation(spec.get("activation"), i)]
    if kind == "pool":
        if not spatial:
            raise ArchitectureError(f"layer {i + 1}: pooling needs an image-shaped input (put it before dense layers)", i)
        size = _int(spec, "size", 2, 8, i, default=2)
        if size > min(shape[1:]):
            raise ArchitectureError(f"layer {i + 1}: {size}x{size} pooling is larger than its "
                                    f"{shape[1]}x{shape[2]} input", i)
        return [nn.AvgPool2d(size) if spec.get("kind") == "avg" else nn.MaxPool2d(size)]
    if kind == "dense":
        units = _int(spec, "units", 1, 4096, i)
        flat = [nn.Flatten()] if spatial else []
        features = shape[0] * shape[1] * shape[2] if spatial else shape[0]
        return [*flat, nn.Linear(features, units, bias=bool(spec.get("bias", True))),
                *_activation(spec.get("activation"), i)]
    if kind == "batchnorm":
        return [nn.BatchNorm2d(shape[0]) if spatial else nn.BatchNorm1d(shape[0])]
    if kind == "dropout":
        rate = spec.get("rate", 0.25)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ArchitectureError(f"layer {i + 1}: dropout rate must be from 0 to below 1", i)
        return [nn.Dropout(float(rate))]
    return _activation(spec.get("fn"), i) or [nn.Identity()]


def build(architecture: str | list, classes: int = 10, input_shape: tuple = INPUT_SHAPE) -> nn.Sequential:
    """Build a preset by name, or a layer list for inputs of `input_shape`."""
    if not isinstance(architecture, str):
        return build_layers(architecture, classes, input_shape=tuple(input_shape))
    if architecture not in PRESETS:
        raise KeyError(f"unknown architecture {architecture!r}; choose one of {sorted(PRESETS)}")
    preset = PRESETS[architecture]
    return build_layers(preset.layers, classes, preset.init)


def measure(architecture: str | list, classes: int = 10, input_shape: tuple = INPUT_SHAPE) -> tuple[list[dict], int, int]:
    """(layer rows as `describe` gives them, trainable parameters, multiply-adds per image) of a
    preset or layer list, built on torch's "meta" device (no weights are allocated or computed, so
    a request for 40 dense layers of 4096 costs microseconds, not GBs) and its shapes counted
    (`out_shape`: no forward pass, whose first use would cost a fresh server seconds).
    Raises ArchitectureError for a list that cannot be built."""
    with torch.device("meta"):
        net = build(architecture, classes, input_shape)
        rows = describe(net, input_shape)
    return rows, count_parameters(net), sum(r["macs"] for r in rows)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (weights and biases), as Keras counts 'trainable params'."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def describe(model: nn.Sequential, input_shape: tuple = INPUT_SHAPE) -> list[dict]:
    """One row per layer: type, how many numbers it reads (`inputs`), output shape, weights, biases
    and multiply-adds per image."""
    rows, shape = [], tuple(input_shape)
    for m in model:
        out = out_shape(m, shape)
        weight = getattr(m, "weight", None)
        bias = getattr(m, "bias", None)
        w = weight.numel() if isinstance(weight, torch.Tensor) else 0
        b = bias.numel() if isinstance(bias, torch.Tensor) else 0
        macs = 0
        if isinstance(m, nn.Conv2d):
            macs = w * out[1] * out[2]
        elif isinstance(m, nn.Linear):
            macs = w
        rows.append({"type": type(m).__name__, "label": layer_label(m), "inputs": math.prod(shape), "output": list(out),
                     "weights": w, "biases": b, "params": w + b, "macs": macs,
                     "layer": getattr(m, "spec_index", None)})
        shape = out
    return rows


def layer_label(m: nn.Module) -> str:
    if isinstance(m, nn.Conv2d):
        return f"Conv {m.out_channels} {m.kernel_size[0]}×{m.kernel_size[1]}"
    if isinstance(m, nn.Linear):
        return f"Dense {m.out_features}"
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
        return f"{'Max' if isinstance(m, nn.MaxPool2d) else 'Average'} pool {k}×{k}"
    if isinstance(m, nn.Dropout):
        return f"Dropout {m.p:g}"
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return "BatchNorm"
    if isinstance(m, nn.LeakyReLU):
        return "Leaky ReLU"
    return type(m).__name__


@torch.inference_mode()
def layer_outputs(model: nn.Sequential, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Apply the layers in order and record each output: [(layer type, (B, ...)), ...]."""
    outputs = []
    for layer in model:
        x = layer(x)
        outputs.append((type(layer).__name__, x))
    return outputs
