"""One place that turns engine results into JSON."""
from __future__ import annotations

import numpy as np

from engine.inference import Classification
from engine.preprocess import Prepared, resize
from engine.store import ModelCard

THUMBNAIL = 64  # longest side of step images sent to the page


def floats(a: np.ndarray, decimals: int = 4) -> list[list[float]]:
    return np.round(a.astype(np.float64), decimals).tolist()


def pixels(a: np.ndarray) -> list[list[int]]:
    """A 0..1 array as rows of 0..255 integers (compact for drawing)."""
    return np.rint(np.clip(a, 0, 1) * 255).astype(np.uint8).tolist()


def thumbnail(a: np.ndarray) -> tuple[np.ndarray, float]:
    """Shrink so the longer side is at most THUMBNAIL; returns (image, scale)."""
    h, w = a.shape
    scale = min(1.0, THUMBNAIL / max(h, w))
    if scale == 1.0:
        return a, 1.0
    return resize(a, max(1, round(h * scale)), max(1, round(w * scale))), scale


def steps_json(p: Prepared) -> dict:
    ink, scale = thumbnail(p.ink)
    steps = {"ink": pixels(ink), "ink_size": list(p.ink.shape[::-1]), "notes": p.notes}
    if p.empty:
        return steps
    steps.update(
        bbox=[round(v * scale, 2) for v in p.bbox],
        cropped=pixels(thumbnail(p.cropped)[0]),
        cropped_size=list(p.cropped.shape[::-1]),
        fitted=pixels(p.fitted),
        center_of_mass=[round(v, 2) for v in p.center_of_mass],
    )
    return steps


def classification_json(c: Classification, with_steps: bool) -> dict:
    body = {
        "model": c.model_id,
        "labels": c.labels,
        "probabilities": None if c.probabilities is None else [round(p, 6) for p in c.probabilities],
        "prediction": c.prediction,
        "input": None if c.prepared.empty else floats(c.prepared.input),
    }
    if with_steps:
        body["steps"] = steps_json(c.prepared)
    return body


def card_summary(card: ModelCard, default_id: str) -> dict:
    return {"id": card.id, "name": card.name, "task": card.task, "dataset": card.dataset,
            "labels": card.labels, "test_accuracy": card.test_accuracy,
            "architecture": card.architecture, "parameters": card.parameters,
            "default": card.id == default_id}
