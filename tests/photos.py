"""Real photos for the photo network's tests: scikit-image's sample images (a cat, an espresso,
the cameraman, a rocket...), installed by scripts/setup.sh --test as data only (nothing of
scikit-image is imported), and crops of them for teaching classes."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance


def photo_folder() -> Path:
    spec = importlib.util.find_spec("skimage")
    assert spec is not None, "the photo tests need scikit-image's sample photos: bash scripts/setup.sh --test"
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def photo(name: str) -> Image.Image:
    """One of the sample photos as RGB ("chelsea.png": a cat, "coffee.png", "camera.png", ...)."""
    with Image.open(photo_folder() / name) as img:
        return img.convert("RGB")


def crops(name: str, n: int, seed: int, smallest: float = 0.6) -> list[Image.Image]:
    """`n` different views of one photo: a random square of at least `smallest` of its shorter
    side, some mirrored, lighter or darker, shrunk to 256 px, as photos taken a moment apart."""
    img, rng = photo(name), np.random.default_rng(seed)
    out = []
    for _ in range(n):
        side = int(min(img.size) * rng.uniform(smallest, 1.0))
        left, top = (int(rng.integers(0, s - side + 1)) for s in img.size)
        view = img.crop((left, top, left + side, top + side)).resize((256, 256), Image.Resampling.BICUBIC)
        if rng.random() < 0.5:
            view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        out.append(ImageEnhance.Brightness(view).enhance(float(rng.uniform(0.7, 1.3))))
    return out
