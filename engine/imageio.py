"""Decode untrusted image bytes safely: PNG, JPEG, WebP and GIF only, size checked from the
header before any pixel is decoded (decompression bombs), EXIF orientation honoured.

Memory is bounded too: a big JPEG is decoded already reduced (its DCT can skip detail: a 24 MP
photo costs what a 1.5 MP one does), any other image whose decoded pixels would pass
`max_bytes` is refused before decoding, and at most `slots` images decode at once (others wait).

Encoding goes the other way, for every image that leaves the server in JSON (`encode`): one form,
{"width", "height", "channels", "base64"} (plus any extra keys, such as a diverging map's
"scale"), "base64" holding uint8 bytes channels first: plane after plane, each plane row by row
(C, H, W). A grey image is one plane, a colour image three (red, green, blue), a stack of feature
maps C. Floats 0..1 become bytes by `to_bytes` alone; signed values by `diverging` (128 = 0).
static/js/render.js `decodeImage` is the one reader of this form.
"""
from __future__ import annotations

import base64
import io
import threading
import warnings

import numpy as np
from PIL import Image, ImageOps

from engine.refusal import Refusal

FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP", "GIF": "GIF"}
REDUCED_SIDE = 1024          # a JPEG longer than this is decoded reduced (by 2, 4 or 8), to no less than this
MAX_BYTES = 64 * 1024 * 1024  # decoded pixels one image may take
_slots = threading.BoundedSemaphore(2)


def to_bytes(a: np.ndarray) -> np.ndarray:
    """Floats 0..1 (any shape) as 0..255 bytes, rounded; values outside 0..1 are clipped."""
    return np.rint(np.clip(a, 0, 1) * 255).astype(np.uint8)


def encode(pixels: np.ndarray, **extra) -> dict:
    """A uint8 image (H, W) or (C, H, W) in the one JSON form (module docstring); `extra` keys
    are added as they are."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise TypeError(f"encode takes uint8 pixels, not {pixels.dtype} (floats 0..1: to_bytes first)")
    if pixels.ndim not in (2, 3):
        raise ValueError(f"encode takes (H, W) or (C, H, W) pixels, not shape {pixels.shape}")
    planes = pixels[None] if pixels.ndim == 2 else pixels
    channels, height, width = planes.shape
    return {"width": width, "height": height, "channels": channels, **extra,
            "base64": base64.b64encode(np.ascontiguousarray(planes).tobytes()).decode()}


def diverging(a: np.ndarray) -> dict:
    """Signed values (H, W) or (C, H, W) encoded with 0 at byte 128, scaled by their largest
    magnitude (`scale`, 1 when all are 0): value = (byte - 128) / 127.5 * scale."""
    a = np.asarray(a)
    scale = float(np.abs(a).max()) or 1.0
    return encode(np.clip(np.rint(a / scale * 127.5 + 127.5), 0, 255).astype(np.uint8), scale=scale)


def upgrade(value: object, shape: list[int] | None = None) -> object:
    """An image an older version stored (base64 text, with its shape beside it or none: 28x28
    grey, or a square colour image pixel by pixel) in the one form; anything else as it is."""
    if not isinstance(value, str):
        return value
    pixels = np.frombuffer(base64.b64decode(value), np.uint8)
    if shape is None:
        side = int(round((pixels.size / 3) ** 0.5))
        shape = [side, side, 3] if 3 * side * side == pixels.size and pixels.size != 28 * 28 else [28, 28]
    pixels = pixels.reshape(shape)
    if pixels.ndim == 3 and pixels.shape[-1] == 3 and len(shape) == 3 and shape[0] != 3:  # pixel by pixel
        pixels = pixels.transpose(2, 0, 1)
    return encode(pixels)


def limit_concurrency(slots: int) -> None:
    """How many images may be decoded at once (the server sets it from its settings at start)."""
    global _slots
    _slots = threading.BoundedSemaphore(slots)


def decoded_bytes(img: Image.Image) -> int:
    """The memory the pixels will take once decoded (and converted to RGB/RGBA)."""
    width, height = img.size
    return width * height * (1 if img.mode in ("1", "L") else 4)


class ImageError(Refusal, ValueError):
    """The bytes cannot be used as an image; the message says why and what to send instead.
    `kind` is one of "empty", "unsupported", "too_large", "corrupt"; the refusal's `code` is
    "image_<kind>" and its status 400 (empty, corrupt), 413 (too large) or 415 (unsupported)."""

    STATUS = {"empty": 400, "corrupt": 400, "unsupported": 415, "too_large": 413}

    def __init__(self, message: str, kind: str):
        super().__init__(self.STATUS.get(kind, 400), f"image_{kind}", message)
        self.kind = kind

    def __reduce__(self):  # it crosses to the server from the frame reader's process
        return type(self), (self.message, self.kind)


def sniff(data: bytes) -> str | None:
    """The image format from the file's magic bytes, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


def _describe_unsupported(data: bytes) -> str:
    head = data[:512].lstrip().lower()
    if head.startswith(b"%pdf"):
        return "This is a PDF document, not an image."
    if b"<svg" in head or head.startswith(b"<?xml"):
        return "This is an SVG (vector) file; only bitmap images are read."
    if head[:2] == b"bm" or head[:4] in (b"ii*\x00", b"mm\x00*"):
        return "BMP and TIFF images are not read."
    return "The file is not a PNG, JPEG, WebP or GIF image."


def decode(data: bytes, max_pixels: int, max_bytes: int = MAX_BYTES) -> Image.Image:
    """Decode to an upright RGB, RGBA or L image, or raise ImageError with a clear message."""
    with _slots:
        return _decode(data, max_pixels, max_bytes)


def _decode(data: bytes, max_pixels: int, max_bytes: int) -> Image.Image:
    if not data:
        raise ImageError("The file is empty (0 bytes). Send a PNG, JPEG, WebP or GIF image.", "empty")
    fmt = sniff(data)
    if fmt is None:
        raise ImageError(_describe_unsupported(data) + " Send a PNG, JPEG, WebP or GIF image.", "unsupported")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[fmt])  # reads the header only
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(f"The image is {width}x{height} pixels; the limit is {max_pixels:,} "
                                 "pixels. Send a smaller image.", "too_large")
            if width == 0 or height == 0:
                raise ImageError("The image has no pixels.", "corrupt")
            if fmt == "JPEG" and max(width, height) > REDUCED_SIDE:
                scale = REDUCED_SIDE / max(width, height)
                img.draft(img.mode, (max(1, int(width * scale)), max(1, int(height * scale))))
            if decoded_bytes(img) > max_bytes:
                raise ImageError(f"The image is {width}x{height} pixels, which would take "
                                 f"{decoded_bytes(img) / 2**20:.0f} MB of memory to read (the limit is "
                                 f"{max_bytes / 2**20:.0f} MB). Send it smaller, or as a JPEG.", "too_large")
            img.seek(0)  # first frame of an animation
            img.load()
            img = ImageOps.exif_transpose(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"The image is too large to decode safely ({exc}). Send a smaller image.",
                         "too_large") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        raise ImageError(f"The {FORMATS[fmt]} file could not be decoded: it is truncated or corrupt.",
                         "corrupt") from exc
    if img.mode in ("RGB", "RGBA", "L"):
        return img
    has_alpha = img.mode in ("LA", "PA", "La") or "transparency" in img.info
    return img.convert("RGBA" if has_alpha else "RGB")
