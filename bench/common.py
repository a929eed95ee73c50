"""What the benches share with the tests: pictures they draw (digits as strokes, MNIST digits on
a canvas, webcam-like photos, product photos, crops of real sample photos), a throwaway
redis-server, the photo network's reference forward pass, and every bench's quick mode.

The tests import these from here (tests/helpers.py, tests/photos.py, tests/district.py), so the
benches never import the test suite.
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import math
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

ROOT = Path(__file__).resolve().parent.parent


# --- quick mode ---------------------------------------------------------------------------------

def add_quick(parser: argparse.ArgumentParser) -> None:
    """Every bench's --quick: the same code path on tiny sizes, in seconds, printing the same table
    (tests/test_benches.py runs each one so a change that breaks a bench breaks the suite). Its
    figures mean nothing."""
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, seconds: checks the bench runs (its figures mean nothing)")


def scratch(name: str) -> str:
    """A bench's fixed working folder, under the temporary folder (TMPDIR: the suite gives each
    bench its own, so benches and suites running at once do not share one)."""
    return str(Path(tempfile.gettempdir()) / name)


# --- processes ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


def start_redis(folder: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """A throwaway redis-server on a free port, or on `port` (no persistence); waits until it answers PING."""
    port = port or free_port()
    proc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            return proc, f"redis://127.0.0.1:{port}/0"
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


# --- pictures -----------------------------------------------------------------------------------

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


# --- real photos: scikit-image's sample images (installed by scripts/setup.sh --test as data only;
# nothing of scikit-image is imported) ------------------------------------------------------------

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


# --- the photo network's reference: the checkpoint's forward pass written out -------------------

def tf_same(x, weight, stride, groups=1):
    """TensorFlow's "same" padding, worked out separately from the module's."""
    from torch.nn import functional as F
    k, size = weight.shape[-1], x.shape[-1]
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + k - size, 0)
    return F.conv2d(F.pad(x, (total // 2, total - total // 2, total // 2, total - total // 2)), weight,
                    stride=stride, groups=groups)


def functional_forward(sd: dict, x):
    """EfficientNet-Lite0 from the original keys: (x - 127) / 128, stem, 16 MBConv, head, pool, fc."""
    from torch.nn import functional as F

    from engine import photonet

    def bn(h, name):
        return F.batch_norm(h, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"],
                            sd[f"{name}.bias"], training=False, eps=1e-3)
    h = (x * 255 - 127) / 128
    h = F.relu6(bn(tf_same(h, sd["_conv_stem.weight"], 2), "_bn0"))
    strides = [s for k, s, e, c, r in photonet.STAGES for s in [s] + [1] * (r - 1)]
    for i, stride in enumerate(strides):
        p = f"_blocks.{i}."
        inp = h
        if p + "_expand_conv.weight" in sd:
            h = F.relu6(bn(F.conv2d(h, sd[p + "_expand_conv.weight"]), p + "_bn0"))
        dw = sd[p + "_depthwise_conv.weight"]
        h = F.relu6(bn(tf_same(h, dw, stride, groups=dw.shape[0]), p + "_bn1"))
        h = bn(F.conv2d(h, sd[p + "_project_conv.weight"]), p + "_bn2")
        if stride == 1 and inp.shape == h.shape:
            h = h + inp
    h = F.relu6(bn(F.conv2d(h, sd["_conv_head.weight"]), "_bn1"))
    return F.linear(h.mean(dim=(2, 3)), sd["_fc.weight"], sd["_fc.bias"])
