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


@torch.inference_mode()
def photo_stages(model: StoredModel, image: np.ndarray, top: int = 8, pick: tuple[int, int] | None = None) -> dict:
    """Inside the ImageNet network for one photo (3, 224, 224): the stem and each stage's output
    (shape, weights, and its `top` most active channels, by mean activation, as maps), the stem's
    32 colour filters, and with `pick` = (part, channel) that one map as well. ValueError naming
    what is out of range."""
    from engine import photonet
    layers = list(model.module)
    if not any(isinstance(m, photonet.MBConv) for m in layers):
        raise ValueError(f"{model.card.id!r} is not the ImageNet photo network; its stages cannot be shown")
    ends = [1, *photonet.stage_ends(), photonet.stage_ends()[-1] + 1]  # stem, 7 stages, head
    names = ["stem", *[f"stage {i}" for i in range(1, len(photonet.STAGES) + 1)], "head"]
    if pick is not None and not 0 <= pick[0] < len(ends):
        raise ValueError(f"part must be from 0 to {len(ends) - 1} (stem, stages 1-7, head)")
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    parts, start, picked = [], 0, None
    for index, (name, end) in enumerate(zip(names, ends)):
        for layer in layers[start:end + 1]:
            x = layer(x)
        out = x[0]  # (C, H, W)
        order = torch.argsort(out.mean(dim=(1, 2)), descending=True)[:top].tolist()
        parts.append({"part": index, "name": name, "shape": list(out.shape),
                      "weights": sum(photonet.count(m) for m in layers[start:end + 1]),
                      "channels": order, "maps": out[order].numpy()})
        if pick is not None and pick[0] == index:
            if not 0 <= pick[1] < out.shape[0]:
                raise ValueError(f"channel must be from 0 to {out.shape[0] - 1} for {name}")
            picked = {"part": index, "name": name, "channel": pick[1], "maps": out[pick[1]:pick[1] + 1].numpy()}
        start = end + 1
    stem = layers[1][0].weight.detach().numpy()  # (32, 3, 3, 3)
    return {"parts": parts, "picked": picked, "stem_filters": np.round(stem.astype(np.float64), 4).tolist()}
