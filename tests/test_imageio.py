import io
import struct
import zlib

import pytest
from PIL import Image

from engine.imageio import ImageError, decode, sniff
from tests.helpers import encode

MAX = 4_000_000


@pytest.fixture
def picture():
    img = Image.new("RGB", (40, 30), "white")
    img.paste((0, 0, 0), (5, 5, 15, 25))
    return img


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_supported_formats_decode(picture, fmt):
    img = decode(encode(picture, fmt), MAX)
    assert img.size == (40, 30) and img.mode in ("RGB", "RGBA", "L")


def test_exif_orientation_is_honoured(picture):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img = decode(encode(picture, "JPEG", exif=exif), MAX)
    assert img.size == (30, 40)


def png_header_only(width, height):
    """A tiny PNG that claims a huge size: a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("data, code, words", [
    (b"", "empty", "empty"),
    (b"hello, not an image", "unsupported", "not a PNG"),
    (b"%PDF-1.4\n...", "unsupported", "PDF"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "unsupported", "SVG"),
    (b"<svg width='10'></svg>", "unsupported", "SVG"),
    (png_header_only(30000, 30000), "too_large", "limit"),
])
def test_bad_bytes_are_refused_clearly(data, code, words):
    with pytest.raises(ImageError, match=words) as info:
        decode(data, MAX)
    assert info.value.code == code


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_truncated_files_are_refused(picture, fmt):
    data = encode(picture, fmt)
    with pytest.raises(ImageError) as info:
        decode(data[: len(data) // 2], MAX)
    assert info.value.code == "corrupt"


def test_sniff_ignores_the_file_name_and_reads_magic(picture):
    assert sniff(encode(picture, "PNG")) == "PNG"
    assert sniff(b"GIF89a....") == "GIF"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert sniff(b"BM....") is None


def test_palette_and_alpha_images_convert(picture):
    p = picture.convert("P")
    assert decode(encode(p, "PNG"), MAX).mode == "RGB"
    la = Image.new("LA", (8, 8), (0, 0))
    assert decode(encode(la, "PNG"), MAX).mode == "RGBA"
    with pytest.raises(ImageError):
        decode(io.BytesIO(b"\x89PNG\r\n\x1a\n").getvalue(), MAX)
