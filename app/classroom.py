"""Class sessions as a service: the session store, the galleries that follow each session live,
and fine-tuning the session's model on the class's own drawings (one at a time)."""
from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import numpy as np

from app.errors import ApiError
from app.hub import GalleryHub
from app.serialize import image as image_json
from engine import datasets
from engine.stores.sessions import SessionStore
from engine.stores.store import ModelCard, ModelRegistry
from engine.training.lifecycle import Jobs


def pixels(drawings: list[dict]) -> np.ndarray:
    """The 28x28 inputs the drawings were read as, (N, 28, 28) uint8."""
    return np.stack([np.frombuffer(d["input"], np.uint8).reshape(28, 28) for d in drawings])


def drawing_json(d: dict, labels: list[str]) -> dict:
    return {"id": d["id"], "student": d["student"], "image": image_json(pixels([d])[0] / 255, compact=True),
            "guess": labels[d["guess"]], "confidence": round(d["confidence"], 4),
            "label": None if d["label"] is None else labels[d["label"]],
            "misread": None if d["label"] is None else d["label"] != d["guess"], "in_dataset": d["in_dataset"]}


class Classroom:
    def __init__(self, folder: Path, registry: ModelRegistry, galleries: GalleryHub, jobs: Jobs,
                 database_url: str | None = None):
        self.sessions = SessionStore(folder, database_url=database_url)
        self.jobs = jobs  # who fine-tunes: this server, or in a district a training worker
        self.galleries = galleries
        self.registry = registry
        self.finetune_lock = asyncio.Lock()

    def model(self, session: dict) -> ModelCard:
        """The card of the model the session reads drawings with; 409 if it is no longer there."""
        try:
            return self.registry.card(session["model_id"])
        except KeyError as exc:
            raise ApiError(409, "model_missing", f"The model this session reads drawings with ({session['model_id']}) "
                           "is no longer on the server. The teacher can start a new session.") from exc

    def info(self, code: str) -> dict:
        """The session and the labels of the model it reads drawings with."""
        session = self.sessions.get(code)
        return {**session, "labels": self.model(session).labels}

    def snapshot(self, code: str) -> dict:
        session = self.info(code)
        return {"type": "snapshot", **session, "project": self.sessions.shared(code, live=False),  # for the teacher
                "drawings": [drawing_json(d, session["labels"]) for d in self.sessions.drawings(code)]}

    def publish(self, code: str, event: dict) -> None:
        self.galleries.publish(code, event)

    def publish_drawing(self, code: str, drawing: dict, labels: list[str]) -> dict:
        """Tell the gallery about a new or changed drawing; the drawing as JSON."""
        shown = drawing_json(drawing, labels)
        self.publish(code, {"type": "drawing", "drawing": shown})
        return shown

    def finetune(self, session: dict) -> dict:
        """Fine-tune the session's model on the class dataset (with replayed training images), save
        it as a new model, re-read every drawing with it and make it the session's model. The jobs'
        transport tunes it: here, or in a district on a training worker (the replicas' cores read
        live frames)."""
        code = session["code"]
        drawings = self.sessions.drawings(code)
        chosen = [d for d in drawings if d["in_dataset"]]
        if not chosen:
            raise ApiError(422, "empty_dataset", "The class dataset is empty: put misread drawings with their true "
                           "labels into it first.")
        base = self.model(session)
        dataset = base.dataset if base.dataset in datasets.SPECS else "mnist"
        n = len(session["finetunes"]) + 1
        work = dict(images=pixels(chosen), labels=np.array([d["label"] for d in chosen]), everything=pixels(drawings),
                    new_id=f"class-{code.lower()}-{n}-{secrets.token_hex(16)}",
                    name=f"{base.name}, tuned by class {code} ({n})", owner=self.sessions.owner(code))
        done = self.jobs.finetune(self.registry.weights_path(base.id).with_suffix(".json"), dataset, **work)
        self.registry.add(work["new_id"])
        self.sessions.regrade(code, {d["id"]: (int(g), float(c)) for d, g, c in zip(drawings, done["guess"], done["confidence"])})
        self.sessions.set_model(code, work["new_id"], {**done["report"], "model_id": work["new_id"]})
        return {**done["report"], "model_id": work["new_id"]}

    async def close(self) -> None:
        await self.galleries.close()
