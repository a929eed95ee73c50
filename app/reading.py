"""Reading live frames and class drawings into what a page shows, with a network compiled to numpy
(engine.lite): this runs in the frame reader's worker process (app/frames.py), which imports
neither torch nor the web framework (so it stays small), and must not import a router."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from app.serialize import classification_json, error_body
from engine import imageio
from engine.lite import Program, classify_prepared
from engine.preprocess import prepare

log = logging.getLogger("neuronlab")


@dataclass(frozen=True)
class Limits:
    """What an uploaded frame may be (from the server's settings)."""
    max_upload_bytes: int
    max_image_pixels: int
    max_decoded_bytes: int

    @classmethod
    def of(cls, settings) -> Limits:
        return cls(settings.max_upload_bytes, settings.max_image_pixels, settings.max_decoded_bytes)


def read_drawing(data: bytes, program: Program, limits: Limits) -> tuple[np.ndarray | None, list[float] | None]:
    """(the 28x28 the network read or None, probabilities or None) for a class-session drawing;
    raises engine.imageio.ImageError for a bad upload."""
    img = imageio.decode(data, limits.max_image_pixels, limits.max_decoded_bytes)
    result = classify_prepared(program, [prepare(img, program.preprocess)])[0]
    return result.prepared.input, result.probabilities


def replies_for(frames: list[tuple[bytes, Program, bool]], limits: Limits) -> list[dict]:
    """The reply to each live frame (bytes, its network, whether to include the preparation steps):
    each is decoded and prepared on its own, then the frames of one network share a forward pass.
    A bad frame gets an error reply; it never costs the others theirs."""
    replies: list[dict | None] = [None] * len(frames)
    ready: dict[str, list] = {}  # model id -> [(index, program, prepared, steps)]
    for i, (data, program, steps) in enumerate(frames):
        if len(data) > limits.max_upload_bytes:
            replies[i] = {"type": "error", **error_body("image_too_large", "The frame is larger than the upload limit.")}
            continue
        try:
            img = imageio.decode(data, limits.max_image_pixels, limits.max_decoded_bytes)
            ready.setdefault(program.model_id, []).append((i, program, prepare(img, program.preprocess), steps))
        except imageio.ImageError as exc:
            replies[i] = {"type": "error", **error_body(f"image_{exc.code}", str(exc))}
        except Exception:  # never let one bad frame end the stream
            log.exception("draw frame failed")
            replies[i] = unreadable()
    for group in ready.values():
        try:
            results = classify_prepared(group[0][1], [prepared for _, _, prepared, _ in group])
        except Exception:
            log.exception("draw frames failed")
            results = [None] * len(group)
        for (i, _, _, steps), result in zip(group, results):
            replies[i] = unreadable() if result is None else {
                "type": "empty" if result.probabilities is None else "prediction",
                **classification_json(result, with_steps=steps, compact=True)}
    return replies


def unreadable() -> dict:
    return {"type": "error", **error_body("internal", "This frame could not be read; keep drawing.")}
