"""One place that turns engine results into JSON.

Images travel in one of two forms: readable lists (HTTP API: `input` as rows of floats 0..1, step
images as rows of 0..255 ints) or compact (the live WebSocket: every image as
{"width", "height", "base64"} of its 0..255 bytes, row by row), which is ~10x smaller and cheaper.
"""
from __future__ import annotations

import base64
import io
from functools import lru_cache

import numpy as np
import segno

from engine.inference import Classification
from engine.preprocess import Prepared, resize
from engine.store import ModelCard

THUMBNAIL = 64  # longest side of step images sent to the page


def floats(a: np.ndarray, decimals: int = 4) -> list[list[float]]:
    return np.round(a.astype(np.float64), decimals).tolist()


def to_bytes(a: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(a, 0, 1) * 255).astype(np.uint8)


def image(a: np.ndarray, compact: bool) -> list[list[int]] | dict:
    """A 0..1 array (H, W) as rows of 0..255 integers, or in compact form; a colour input
    (3, H, W) compact is {"width", "height", "channels": 3, "base64"} of RGB bytes, pixel by pixel."""
    if compact:
        h, w = a.shape[-2:]
        extra = {} if a.ndim == 2 else {"channels": a.shape[0]}
        pixels = a if a.ndim == 2 else a.transpose(1, 2, 0)
        return {"width": w, "height": h, **extra, "base64": base64.b64encode(to_bytes(pixels).tobytes()).decode()}
    return to_bytes(a).tolist()


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


def classification_json(c: Classification, with_steps: bool, compact: bool = False) -> dict:
    if c.prepared.empty:
        seen = None
    else:
        seen = image(c.prepared.input, compact) if compact else floats(c.prepared.input)
    body = {
        "model": c.model_id,
        "labels": c.labels,
        "probabilities": None if c.probabilities is None else [round(p, 6) for p in c.probabilities],
        "prediction": c.prediction,
        "input": seen,
    }
    if with_steps:
        body["steps"] = steps_json(c.prepared, compact)
    return body


def card_summary(card: ModelCard, default_id: str) -> dict:
    return {"id": card.id, "name": card.name, "task": card.task, "dataset": card.dataset,
            "labels": card.labels, "test_accuracy": card.test_accuracy,
            "architecture": card.architecture, "parameters": card.parameters, "input_shape": card.input_shape,
            "default": card.id == default_id}


@lru_cache(maxsize=64)
def qr_svg(text: str) -> bytes:
    """A QR code of the text as SVG (raises segno.DataOverflowError past about 2,300 bytes)."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=8, border=2, dark="#111", light="#fff", xmldecl=False)
    return out.getvalue()
