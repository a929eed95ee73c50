"""Turn a drawing or photo into the 28x28 a network reads, keeping every intermediate step.

Digits are prepared as MNIST itself was made: find the ink, crop to it, fit it into 20x20
keeping the aspect ratio (antialiased), and place it in 28x28 so that its centre of mass is at
the centre. Objects (Fashion-MNIST) fill the 28x28 on their longer side, centred by their box.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

INK_THRESHOLD = 0.1    # ink map values below this (after normalising) are background
WORKING_SIZE = 280     # larger images are first shrunk to this (longer side) for speed
STYLES = {"digit": 20, "object": 28}  # size of the box the ink is fitted into


@dataclass
class Prepared:
    """The network's input and how it was made. Arrays are float32 in 0..1, ink = 1."""
    input: np.ndarray | None            # (28, 28), None when no ink was found
    ink: np.ndarray                     # (h, w) ink map of the (possibly shrunk) image
    bbox: tuple[int, int, int, int] | None = None  # (left, top, right, bottom) in `ink`
    cropped: np.ndarray | None = None   # the ink inside bbox
    fitted: np.ndarray | None = None    # cropped, resized into the style's box
    center_of_mass: tuple[float, float] | None = None  # (x, y) in the 28x28
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.input is None


def ink_map(img: Image.Image) -> np.ndarray:
    """Ink strength per pixel in 0..1, whatever the polarity (dark on light or light on dark)
    and for transparent images (the alpha channel is the ink)."""
    if img.mode == "RGBA":
        alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255
        if alpha.min() < 0.98:  # really transparent somewhere: opacity is the drawing
            return alpha
    grey = np.asarray(img.convert("L"), dtype=np.float32) / 255
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    if background >= 0.5:  # light paper, dark ink
        ink = (background - grey) / max(background, 1e-3)
    else:                  # dark background, light ink (MNIST's own polarity)
        ink = (grey - background) / max(1 - background, 1e-3)
    return np.clip(ink, 0, 1)


def shrink(img: Image.Image, size: int = WORKING_SIZE) -> Image.Image:
    """Shrink so the longer side is at most `size` pixels (area-averaged); smaller images stay."""
    if max(img.size) <= size:
        return img
    scale = size / max(img.size)
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                      Image.Resampling.BOX)


def resize(a: np.ndarray, height: int, width: int) -> np.ndarray:
    """Antialiased bilinear resize of a 2-D float array."""
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None]  # (1, 1, h, w)
    out = F.interpolate(t, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return out[0, 0].clamp_(0, 1).numpy()


def fit(cropped: np.ndarray, box: int) -> np.ndarray:
    """Resize so the longer side is `box` pixels, keeping the aspect ratio."""
    h, w = cropped.shape
    scale = box / max(h, w)
    return resize(cropped, max(1, round(h * scale)), max(1, round(w * scale)))


def center_of_mass(a: np.ndarray) -> tuple[float, float]:
    """(x, y) of the ink's centre of mass, in pixel indices of `a`."""
    total = float(a.sum())
    ys, xs = np.indices(a.shape)
    return float((xs * a).sum() / total), float((ys * a).sum() / total)


def place(fitted: np.ndarray, left: int, top: int, size: int = 28) -> np.ndarray:
    """Paste `fitted` into a size x size black field at (left, top), clipping at the edges."""
    field_ = np.zeros((size, size), dtype=np.float32)
    h, w = fitted.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, size), min(left + w, size)
    if y1 > y0 and x1 > x0:
        field_[y0:y1, x0:x1] = fitted[y0 - top:y1 - top, x0 - left:x1 - left]
    return field_


def prepare(img: Image.Image, style: str = "digit") -> Prepared:
    """The full pipeline; `style` is "digit" (MNIST) or "object" (Fashion-MNIST)."""
    box = STYLES[style]
    ink = ink_map(shrink(img))
    peak = float(ink.max())
    if peak < 0.15:
        return Prepared(input=None, ink=ink, notes=["no ink found"])
    ink = np.clip(ink / peak, 0, 1)  # full contrast whatever the pen colour
    ink[ink < INK_THRESHOLD] = 0
    rows, cols = np.nonzero(ink.any(axis=1))[0], np.nonzero(ink.any(axis=0))[0]
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    cropped = ink[top:bottom, left:right]
    fitted = fit(cropped, box)
    h, w = fitted.shape
    if style == "digit":
        cx, cy = center_of_mass(fitted)
        x0, y0 = round(13.5 - cx), round(13.5 - cy)
    else:
        x0, y0 = (28 - w) // 2, (28 - h) // 2
    final = place(fitted, x0, y0)
    return Prepared(input=final, ink=ink, bbox=(left, top, right, bottom), cropped=cropped,
                    fitted=fitted, center_of_mass=center_of_mass(final))
