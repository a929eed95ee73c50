"""Convolution and pooling as deep-learning layers compute them (no kernel flip), with every
step recorded so a page can animate the kernel sliding; and the classic kernel table.

Arrays are 2-D lists or arrays (H, W); torch's conv2d and max_pool2d do the arithmetic.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SLIDES_INPUT = [[3, 2, 3, 1, 8], [1, 9, 1, 3, 2], [2, 3, 5, 6, 6], [3, 2, 3, 5, 9], [1, 1, 2, 4, 5]]
VERTICAL_EDGE = [[1, 0, -1], [1, 0, -1], [1, 0, -1]]
EDGE_INPUT = [[8, 8, 8, 0, 0, 0] for _ in range(6)]

KERNELS = {  # the lesson's table of classic 3x3 kernels
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "vertical_edge": VERTICAL_EDGE,
    "edge_diagonal": [[1, 0, -1], [0, 0, 0], [-1, 0, 1]],
    "edge_laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "edge_all": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "box_blur": (np.ones((3, 3)) / 9).tolist(),
    "gaussian_blur": (np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16).tolist(),
}


class ShapeError(ValueError):
    """The grids or settings do not fit together; the message says how."""


def padding_amounts(kernel: int, padding: str | int) -> tuple[int, int]:
    """(before, after) zeros added on each side: 'valid' none, 'same' keeps the size at stride 1."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return (kernel - 1) // 2, kernel - 1 - (kernel - 1) // 2
    return int(padding), int(padding)


def output_size(n: int, k: int, pad_total: int, stride: int) -> int:
    """floor((n + padding - k) / stride) + 1, the formula the page writes out."""
    return (n + pad_total - k) // stride + 1


def as_grid(values, name: str) -> torch.Tensor:
    """A rectangular 2-D grid of finite numbers as a float64 tensor, or ShapeError."""
    try:
        a = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise ShapeError(f"{name} must be a rectangular 2-D grid of numbers (every row the same length)") from exc
    if a.ndim != 2 or 0 in a.shape:
        raise ShapeError(f"{name} must be a rectangular 2-D grid of numbers")
    if not np.isfinite(a).all():
        raise ShapeError(f"{name} must hold finite numbers")
    return torch.from_numpy(a)


def convolve(values, kernel, stride: int = 1, padding: str | int = "valid", steps: bool = True) -> dict:
    """The output grid, the padded input and (if `steps`) each position's window and products."""
    x, k = as_grid(values, "input"), as_grid(kernel, "kernel")
    if stride < 1:
        raise ShapeError("stride must be at least 1")
    (kh, kw) = k.shape
    top, bottom = padding_amounts(kh, padding)
    left, right = padding_amounts(kw, padding)
    padded = F.pad(x, (left, right, top, bottom))
    if kh > padded.shape[0] or kw > padded.shape[1]:
        raise ShapeError(f"the {kh}x{kw} kernel is larger than the {padded.shape[0]}x{padded.shape[1]} "
                         "(padded) input: use a smaller kernel, a larger input or more padding")
    out = F.conv2d(padded[None, None], k[None, None], stride=stride)[0, 0]  # cross-correlation
    result = {"output": out.tolist(), "padded": padded.tolist(), "padding": [top, bottom, left, right],
              "formula": {"n": list(x.shape), "k": [kh, kw], "padding": [top + bottom, left + right],
                          "stride": stride, "output": list(out.shape)}}
    if steps:
        result["steps"] = [
            {"row": r, "col": c, "top": r * stride, "left": c * stride,
             "products": (padded[r * stride:r * stride + kh, c * stride:c * stride + kw] * k).tolist(),
             "sum": out[r, c].item()}
            for r in range(out.shape[0]) for c in range(out.shape[1])]
    return result


def max_pool(values, size: int = 2, stride: int | None = None, steps: bool = True) -> dict:
    x = as_grid(values, "input")
    stride = stride or size
    if size < 1 or stride < 1:
        raise ShapeError("pool size and stride must be at least 1")
    if size > min(x.shape):
        raise ShapeError(f"a {size}x{size} pool is larger than the {x.shape[0]}x{x.shape[1]} input")
    out = F.max_pool2d(x[None, None], size, stride)[0, 0]
    result = {"output": out.tolist(), "formula": {"n": list(x.shape), "k": [size, size], "padding": [0, 0],
                                                  "stride": stride, "output": list(out.shape)}}
    if steps:
        result["steps"] = [{"row": r, "col": c, "top": r * stride, "left": c * stride, "max": out[r, c].item()}
                           for r in range(out.shape[0]) for c in range(out.shape[1])]
    return result


def apply_kernel(image: np.ndarray, kernel) -> np.ndarray:
    """A kernel applied to each channel of an image (H, W, C) or (H, W) in 0..255, 'same' size,
    edges padded by repeating the border, the result clipped to 0..255."""
    k = as_grid(kernel, "kernel").float()
    a = np.asarray(image, dtype=np.float32)
    planes = a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0)  # (C, H, W)
    t = torch.from_numpy(np.ascontiguousarray(planes))[:, None]  # (C, 1, H, W)
    kh, kw = k.shape
    t = F.pad(t, ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2), mode="replicate")
    out = F.conv2d(t, k[None, None])[:, 0].clamp(0, 255).numpy()
    return out[0] if a.ndim == 2 else np.moveaxis(out, 0, -1)
