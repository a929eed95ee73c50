"""Where did the network look? Occlusion sensitivity: cover each part of the input with a blank
patch and measure how much the predicted class's probability drops."""
from __future__ import annotations

import numpy as np
import torch

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
