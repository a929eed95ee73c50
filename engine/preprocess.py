"""Turn a drawing or photo into the 28x28 a network reads, keeping every intermediate step.

Digits are prepared as MNIST itself was made: find the ink, crop to it, fit it into 20x20
keeping the aspect ratio (antialiased), and place it in 28x28 so that its centre of mass is at
the centre. Objects are prepared as Fashion-MNIST's product photos were: trim the background
around the object, shrink its longer side to 28, centre it, negate (object bright on black) and
turn it grey. Photos for a project's own classes ("photo") keep their colour: the centre square,
shrunk to 32x32 RGB (as CIFAR-10), three channels the network reads.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageFilter

INK_THRESHOLD = 0.1    # ink map values below this (after normalising) are background
TRIM_MASS = 0.0025     # each side of the ink box drops rows/columns holding less than this share
SPECK_MASS = 0.03      # ...and separate blobs at its edges holding less than this share
WORKING_SIZE = 280     # larger images are first shrunk to this (longer side) for speed
STYLES = {"digit": 20, "object": 28}  # size of the box the ink is fitted into
PHOTO_SIZE = 32        # "photo" style: side of the colour square the network reads
IMAGENET_SIZE = 224    # "imagenet" style: the same for the ImageNet photo network (engine.photonet)


@dataclass
class Prepared:
    """The network's input and how it was made. Arrays are float32 in 0..1, ink = 1."""
    input: np.ndarray | None            # (28, 28) or (3, 32, 32) for photos; None when no ink was found
    ink: np.ndarray                     # (h, w) ink map of the (possibly shrunk) image
    bbox: tuple[int, int, int, int] | None = None  # (left, top, right, bottom) in `ink`
    cropped: np.ndarray | None = None   # the ink inside bbox
    fitted: np.ndarray | None = None    # cropped, resized into the style's box
    center_of_mass: tuple[float, float] | None = None  # (x, y) in the 28x28
    offset: tuple[int, int] | None = None  # (left, top) where `fitted` was placed in the 28x28
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.input is None


def ink_map(img: Image.Image, notes: list[str] | None = None) -> np.ndarray:
    """Ink strength per pixel in 0..1, whatever the polarity (dark on light or light on dark),
    for transparent images (the alpha channel is the ink), on noisy or unevenly lit paper."""
    notes = [] if notes is None else notes
    if img.mode == "RGBA":
        alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255
        if alpha.min() < 0.98:  # really transparent somewhere: opacity is the drawing
            notes.append("transparent image: the opaque part is the ink")
            return alpha
    paper = np.asarray(img.convert("L"), dtype=np.float32) / 255  # (H, W)
    if _border_level(paper) < 0.5:  # light ink on a dark background (MNIST's own polarity)
        paper = 1 - paper
        notes.append("light ink on a dark background")
    if _noise_level(paper) > 0.02:
        paper = np.asarray(Image.fromarray(paper, mode="F").filter(ImageFilter.MedianFilter(3)))
        notes.append("noisy background: smoothed")
    background = paper_level(paper)
    if np.ndim(background):
        notes.append("uneven lighting: corrected")
    return np.clip((background - paper) / np.maximum(background, 0.05), 0, 1)


def _border(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])


def _border_level(a: np.ndarray) -> float:
    """The median of the border: at once when the border is one flat colour (every frame a
    drawing pad sends), which spares the live reader several medians a frame."""
    border = _border(a)
    return float(border[0]) if _flat(border) else float(np.median(border))


def _flat(border: np.ndarray) -> bool:
    return border.size > 0 and border.min() == border.max()


def _noise_level(paper: np.ndarray) -> float:
    """Pixel-to-pixel noise along the border (median absolute difference of neighbours)."""
    border = _border(paper)
    if border.size <= 8 or _flat(border):
        return 0.0
    return float(np.median(np.abs(np.diff(border))))


def paper_level(paper: np.ndarray) -> float | np.ndarray:
    """The brightness of blank paper under each pixel: one number when the border is evenly lit
    (a screen drawing), else a smooth quadratic surface fitted to the paper-like pixels."""
    border = _border(paper)
    if _flat(border):
        return float(border[0])
    level = float(np.median(border))
    if np.percentile(border, 90) - np.percentile(border, 10) < 0.08:
        return level
    small = np.asarray(Image.fromarray(paper, mode="F").resize(
        (min(64, paper.shape[1]), min(64, paper.shape[0])), Image.Resampling.BOX))
    basis = lambda h, w: _quadratic_basis(h, w)
    design = basis(*small.shape)
    values = small.ravel()
    chosen = values >= np.median(values)  # paper is the brighter half to begin with
    for _ in range(2):
        coef, *_ = np.linalg.lstsq(design[chosen], values[chosen], rcond=None)
        chosen = values - design @ coef > -0.08  # not clearly darker than the fitted paper
    return (basis(*paper.shape) @ coef).reshape(paper.shape).astype(np.float32)


def _quadratic_basis(h: int, w: int) -> np.ndarray:
    y, x = np.meshgrid(np.linspace(-1, 1, h, dtype=np.float32), np.linspace(-1, 1, w, dtype=np.float32),
                       indexing="ij")
    x, y = x.ravel(), y.ravel()
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)  # (h*w, 6)


def crop_to_paper(img: Image.Image, notes: list[str]) -> Image.Image:
    """A photo of light paper on a darker surface: keep only the paper (slightly inset), so that
    the table around it is not taken for ink. Drawings and light-on-dark images pass unchanged."""
    if img.mode == "RGBA":
        return img
    grey = np.asarray(img.convert("L"), dtype=np.float32) / 255
    if _border_level(grey) >= 0.5 or min(grey.shape) < 16:
        return img
    bright = grey > max(0.5, (np.median(_border(grey)) + np.percentile(grey, 90)) / 2)
    row_share, col_share = bright.mean(axis=1), bright.mean(axis=0)
    rows = np.nonzero(row_share >= 0.5 * row_share.max())[0]
    cols = np.nonzero(col_share >= 0.5 * col_share.max())[0]
    if not len(rows) or not len(cols):
        return img
    box = bright[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    tall, wide = box.shape[0] / grey.shape[0], box.shape[1] / grey.shape[1]
    if min(tall, wide) < 0.3 or tall * wide < 0.25 or box.mean() < 0.85:  # no sheet: light ink on dark
        return img
    dy, dx = max(1, round(0.03 * (rows[-1] - rows[0]))), max(1, round(0.03 * (cols[-1] - cols[0])))
    notes.append("paper on a darker surface: cropped to the paper")
    return img.crop((int(cols[0]) + dx, int(rows[0]) + dy, int(cols[-1]) + 1 - dx, int(rows[-1]) + 1 - dy))


def shrink(img: Image.Image, size: int = WORKING_SIZE) -> Image.Image:
    """Shrink so the longer side is at most `size` pixels (area-averaged); smaller images stay."""
    if max(img.size) <= size:
        return img
    scale = size / max(img.size)
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                      Image.Resampling.BOX)


def resize(a: np.ndarray, height: int, width: int) -> np.ndarray:
    """Antialiased bilinear resize of a 2-D float array: what torch's interpolate(mode="bilinear",
    antialias=True) computes (tests/test_preprocess.py holds it to torch), as two small matrices."""
    out = _weights(a.shape[0], height) @ np.asarray(a, dtype=np.float32) @ _weights(a.shape[1], width).T
    return np.clip(out, 0, 1, out=out)


@lru_cache(maxsize=512)
def _weights(size: int, new: int) -> np.ndarray:
    """(new, size): each output pixel's share of each input pixel along one axis (a triangle
    filter as wide as the scale when shrinking, plain linear interpolation when growing)."""
    scale = size / new
    support, step = (scale, 1 / scale) if scale >= 1 else (1.0, 1.0)
    weights = np.zeros((new, size), np.float64)
    for i in range(new):
        center = scale * (i + 0.5)
        lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), size)
        w = np.maximum(0, 1 - np.abs((np.arange(lo, hi) - center + 0.5) * step))
        if w.sum() > 0:
            weights[i, lo:hi] = w / w.sum()
    return weights.astype(np.float32)


def fit(cropped: np.ndarray, box: int) -> np.ndarray:
    """Resize so the longer side is `box` pixels, keeping the aspect ratio."""
    h, w = cropped.shape
    scale = box / max(h, w)
    return resize(cropped, max(1, round(h * scale)), max(1, round(w * scale)))


THIN_SCALE = 56        # thick strokes are measured and thinned with the crop's longer side this long
STROKE_TARGET = 0.2    # thinned down to this share of the digit (MNIST pens: 0.1-0.2)


def erode(a: np.ndarray, k: int) -> np.ndarray:
    """The minimum over each (2k+1)-square, the edge rows and columns repeated outwards: a crop
    ends where the ink does, and a stroke's width is measured across it, not along it (so the ink
    at the crop's edges wears away from its sides only). k rounds of a 3x3 minimum, each one axis
    then the other, with slices (a small map: faster than any windowed view)."""
    out = np.array(a, copy=True)
    for _ in range(k):
        for axis in (0, 1):
            head, tail = [slice(None)] * 2, [slice(None)] * 2
            head[axis], tail[axis] = slice(None, -1), slice(1, None)
            first, rest = out[tuple(head)].copy(), out[tuple(tail)].copy()
            np.minimum(out[tuple(tail)], first, out=out[tuple(tail)])
            np.minimum(out[tuple(head)], rest, out=out[tuple(head)])
    return out


def stroke_width(ink: np.ndarray) -> float:
    """The typical width, in pixels, of the strokes of a binary ink map: one 3x3 erosion takes
    about one pixel off each side of a stroke, so the share of ink it leaves tells the width
    (never more than the map's shorter side: a lone straight stroke fills its crop, and the
    erosion, working across strokes only, leaves all of it)."""
    area = int(ink.sum())
    if not area:
        return 0.0
    left = int(erode(ink, 1).sum())
    return min(2 / max(1 - left / area, 1e-3), float(min(ink.shape)))


def thin_strokes(cropped: np.ndarray, notes: list[str]) -> np.ndarray:
    """A digit drawn with a thick marker (or small, with an ordinary pen) has strokes far wider
    than MNIST's: blobs where loops close up ("3" read as "8"). Erode them towards MNIST's pen,
    measured at THIN_SCALE, never by more than a third of their width; thin strokes stay as drawn."""
    h, w = cropped.shape
    scale = THIN_SCALE / max(h, w)
    small = resize(cropped, max(1, round(h * scale)), max(1, round(w * scale)))
    width = stroke_width(small > 0.5)
    erode_by = min(int((width - STROKE_TARGET * THIN_SCALE) / 2), int(width / 3))
    if erode_by < 1:
        return cropped
    notes.append(f"thick strokes ({width / THIN_SCALE:.0%} of the digit): thinned towards MNIST's pen")
    return erode(small, erode_by)


def center_of_mass(a: np.ndarray) -> tuple[float, float]:
    """(x, y) of the ink's centre of mass, in pixel indices of `a`."""
    total = float(a.sum())
    return (float(a.sum(axis=0) @ np.arange(a.shape[1], dtype=a.dtype)) / total,
            float(a.sum(axis=1) @ np.arange(a.shape[0], dtype=a.dtype)) / total)


def place(fitted: np.ndarray, left: int, top: int, size: int = 28) -> np.ndarray:
    """Paste `fitted` into a size x size black field at (left, top), clipping at the edges."""
    field_ = np.zeros((size, size), dtype=np.float32)
    h, w = fitted.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, size), min(left + w, size)
    if y1 > y0 and x1 > x0:
        field_[y0:y1, x0:x1] = fitted[y0 - top:y1 - top, x0 - left:x1 - left]
    return field_


def prepare(img: Image.Image, style: str = "digit") -> Prepared:
    """The full pipeline; `style` is "digit" (MNIST), "object" (Fashion-MNIST), "photo" (a project's
    CNN) or "imagenet"."""
    if style == "photo":
        return prepare_photo(img)
    if style == "imagenet":
        return prepare_photo(img, IMAGENET_SIZE)
    box = STYLES[style]
    notes: list[str] = []
    ink = ink_map(crop_to_paper(shrink(img), notes), notes)
    peak = _robust_peak(ink)
    if peak < 0.15:
        return Prepared(input=None, ink=ink, notes=notes + ["no ink found"])
    ink = np.clip(ink / peak, 0, 1)  # full contrast whatever the pen colour
    ink[ink < INK_THRESHOLD] = 0
    top, bottom = _span(ink.sum(axis=1))
    left, right = _span(ink.sum(axis=0))
    cropped = ink[top:bottom, left:right]
    fitted = fit(thin_strokes(cropped, notes) if style == "digit" else cropped, box)
    h, w = fitted.shape
    if style == "digit":
        cx, cy = center_of_mass(fitted)
        x0, y0 = round(13.5 - cx), round(13.5 - cy)
    else:
        x0, y0 = (28 - w) // 2, (28 - h) // 2
    final = place(fitted, x0, y0)
    return Prepared(input=final, ink=ink, bbox=(left, top, right, bottom), cropped=cropped,
                    fitted=fitted, center_of_mass=center_of_mass(final), offset=(x0, y0), notes=notes)


def _robust_peak(ink: np.ndarray) -> float:
    """The ink's full strength, ignoring lone bright pixels: the highest 2x2 average, or the
    maximum when the image is too small for that."""
    if min(ink.shape) < 2:
        return float(ink.max())
    pooled = (ink[:-1, :-1] + ink[1:, :-1] + ink[:-1, 1:] + ink[1:, 1:]) / 4
    return float(max(pooled.max(), 0.6 * ink.max()))


def _span(mass: np.ndarray) -> tuple[int, int]:
    """[start, end) of the ink along one axis. Specks and dust are left out: a run of ink at
    either end that holds under SPECK_MASS of the ink and is cut off by a blank gap, and thin
    tails holding under TRIM_MASS."""
    inked = np.nonzero(mass > 0)[0]
    runs = np.split(inked, np.nonzero(np.diff(inked) > 1)[0] + 1)  # contiguous inked stretches
    total = mass.sum()
    share = lambda run: mass[run].sum() / total
    while len(runs) > 1 and share(runs[0]) < SPECK_MASS:
        runs.pop(0)
    while len(runs) > 1 and share(runs[-1]) < SPECK_MASS:
        runs.pop()
    first, last = int(runs[0][0]), int(runs[-1][-1])
    kept = mass[first:last + 1]
    cumulative = np.cumsum(kept) / kept.sum()
    start = first + int(np.searchsorted(cumulative, TRIM_MASS, side="right"))
    end = first + int(np.searchsorted(cumulative, 1 - TRIM_MASS, side="left")) + 1
    return start, max(end, start + 1)


def rgb(img: Image.Image) -> Image.Image:
    """RGB, with any transparency laid on white."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def prepare_photo(img: Image.Image, size: int = PHOTO_SIZE) -> Prepared:
    """A colour photo as a (3, size, size) input: the centre square, shrunk. `ink` holds the photo
    in grey (for display), `cropped` the square, `fitted` the input in grey.

    A project's small CNN reads 32x32 (area-averaged from the photo shrunk to WORKING_SIZE); the
    ImageNet network reads 224x224 (IMAGENET_SIZE: bicubic from the photo shrunk only as far as its
    shorter side stays at least 224, so no detail it could use is thrown away first)."""
    photo = rgb(shrink(img) if size <= WORKING_SIZE // 2 else cover(img, size))
    w, h = photo.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    square = photo.crop((left, top, left + side, top + side))
    method = Image.Resampling.BOX if size <= WORKING_SIZE // 2 else Image.Resampling.BICUBIC
    small = np.asarray(square.resize((size, size), method), dtype=np.float32) / 255
    grey = lambda a: (a @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.float32)
    full = np.asarray(photo, dtype=np.float32) / 255
    notes = [] if side == w == h else [f"the centre square ({side}x{side}) of a {w}x{h} photo"]
    verb = "shrunk" if side >= size else "enlarged"
    return Prepared(input=np.ascontiguousarray(small.transpose(2, 0, 1)), ink=grey(full),
                    bbox=(left, top, left + side, top + side), cropped=grey(full[top:top + side, left:left + side]),
                    fitted=grey(small), center_of_mass=(size / 2 - 0.5, size / 2 - 0.5), offset=(0, 0),
                    notes=notes + [f"{verb} to {size}x{size}, three colour channels (red, green, blue)"])


def cover(img: Image.Image, size: int) -> Image.Image:
    """Shrink (area-averaged) so the shorter side is `size` pixels; smaller images stay."""
    if min(img.size) <= size:
        return img
    scale = size / min(img.size)
    return img.resize((max(size, round(img.width * scale)), max(size, round(img.height * scale))),
                      Image.Resampling.BOX)
