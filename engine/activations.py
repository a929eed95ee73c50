"""What happens inside a network for one input: every layer's output in order, one cell of a
convolution's output worked out from its inputs, and the learned convolution filters."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.models import layer_label, layer_outputs
from engine.stores.store import StoredModel


@torch.inference_mode()
def activations(model: StoredModel, image: np.ndarray) -> list[dict]:
    """One entry per layer for a prepared input (28, 28) or (C, H, W): its type, output shape,
    and its maps (C, H, W array) or values (1-D); the last entry adds the softmax probabilities."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    x = x[None, None] if x.ndim == 2 else x[None]  # (1, C, H, W)
    layers = []
    for i, ((kind, out), module) in enumerate(zip(layer_outputs(model.module, x), model.module)):
        out = out[0].numpy()
        entry = {"index": i, "type": kind, "label": layer_label(module), "shape": list(out.shape)}
        if out.ndim == 3:
            entry["maps"] = out
        else:
            entry["values"] = np.round(out.astype(np.float64), 4).tolist()
        layers.append(entry)
    logits = torch.tensor(layers[-1]["values"])
    layers[-1]["probabilities"] = torch.softmax(logits, 0).tolist()
    return layers


@torch.inference_mode()
def explain_cell(model: StoredModel, image: np.ndarray, layer: int, channel: int, row: int, col: int) -> dict:
    """Where one cell of a convolution layer's output comes from: the window of that layer's input
    it looks at (zeros where it hangs over the padded edge), the filter's weights, the bias, each
    product, their sum and the value the network computed. ValueError naming what is out of range."""
    modules = list(model.module)
    if not 0 <= layer < len(modules) or not isinstance(modules[layer], nn.Conv2d):
        convs = [i for i, m in enumerate(modules) if isinstance(m, nn.Conv2d)]
        raise ValueError(f"layer {layer} is not a convolution layer; this network's are {convs}")
    conv: nn.Conv2d = modules[layer]
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    x = x[None, None] if x.ndim == 2 else x[None]
    for m in modules[:layer]:
        x = m(x)
    out = conv(x)[0]
    for name, value, size in (("channel", channel, out.shape[0]), ("row", row, out.shape[1]), ("col", col, out.shape[2])):
        if not 0 <= value < size:
            raise ValueError(f"{name} must be from 0 to {size - 1} for this layer")
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    padded = torch.nn.functional.pad(x[0], (pw, pw, ph, ph))
    window = padded[:, row * sh: row * sh + kh, col * sw: col * sw + kw]
    weights = conv.weight[channel]
    bias = 0.0 if conv.bias is None else float(conv.bias[channel])
    products = window * weights
    return {"layer": layer, "channel": channel, "row": row, "col": col, "kernel": [kh, kw], "padding": [ph, pw],
            "stride": [sh, sw], "top": row * sh - ph, "left": col * sw - pw,
            "window": window.numpy(), "weights": weights.numpy(), "bias": bias, "products": products.numpy(),
            "sum": float(products.sum()) + bias, "value": float(out[channel, row, col])}


def filters(model: StoredModel) -> list[dict]:
    """Each conv layer's weights (out, in, kH, kW) and biases; ValueError if there are none."""
    found = [{"index": i, "label": layer_label(m), "shape": list(m.weight.shape),
              "weights": np.round(m.weight.detach().numpy().astype(np.float64), 4).tolist(),
              "bias": None if m.bias is None else np.round(m.bias.detach().numpy().astype(np.float64), 4).tolist()}
             for i, m in enumerate(model.module) if isinstance(m, nn.Conv2d)]
    if not found:
        raise ValueError(f"{model.card.id!r} has no convolution layers, so it has no filters to show; "
                         "choose a CNN such as 'digits'")
    return found
