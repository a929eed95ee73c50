"""A job cut short by a server that stopped (a kill, a crash, a power cut): its record is set
right from what it left in the models folder. A model saved whole (card and weights) says the job
got that far: done, when every run trained to its end, else interrupted with the model so far."""
from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

from engine.stores import files

log = logging.getLogger("neuronlab")
SAVED_MODEL = re.compile(r"-([0-9a-f]{32})(?:-([0-9]+))?\.json$")  # a job's model card: <name>-<job>[-<run + 1>]


def reconcile(record: dict, models: list[dict]) -> None:
    """A record left queued, running or paused by a server that stopped: what its job saved."""
    total, was = record.get("total_steps"), record["status"]
    if models:
        record["results"] = models
    finished = bool(models) and total is not None and all(r["steps"] >= total for r in models)
    if finished:  # the server stopped between the model's save and hearing of it
        record.update(status="done", finished=time.time(), error=None)
        return
    kept = "the model so far was saved" if record.get("results") else "nothing had been saved yet"
    record.update(status="interrupted", finished=time.time(),
                  error=f"The server stopped while this job was {was}; {kept}.")


def saved_models(models_dir: Path) -> dict[str, list[dict]]:
    """Job id -> the results of the models it saved (whole: card and weights), by run, as the
    model cards tell them (the confusion matrix and mistakes lived only in the lost event)."""
    found: dict[str, list[dict]] = {}
    try:
        names = os.listdir(Path(models_dir))
    except OSError:
        return found
    for name in names:
        match = SAVED_MODEL.search(name)
        if match is None or name.endswith(".history.json"):
            continue
        card_path = Path(models_dir) / name
        job_id, run = match.group(1), int(match.group(2) or 1) - 1
        try:
            card = files.read_json(card_path)
            training = card["training"]
            if training.get("job") != job_id or not card_path.with_suffix(".safetensors").is_file():
                continue
            found.setdefault(job_id, []).append({
                "run": run, "model_id": card["id"], "name": card["name"], "made_name": card.get("made_name"),
                "learning_rate": training.get("final_learning_rate", training.get("learning_rate")),
                "test_accuracy": card["test_accuracy"], "steps": training.get("steps", 0),
                "seconds": training.get("seconds"), "recovered": True})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("skipped the unreadable model card %s: %s", card_path, exc)
    for results in found.values():
        results.sort(key=lambda r: r["run"])
    return found
