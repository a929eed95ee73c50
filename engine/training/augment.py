"""Batched augmentation, pure torch. For digits (B, 1, 28, 28): slant (shear), rotation, size,
position and stroke thickness, so an MNIST-trained network reads digits drawn on a screen. For
colour photos (B, 3, H, W): zoom, turn, shift, mirror, brightness, contrast and saturation, so a
network taught from a few dozen webcam shots still knows them in other light and places.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    rotate_deg: float = 12.0      # uniform in +-rotate_deg
    shear: float = 0.35           # slant: x += shear * y, uniform in +-shear
    scale: tuple[float, float] = (0.8, 1.15)  # zoom factor (1 = unchanged)
    aspect: float = 0.15          # independent x/y stretch, +-aspect
    shift_px: float = 2.5         # translation, uniform in +-shift_px pixels
    stroke: float = 0.7           # thickness change strength, uniform in +-stroke
    heavy: float = 0.0            # share of samples drawn as with a marker: 2 px more ink all round
    p: float = 0.85               # probability that a sample is augmented at all
    padding: str = "zeros"        # what fills the corners uncovered by a turn or shift


@dataclass
class PhotoAugmentConfig:
    rotate_deg: float = 10.0
    shear: float = 0.0
    scale: tuple[float, float] = (1.0, 1.35)  # zoom in: a random crop of 74-100% of the side
    aspect: float = 0.08
    shift_px: float = 3.0
    padding: str = "border"
    mirror: bool = True           # left-right flips (off when left and right differ)
    brightness: float = 0.25      # multiply by 1 +- this
    contrast: float = 0.25
    saturation: float = 0.3
    p: float = 0.9


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def random_affine(x: torch.Tensor, cfg: AugmentConfig | PhotoAugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Random rotation, shear, scale and shift of each image in (B, 1, H, W)."""
    b, _, h, w = x.shape
    angle = _uniform(b, -cfg.rotate_deg, cfg.rotate_deg, g) * math.pi / 180
    shear = _uniform(b, -cfg.shear, cfg.shear, g)
    zoom = _uniform(b, *cfg.scale, g)
    stretch = _uniform(b, -cfg.aspect, cfg.aspect, g)
    sx, sy = 1 / (zoom * (1 + stretch)), 1 / (zoom * (1 - stretch))  # grid maps output -> input
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = sx * cos
    theta[:, 0, 1] = sx * (-sin + shear)
    theta[:, 1, 0] = sy * sin
    theta[:, 1, 1] = sy * cos
    theta[:, 0, 2] = _uniform(b, -1, 1, g) * cfg.shift_px * 2 / w
    theta[:, 1, 2] = _uniform(b, -1, 1, g) * cfg.shift_px * 2 / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=cfg.padding, align_corners=False)


def random_stroke(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Blend each image toward its dilation (thicker) or erosion (thinner)."""
    t = _uniform(x.shape[0], -cfg.stroke, cfg.stroke, g).view(-1, 1, 1, 1)
    thick = F.max_pool2d(x, 3, stride=1, padding=1)
    thin = -F.max_pool2d(-x, 3, stride=1, padding=1)
    return torch.where(t > 0, x + t * (thick - x), x + (-t) * (thin - x))


def augment(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Augment a batch (B, 1, 28, 28) in 0..1; a fraction 1 - p of samples is left unchanged."""
    moved = random_affine(x, cfg, g)
    out = random_stroke(moved, cfg, g)
    if cfg.heavy:  # loops that close up and blobby joins, as a thick marker draws them
        marker = (torch.rand(x.shape[0], generator=g) < cfg.heavy).view(-1, 1, 1, 1)
        out = torch.where(marker, F.max_pool2d(moved, 5, stride=1, padding=2), out)
    out = out.clamp_(0, 1)
    keep = (torch.rand(x.shape[0], generator=g) >= cfg.p).view(-1, 1, 1, 1)
    return torch.where(keep, x, out)


def random_colour(x: torch.Tensor, cfg: PhotoAugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Random brightness, contrast and saturation of each photo in (B, 3, H, W)."""
    b = x.shape[0]
    factor = lambda amount: _uniform(b, 1 - amount, 1 + amount, g).view(-1, 1, 1, 1)
    grey = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    x = grey + factor(cfg.saturation) * (x - grey)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (mean + factor(cfg.contrast) * (x - mean)) * factor(cfg.brightness)


def augment_photos(x: torch.Tensor, cfg: PhotoAugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Augment colour photos (B, 3, H, W) in 0..1; a fraction 1 - p is left unchanged."""
    out = random_colour(random_affine(x, cfg, g), cfg, g).clamp_(0, 1)
    if cfg.mirror:
        flip = (torch.rand(x.shape[0], generator=g) < 0.5).view(-1, 1, 1, 1)
        out = torch.where(flip, out.flip(3), out)
    keep = (torch.rand(x.shape[0], generator=g) >= cfg.p).view(-1, 1, 1, 1)
    return torch.where(keep, x, out)
