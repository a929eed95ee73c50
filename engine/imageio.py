"""Decode untrusted image bytes safely: PNG, JPEG, WebP and GIF only, size checked from the
header before any pixel is decoded (decompression bombs), EXIF orientation honoured.

Memory is bounded too: a big JPEG is decoded already reduced (its DCT can skip detail: a 24 MP
photo costs what a 1.5 MP one does), any other image whose decoded pixels would pass
`max_bytes` is refused before decoding, and at most `slots` images decode at once (others wait).
"""
from __future__ import annotations

import base64
import io
import threading
import warnings

import numpy as np
from PIL import Image, ImageOps

FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP", "GIF": "GIF"}
REDUCED_SIDE = 1024          # a JPEG longer than this is decoded reduced (by 2, 4 or 8), to no less than this
MAX_BYTES = 64 * 1024 * 1024  # decoded pixels one image may take
_slots = threading.BoundedSemaphore(2)


def to_base64(pixels) -> str:
    """The bytes of a uint8 array, row by row, as base64 text: how every image travels in JSON."""
    return base64.b64encode(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()).decode()


def limit_concurrency(slots: int) -> None:
    """How many images may be decoded at once (the server sets it from its settings at start)."""
    global _slots
    _slots = threading.BoundedSemaphore(slots)


def decoded_bytes(img: Image.Image) -> int:
    """The memory the pixels will take once decoded (and converted to RGB/RGBA)."""
    width, height = img.size
    return width * height * (1 if img.mode in ("1", "L") else 4)


class ImageError(ValueError):
    """The bytes cannot be used as an image; the message says why and what to send instead.
    `code` is one of "empty", "unsupported", "too_large", "corrupt"."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code

    def __reduce__(self):  # it crosses to the server from the frame reader's process
        return type(self), (str(self), self.code)


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
