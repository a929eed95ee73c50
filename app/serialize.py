"""One place that turns engine results into JSON.

Images travel in one form everywhere, made by engine.imageio.encode alone:
{"width", "height", "channels", "base64"}, the base64 of their 0..255 bytes channels first
(C, H, W): plane after plane, each row by row. A grey image is one plane, a colour image three
(red, green, blue), a stack of feature maps C (with their `scale`: see `diverging`);
static/js/render.js decodeImage reads it. The classify answer of the HTTP API (`/api/predict`)
also offers readable lists (`input` as rows of floats 0..1, step images as rows of 0..255 ints)
for scripts, as documented.
"""
from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
import segno

from engine.imageio import diverging, encode, to_bytes
from engine.lite import Classification
from engine.preprocess import Prepared, resize
from engine.stores.cards import ModelCard

THUMBNAIL = 64  # longest side of step images sent to the page
LISTED_INPUT = 3 * 32 * 32  # inputs up to this many values go as readable lists; larger ones compact
TOP = 5  # the best guesses named in every classification


def image(a: np.ndarray, compact: bool = True) -> list[list[int]] | dict:
    """A 0..1 array (H, W) or (C, H, W) in the one image form, or (H, W) as rows of 0..255 integers."""
    return encode(to_bytes(a)) if compact else to_bytes(a).tolist()


def layers_json(layers: list[dict]) -> list[dict]:
    """engine.activations' layers, their feature maps in the image form on a diverging scale."""
    return [{**entry, "maps": diverging(entry["maps"])} if "maps" in entry else entry for entry in layers]


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    """Every error's JSON: what went wrong (`error`, a code), how to fix it (`message`), and which
    fields were wrong."""
    body = {"error": code, "message": message}
    if fields:
        body["fields"] = fields
    return body


def numbers(a: np.ndarray, decimals: int = 4):
    """An array as nested lists of rounded floats."""
    return np.round(np.asarray(a, dtype=np.float64), decimals).tolist()


def cell_json(cell: dict) -> dict:
    """engine.activations.explain_cell's arrays as rounded numbers."""
    return {k: numbers(v) if isinstance(v, np.ndarray) else v for k, v in cell.items()}


def thumbnail(a: np.ndarray) -> tuple[np.ndarray, float]:
    """Shrink so the longer side is at most THUMBNAIL; returns (image, scale)."""
    h, w = a.shape
    scale = min(1.0, THUMBNAIL / max(h, w))
    if scale == 1.0:
        return a, 1.0
    return resize(a, max(1, round(h * scale)), max(1, round(w * scale))), scale


def steps_json(p: Prepared, compact: bool) -> dict:
    ink, scale = thumbnail(p.ink)
    steps = {"ink": image(ink, compact), "ink_size": list(p.ink.shape[::-1]), "notes": p.notes}
    if p.empty:
        return steps
    steps.update(
        bbox=[round(v * scale, 2) for v in p.bbox],
        cropped=image(thumbnail(p.cropped)[0], compact),
        cropped_size=list(p.cropped.shape[::-1]),
        fitted=image(p.fitted, compact),
        center_of_mass=[round(v, 2) for v in p.center_of_mass],
    )
    return steps


def classification_json(c: Classification, with_steps: bool, compact: bool = False,
                        min_confidence: float | None = None) -> dict:
    """`top`: the TOP best guesses, best first; `sure` (when a minimum confidence is given):
    whether the best guess reaches it. The input the network read goes as rows of floats, or in
    the compact image form when asked or when it is large (the ImageNet network's 3x224x224)."""
    if c.prepared.empty:
        seen = None
    elif compact or c.prepared.input.size > LISTED_INPUT:
        seen = image(c.prepared.input, compact=True)
    else:
        seen = numbers(c.prepared.input)
    top = None
    if c.probabilities is not None:
        order = np.argsort(c.probabilities)[::-1][:TOP]
        top = [{"label": c.labels[i], "index": int(i), "probability": round(float(c.probabilities[i]), 6)} for i in order]
    body = {
        "model": c.model_id,
        "labels": c.labels,
        "probabilities": None if c.probabilities is None else [round(p, 6) for p in c.probabilities],
        "prediction": c.prediction,
        "confidence": None if c.confidence is None else round(c.confidence, 6),
        "top": top,
        "input": seen,
    }
    if min_confidence is not None and c.confidence is not None:
        body["sure"] = c.confidence >= min_confidence
    if with_steps:
        body["steps"] = steps_json(c.prepared, compact)
    return body


def card_summary(card: ModelCard, default_id: str) -> dict:
    return {"id": card.id, "name": card.name, "task": card.task, "dataset": card.dataset,
            "labels": card.labels, "test_accuracy": card.test_accuracy,
            "architecture": card.architecture, "parameters": card.parameters, "input_shape": card.input_shape,
            "default": card.id == default_id, "made_name": card.made_name}


@lru_cache(maxsize=64)
def qr_svg(text: str) -> bytes:
    """A QR code of the text as SVG (raises segno.DataOverflowError past about 2,300 bytes)."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=8, border=2, dark="#111", light="#fff", xmldecl=False)
    return out.getvalue()
