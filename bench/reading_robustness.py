"""How well the shipped digit models read digits that are not clean MNIST: MNIST test digits
re-drawn on a 280x280 canvas under harder conditions, and stroke-drawn digits of many sizes,
places, slants and pen widths. Prints accuracy per condition and model.

    .venv/bin/python bench/reading_robustness.py [--n 300] [--quick]
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402

from bench.common import STROKE_DIGITS, add_quick, draw_digit, on_canvas  # noqa: E402
from engine import datasets, imageio, inference  # noqa: E402
from engine.preprocess import prepare  # noqa: E402
from engine.stores import store  # noqa: E402

rng = np.random.default_rng(1)


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return imageio.decode(buf.getvalue(), 10**8)


def grey_op(img: Image.Image, fn) -> Image.Image:
    a = np.asarray(img.convert("L"), np.float32)
    return Image.fromarray(np.clip(fn(a), 0, 255).astype(np.uint8))


def tight(digit: np.ndarray, size: int) -> Image.Image:
    r, c = np.nonzero(digit)
    crop = digit[r.min():r.max() + 1, c.min():c.max() + 1]
    return Image.fromarray(255 - crop).resize((size, size), Image.Resampling.BILINEAR)


def paper_on_table(digit: np.ndarray) -> Image.Image:
    """A photo: lit paper with the digit, on a darker, noisy table around it."""
    table = rng.normal(45, 8, (300, 400))
    sheet = np.asarray(on_canvas(digit, size=180, scale=3.5, at=(40, 40)), np.float32)
    table[60:240, 110:290] = sheet * np.linspace(0.8, 1.0, 180)[None, :]
    return Image.fromarray(np.clip(table, 0, 255).astype(np.uint8)).convert("RGB")


CONDITIONS = {
    "clean canvas": lambda d: on_canvas(d),
    "JPEG quality 25": lambda d: jpeg(on_canvas(d), 25),
    "noise sigma 20": lambda d: grey_op(on_canvas(d), lambda a: a + rng.normal(0, 20, a.shape)),
    "noise sigma 40": lambda d: grey_op(on_canvas(d), lambda a: a + rng.normal(0, 40, a.shape)),
    "side lighting 55-100%": lambda d: grey_op(on_canvas(d), lambda a: a * np.linspace(0.55, 1, a.shape[1])),
    "grey paper, low contrast": lambda d: Image.eval(on_canvas(d), lambda v: 150 + v * 60 // 255),
    "light ink on black": lambda d: on_canvas(d, dark_on_light=False),
    "small, in a corner": lambda d: on_canvas(d, scale=2.5, at=(200, 190)),
    "tight 16x16 crop": lambda d: tight(d, 16),
    "blurred (radius 4)": lambda d: on_canvas(d).filter(ImageFilter.GaussianBlur(4)),
    "paper on a dark table (JPEG)": lambda d: jpeg(paper_on_table(d), 80),
}


def mnist_conditions(models: dict, data: datasets.Dataset, n: int) -> None:
    idx = rng.choice(len(data.test), n, replace=False)
    print(f"{'MNIST test digits, re-drawn':28}" + "".join(f"{m:>14}" for m in models))
    for name, make in CONDITIONS.items():
        inputs = np.stack([prepare(make(data.test.images[i])).input for i in idx])
        accs = [(inference.probabilities(m, inputs).argmax(1) == data.test.labels[idx]).mean() for m in models.values()]
        print(f"{name:28}" + "".join(f"{a:14.3f}" for a in accs))


def stroke_digits(models: dict, widths=(3, 6, 10, 16, 24, 34, 44)) -> None:
    boxes = {"big": (0.05, 0.05, 0.95, 0.95), "mid": (0.2, 0.1, 0.8, 0.9),
             "corner": (0.6, 0.6, 0.85, 0.9), "tiny": (0.1, 0.1, 0.22, 0.25)}
    inputs, truth = [], []
    for width in widths:
        for box in boxes.values():
            if 0.015 <= width / ((box[3] - box[1]) * 280) <= 0.25:
                for slant in (0.0, 0.25, -0.15):
                    for digit in STROKE_DIGITS:
                        inputs.append(prepare(draw_digit(digit, width=width, box=box, slant=slant)).input)
                        truth.append(int(digit))
    x, y = np.stack(inputs), np.array(truth)
    accs = [(inference.probabilities(m, x).argmax(1) == y).mean() for m in models.values()]
    print(f"{f'stroke-drawn digits ({len(y)})':28}" + "".join(f"{a:14.3f}" for a in accs))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=300, help="MNIST test digits per condition")
    p.add_argument("--compare", type=Path, help="a folder with a retrained digits model: one more column")
    add_quick(p)
    args = p.parse_args()
    if args.quick:
        args.n = 10
    registry = store.ModelRegistry([ROOT / "models"])
    models = {m: registry.get(m) for m in ("digits", "mnist-recipe")}
    if args.compare:
        models["digits (new)"] = store.ModelRegistry([args.compare]).get("digits")
    mnist_conditions(models, datasets.load("mnist", ROOT / "data"), args.n)
    stroke_digits(models, (10,) if args.quick else (3, 6, 10, 16, 24, 34, 44))


if __name__ == "__main__":
    main()
