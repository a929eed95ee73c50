"""Fine-tune a model on a class's own drawings, live: a few dozen small steps on those drawings
mixed with replayed training images (so the network learns the class's handwriting without
forgetting the rest). Bounded: at most `steps` mini-batches on at most a few hundred images."""
from __future__ import annotations

import copy
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine import datasets
from engine.stores import store
from engine.training.augment import AugmentConfig, augment
from engine.training.train import as_input


@torch.inference_mode()
def guesses(model: nn.Module, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(guess, confidence) per image (N, 28, 28) uint8."""
    if not len(images):
        return np.zeros(0, int), np.zeros(0)
    probs = torch.softmax(model.eval()(as_input(images)), 1)
    confidence, guess = probs.max(1)
    return guess.numpy(), confidence.numpy()


def finetune(model: nn.Module, images: np.ndarray, labels: np.ndarray, replay: datasets.Split,
             steps: int = 40, learning_rate: float = 1e-3, replay_per_step: int = 64, seed: int = 0) -> tuple[nn.Module, dict]:
    """A tuned copy of `model` and a report: accuracy on the class's drawings before and after,
    and on held replay images (forgetting), with the time taken."""
    started = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    check = rng.choice(len(replay), min(500, len(replay)), replace=False)
    accuracy = lambda m, x, y: float((guesses(m, x)[0] == y).mean()) if len(y) else None
    before = accuracy(model, images, labels), accuracy(model, replay.images[check], replay.labels[check])
    tuned = copy.deepcopy(model)
    optimizer = torch.optim.Adam(tuned.parameters(), lr=learning_rate)
    ours = as_input(images)
    ours_y = torch.from_numpy(labels.astype(np.int64))
    cfg = AugmentConfig()
    for _ in range(steps):
        idx = rng.choice(len(replay), replay_per_step, replace=False)
        x = torch.cat([ours, ours, as_input(replay.images[idx])])  # the class's drawings weigh double
        y = torch.cat([ours_y, ours_y, torch.from_numpy(replay.labels[idx].astype(np.int64))])
        tuned.train()
        loss = F.cross_entropy(tuned(augment(x, cfg, g)), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    tuned.eval()
    after = accuracy(tuned, images, labels), accuracy(tuned, replay.images[check], replay.labels[check])
    return tuned, {"drawings": int(len(labels)), "steps": steps,
                   "class_accuracy_before": before[0], "class_accuracy_after": after[0],
                   "replay_accuracy_before": before[1], "replay_accuracy_after": after[1],
                   "seconds": round(time.perf_counter() - started, 2)}


def tune_and_save(base: store.StoredModel, images: np.ndarray, labels: np.ndarray, replay: datasets.Split,
                  everything: np.ndarray, new_id: str, name: str, owner: str | None, folder: Path) -> dict:
    """Fine-tune `base` on a class's chosen drawings, save the result as model `new_id` in `folder`,
    and read every drawing of the class (`everything`) with it: {"report", "guess", "confidence"}.
    Runs in the server, or in a district worker (engine.training.district.run_finetune)."""
    tuned, report = finetune(base.module, images, labels, replay)
    card = replace(base.card, id=new_id, name=name, owner=owner,
                   training={**report, "from": base.card.id, "command": "POST /api/sessions/{code}/finetune"})
    store.save(folder, card, tuned)
    guess, confidence = guesses(tuned, everything)
    return {"report": report, "guess": guess.tolist(), "confidence": confidence.tolist()}
