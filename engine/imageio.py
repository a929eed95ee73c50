"""Decode untrusted image bytes safely: PNG, JPEG, WebP and GIF only, size checked from the
header before any pixel is decoded (decompression bombs), EXIF orientation honoured.
"""
from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps

FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP", "GIF": "GIF"}


class ImageError(ValueError):
    """The bytes cannot be used as an image; the message says why and what to send instead.
    `code` is one of "empty", "unsupported", "too_large", "corrupt"."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


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


def decode(data: bytes, max_pixels: int) -> Image.Image:
    """Decode to an upright RGB, RGBA or L image, or raise ImageError with a clear message."""
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
