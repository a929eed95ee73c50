"""Images made by the tests themselves: MNIST digits re-drawn as canvas pictures, encoded files."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from app.settings import ROOT


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


def _arc(cx, cy, rx, ry, start_deg, end_deg, n=24):
    t = np.radians(np.linspace(start_deg, end_deg, n))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t)))


# Hand-written-style digits as polylines in a unit box (x right, y down), angles in degrees.
STROKE_DIGITS: dict[str, list[list[tuple[float, float]]]] = {
    "0": [_arc(0.5, 0.5, 0.3, 0.45, 0, 360, 40)],
    "1": [[(0.35, 0.2), (0.55, 0.05), (0.55, 0.95)]],
    "2": [_arc(0.5, 0.3, 0.3, 0.25, 200, 360) + [(0.75, 0.45), (0.2, 0.95), (0.85, 0.95)]],
    "3": [_arc(0.5, 0.27, 0.28, 0.22, 200, 450) + _arc(0.5, 0.71, 0.32, 0.24, 270, 520)],
    "4": [[(0.6, 0.05), (0.15, 0.65), (0.85, 0.65)], [(0.62, 0.3), (0.62, 0.95)]],
    "5": [[(0.8, 0.05), (0.3, 0.05), (0.25, 0.45)] + _arc(0.5, 0.66, 0.32, 0.29, 240, 500)],
    "6": [_arc(0.75, 0.55, 0.55, 0.5, 230, 180, 12) + _arc(0.5, 0.7, 0.3, 0.25, 180, 540)],
    "7": [[(0.15, 0.08), (0.85, 0.08), (0.4, 0.95)]],
    "8": [_arc(0.5, 0.27, 0.25, 0.22, 90, 450) + _arc(0.5, 0.71, 0.3, 0.24, 270, 630)],
    "9": [_arc(0.5, 0.3, 0.28, 0.25, 0, 360) + [(0.78, 0.3), (0.7, 0.95)]],
}


def draw_digit(digit: str, width: int = 22, size: int = 280, box: tuple[float, float, float, float] = (0.2, 0.1, 0.8, 0.9),
               slant: float = 0.0) -> Image.Image:
    """A STROKE_DIGITS digit drawn in black on white inside box = (left, top, right, bottom)."""
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = box
    for line in STROKE_DIGITS[digit]:
        pts = [((left + (x + slant * (0.5 - y)) * (right - left)) * size, (top + y * (bottom - top)) * size) for x, y in line]
        draw.line(pts, fill="black", width=width, joint="curve")
        for p in (pts[0], pts[-1]):
            draw.ellipse([p[0] - width / 2, p[1] - width / 2, p[0] + width / 2, p[1] + width / 2], fill="black")
    return img


def object_photo(kind: int, rng: np.random.Generator, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A webcam-like photo made here: a noisy, unevenly lit background with a few stray lines and,
    somewhere near the middle, a yellow ball (kind 0) or a blue box (kind 1)."""
    w, h = size
    a = np.ones((h, w, 3)) * rng.integers(40, 200, 3) + rng.normal(0, 12, (h, w, 3))
    a += np.linspace(-30, 30, w)[None, :, None] * rng.uniform(-1, 1)
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(3):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        d.line((x, y, x + int(rng.integers(-80, 80)), y + int(rng.integers(-80, 80))),
               fill=tuple(int(v) for v in rng.integers(0, 255, 3)), width=3)
    r = int(rng.integers(35, 70))
    cx, cy = int(rng.integers(w // 2 - 50, w // 2 + 50)), int(rng.integers(h // 2 - 40, h // 2 + 40))
    if kind == 0:
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(235, 205, 40))
    else:
        d.rectangle((cx - r, cy - int(r * 0.7), cx + r, cy + int(r * 0.7)), fill=(40, 70, 200))
    return img


def product_photo(item: np.ndarray, rng: np.random.Generator, light: float = 0.25) -> Image.Image:
    """A Fashion-MNIST item (28x28, bright on black) as a product photo: dark on a white 400x320
    background, enlarged 8x, off-centre, lit unevenly (darker by up to `light` on one side), JPEG."""
    obj = Image.fromarray(255 - item).resize((224, 224), Image.Resampling.BICUBIC)
    canvas = Image.new("L", (400, 320), 255)
    canvas.paste(obj, (int(rng.integers(20, 150)), int(rng.integers(10, 80))))
    lit = np.asarray(canvas, np.float32) * np.linspace(1 - light, 1.0, 400)[None, :]
    photo = Image.fromarray(np.clip(lit, 0, 255).astype(np.uint8)).convert("RGB")
    return Image.open(io.BytesIO(encode(photo, "JPEG", quality=80)))


ARTIFACTS = ROOT / "test-artifacts"  # screenshots the browser tests take


def stroke(page, points):
    """Drag the real mouse through points given as fractions of the drawing pad."""
    box = page.locator("#pad").bounding_box()
    at = lambda p: (box["x"] + p[0] * box["width"], box["y"] + p[1] * box["height"])
    page.mouse.move(*at(points[0]))
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*at(p), steps=8)
    page.mouse.up()


def http_json(url: str, method: str = "GET", body=None, headers: dict | None = None, raw: bytes | None = None,
              ctype: str = "application/json", timeout: float = 20):
    """One request to a real server; its JSON answer (HTTP errors raise)."""
    import json
    import urllib.request
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, method=method, data=data, headers={"Content-Type": ctype, **(headers or {})})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"{}")


def trained(server: str, spec: dict, headers: dict, timeout: float = 60) -> dict:
    """Start a training job on a real server and wait for it to finish; its final state."""
    import time
    job = http_json(f"{server}/api/train", "POST", spec, headers)
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = http_json(f"{server}/api/train/{job['id']}", headers=headers)
        if state["status"] == "done":
            return state
        time.sleep(0.2)
    raise AssertionError(f"the job did not finish: {state['status']}")


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children of each of its threads, recursively), from /proc."""
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:  # a thread (or the process) that just ended
            continue
        for child in children:
            found |= {int(child)} | descendants(int(child))
    return found


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for its parent does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False
