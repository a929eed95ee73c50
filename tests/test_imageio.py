import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from engine import imageio
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
    assert info.value.kind == code and info.value.code == f"image_{code}"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_truncated_files_are_refused(picture, fmt):
    data = encode(picture, fmt)
    with pytest.raises(ImageError) as info:
        decode(data[: len(data) // 2], MAX)
    assert info.value.kind == "corrupt"


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


def test_one_image_form_leaves_the_server_channels_first():
    """engine.imageio.encode: {"width", "height", "channels", "base64"}, bytes plane after plane
    (C, H, W), each row by row; a grey image is one plane; only uint8 pixels are taken."""
    import base64

    import numpy as np

    from engine.imageio import diverging, encode, to_bytes
    colour = np.arange(3 * 2 * 5, dtype=np.uint8).reshape(3, 2, 5)
    body = encode(colour, scale=1.5)
    assert {k: v for k, v in body.items() if k != "base64"} == {"width": 5, "height": 2, "channels": 3, "scale": 1.5}
    assert base64.b64decode(body["base64"]) == colour.tobytes()
    grey = encode(colour[0])
    assert (grey["channels"], grey["height"], grey["width"]) == (1, 2, 5)
    assert base64.b64decode(grey["base64"]) == colour[0].tobytes()
    with pytest.raises(TypeError):
        encode(colour.astype(np.float32))
    with pytest.raises(ValueError):
        encode(colour[None])
    assert to_bytes(np.array([-1.0, 0.0, 0.5, 1.0, 2.0])).tolist() == [0, 0, 128, 255, 255]
    maps = diverging(np.array([[[-4.0, 0.0, 4.0]]]))
    assert maps["scale"] == 4.0 and list(base64.b64decode(maps["base64"])) == [0, 128, 255]
    assert diverging(np.zeros((2, 2)))["scale"] == 1.0


def test_images_an_older_version_kept_are_upgraded_to_the_one_form():
    """Job records kept a run's mistakes as bare base64 text: 28x28 grey, or colour pixel by pixel."""
    grey = (np.arange(28 * 28) % 256).astype(np.uint8).reshape(28, 28)
    up = imageio.upgrade(base64.b64encode(grey.tobytes()).decode())
    assert (up["channels"], up["height"], up["width"]) == (1, 28, 28)
    assert np.array_equal(np.frombuffer(base64.b64decode(up["base64"]), np.uint8).reshape(28, 28), grey)
    colour = (np.arange(32 * 32 * 3) % 256).astype(np.uint8).reshape(32, 32, 3)  # pixel by pixel (H, W, 3)
    up = imageio.upgrade(base64.b64encode(colour.tobytes()).decode())
    assert (up["channels"], up["height"], up["width"]) == (3, 32, 32)
    assert np.array_equal(np.frombuffer(base64.b64decode(up["base64"]), np.uint8).reshape(3, 32, 32),
                          colour.transpose(2, 0, 1))
    already = imageio.encode(grey)
    assert imageio.upgrade(already) is already
