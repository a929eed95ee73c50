"""Where did the network look? Two answers:
- occlusion sensitivity (small networks): cover each part of the input with a blank patch and
  measure how much the predicted class's probability drops;
- Grad-CAM (the ImageNet network, where hundreds of covered copies would take seconds): weigh
  each channel of a late stage's feature maps by how much the class's score grows with it
  (the gradient, averaged over the map), add them up and keep what is positive.
`where_it_looked` picks the one that fits the network."""
from __future__ import annotations

import numpy as np
import torch

from engine.photonet import GlobalPool
from engine.preprocess import Prepared, resize
from engine.stores.store import StoredModel


@torch.inference_mode()
def occlusion(model: StoredModel, image: np.ndarray, patch: int = 6, stride: int = 2,
              target: int | None = None) -> tuple[np.ndarray, int]:
    """(H, W) map in 0..1 (1 = covering this part hurts the prediction most), and the class.
    `image` is a prepared input: (28, 28), or (C, H, W) for colour photos (covered in grey)."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    x = x[None] if x.ndim == 2 else x  # (C, H, W)
    blank = 0.0 if x.shape[0] == 1 else 0.5  # black for ink, mid grey for photos
    _, h, w = x.shape
    base = torch.softmax(model.module(x[None]), 1)[0]
    target = int(base.argmax()) if target is None else target
    corners = [(r, c) for r in range(0, h - patch + 1, stride) for c in range(0, w - patch + 1, stride)]
    batch = x.repeat(len(corners), 1, 1, 1)  # (N, C, H, W), one covered copy per position
    for i, (r, c) in enumerate(corners):
        batch[i, :, r:r + patch, c:c + patch] = blank
    drop = torch.cat([base[target] - torch.softmax(model.module(part), 1)[:, target]
                      for part in batch.split(64)]).clamp(min=0)
    heat, count = torch.zeros(h, w), torch.zeros(h, w)
    for (r, c), d in zip(corners, drop):
        heat[r:r + patch, c:c + patch] += d
        count[r:r + patch, c:c + patch] += 1
    heat = heat / count.clamp(min=1)
    peak = float(heat.max())
    return (heat / peak if peak > 0 else heat).numpy(), target


def where_it_looked(model: StoredModel, image: np.ndarray, target: int | None = None) -> tuple[np.ndarray, int, str]:
    """(map over the input in 0..1, the class explained, the method's name)."""
    if any(isinstance(m, GlobalPool) for m in model.module):
        return (*gradcam(model, image, target), "grad-cam")
    return (*occlusion(model, image, target=target), "occlusion")


def gradcam(model: StoredModel, image: np.ndarray, target: int | None = None, min_side: int = 14) -> tuple[np.ndarray, int]:
    """Grad-CAM over the last stage whose maps are at least `min_side` wide (14x14 for 224x224
    photos), carried up to the input's size (bilinear). `image` is (3, H, W) in 0..1."""
    layers = list(model.module)
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]  # (1, 3, H, W)
    with torch.inference_mode():
        outputs, h = [], x
        for layer in layers:
            h = layer(h)
            outputs.append(h)
    at = max(i for i, out in enumerate(outputs) if out.ndim == 4 and out.shape[-1] >= min_side)
    maps = outputs[at].clone().requires_grad_()  # (1, C, h, w)
    with torch.enable_grad():
        logits = torch.nn.Sequential(*layers[at + 1:])(maps)
        target = int(logits[0].argmax()) if target is None else target
        logits[0, target].backward()
    weights = maps.grad.mean(dim=(2, 3), keepdim=True)  # (1, C, 1, 1)
    cam = torch.relu((weights * maps.detach()).sum(dim=1))[0]  # (h, w)
    heat = resize(cam.numpy().astype(np.float32), *x.shape[-2:])
    peak = float(heat.max())
    return (heat / peak if peak > 0 else heat).astype(np.float32), target


def onto_image(heat: np.ndarray, prepared: Prepared) -> np.ndarray:
    """The input-sized map carried back through the preprocessing onto the (shrunk) image: zero
    outside the ink's box (or the photo's centre square)."""
    out = np.zeros_like(prepared.ink)
    left, top, right, bottom = prepared.bbox
    h, w = prepared.fitted.shape
    x0, y0 = prepared.offset
    region = np.zeros((h, w), np.float32)
    size_y, size_x = heat.shape
    ys, xs = slice(max(y0, 0), min(y0 + h, size_y)), slice(max(x0, 0), min(x0 + w, size_x))
    region[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0] = heat[ys, xs]
    out[top:bottom, left:right] = resize(region, bottom - top, right - left)
    return out
