"""Classify one image with a stored model: prepare it, run the network, softmax."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from engine.preprocess import Prepared, prepare
from engine.stores.store import StoredModel


@dataclass
class Classification:
    model_id: str
    labels: list[str]
    prepared: Prepared
    probabilities: list[float] | None  # same order as labels; None when there was no ink

    @property
    def prediction(self) -> str | None:
        if self.probabilities is None:
            return None
        return self.labels[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float | None:
        """The probability of the prediction."""
        return None if self.probabilities is None else max(self.probabilities)


@torch.inference_mode()
def probabilities(model: StoredModel, inputs: np.ndarray) -> np.ndarray:
    """Softmax probabilities (N, classes) for prepared inputs (N, 28, 28) or (N, C, H, W) in 0..1."""
    x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    x = x.unsqueeze(1) if x.ndim == 3 else x  # (N, C, H, W)
    return torch.softmax(model.module(x).double(), dim=1).numpy()


def classify(model: StoredModel, img: Image.Image) -> Classification:
    prepared = prepare(img, model.card.preprocess)
    probs = None if prepared.empty else probabilities(model, prepared.input[None])[0].tolist()
    return Classification(model.card.id, model.card.labels, prepared, probs)
