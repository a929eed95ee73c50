"""Reading one image or one live frame into the JSON a page shows: shared by the HTTP and
WebSocket endpoints and by the frame reader's worker process (app/frames.py), which must not import
a router."""
from __future__ import annotations

import logging

from app.errors import error_body
from app.serialize import classification_json
from app.settings import Settings
from engine import imageio
from engine.inference import Classification, classify
from engine.stores.store import StoredModel

log = logging.getLogger("neuronlab")


def classify_bytes(data: bytes, model: StoredModel, settings: Settings) -> Classification:
    """Decode untrusted bytes and classify them; raises imageio.ImageError."""
    return classify(model, imageio.decode(data, settings.max_image_pixels, settings.max_decoded_bytes))


def reply_for(data: bytes, model: StoredModel, settings: Settings, steps: bool = True) -> dict:
    if len(data) > settings.max_upload_bytes:
        return {"type": "error", **error_body("image_too_large", "The frame is larger than the upload limit.")}
    try:
        result = classify_bytes(data, model, settings)
    except imageio.ImageError as exc:
        return {"type": "error", **error_body(f"image_{exc.code}", str(exc))}
    except Exception:  # never let one bad frame end the stream
        log.exception("draw frame failed")
        return {"type": "error", **error_body("internal", "This frame could not be read; keep drawing.")}
    kind = "empty" if result.probabilities is None else "prediction"
    return {"type": kind, **classification_json(result, with_steps=steps, compact=True)}
