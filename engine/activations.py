"""What happens inside a network for one input: every layer's output in order (feature maps as
compact bytes on a diverging scale), and the learned convolution filters."""
from __future__ import annotations

import base64

import numpy as np
import torch
from torch import nn

from engine.models import layer_label, layer_outputs
from engine.store import StoredModel


def diverging_bytes(a: np.ndarray) -> tuple[str, float]:
    """Values scaled by their largest magnitude to 0..255 with 0 at 128 (base64), and that scale."""
    scale = float(np.abs(a).max()) or 1.0
    q = np.clip(np.rint(a / scale * 127.5 + 127.5), 0, 255).astype(np.uint8)
    return base64.b64encode(q.tobytes()).decode(), scale


@torch.inference_mode()
def activations(model: StoredModel, image: np.ndarray) -> list[dict]:
    """One entry per layer for a prepared input (28, 28) or (C, H, W): its type, output shape,
    and its maps (C, H, W as bytes) or values (1-D); the last entry adds the softmax probabilities."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    x = x[None, None] if x.ndim == 2 else x[None]  # (1, C, H, W)
    layers = []
    for i, ((kind, out), module) in enumerate(zip(layer_outputs(model.module, x), model.module)):
        out = out[0].numpy()
        entry = {"index": i, "type": kind, "label": layer_label(module), "shape": list(out.shape)}
        if out.ndim == 3:
            data, scale = diverging_bytes(out)
            entry["maps"] = {"channels": out.shape[0], "height": out.shape[1], "width": out.shape[2],
                             "scale": scale, "base64": data}
        else:
            entry["values"] = np.round(out.astype(np.float64), 4).tolist()
        layers.append(entry)
    logits = torch.tensor(layers[-1]["values"])
    layers[-1]["probabilities"] = torch.softmax(logits, 0).tolist()
    return layers


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
