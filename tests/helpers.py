"""Images made by the tests themselves: MNIST digits re-drawn as canvas pictures, encoded files."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


def encode(img: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def on_canvas(digit: np.ndarray, size: int = 280, scale: float = 8.0, at: tuple[int, int] = (40, 40),
              dark_on_light: bool = True) -> Image.Image:
    """A 28x28 MNIST digit (uint8, ink bright) enlarged by `scale` and placed at `at` on a canvas."""
    big = Image.fromarray(digit).resize((round(28 * scale), round(28 * scale)), Image.Resampling.BILINEAR)
    canvas = Image.new("L", (size, size), 0)
    canvas.paste(big, at)
    return Image.eval(canvas, lambda v: 255 - v) if dark_on_light else canvas


def stroke_image(points: list[tuple[float, float]], width: int = 22, size: int = 280) -> Image.Image:
    """A polyline drawn in black on white, like the draw page's canvas."""
    img = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(img).line(points, fill="black", width=width, joint="curve")
    return img
