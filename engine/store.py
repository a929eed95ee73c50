"""Model files: weights as safetensors plus a JSON model card, side by side.

`<dir>/<id>.safetensors` holds the state dict; `<dir>/<id>.json` says what the model is
(architecture, dataset, labels, preprocessing, accuracy, how it was made). Nothing is unpickled.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from engine import models

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass
class ModelCard:
    id: str
    name: str
    task: str                      # "digits" or "fashion": what the model reads
    dataset: str                   # dataset it was trained on
    labels: list[str]
    architecture: str              # a name in engine.models.ARCHITECTURES
    preprocess: str                # "digit" or "object": how an image is prepared (engine.preprocess)
    test_accuracy: float | None = None
    parameters: int | None = None
    training: dict = field(default_factory=dict)  # epochs, seed, seconds, command, optimizer...
    description: str = ""

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class StoredModel:
    card: ModelCard
    module: nn.Sequential  # in eval mode


def save(folder: Path, card: ModelCard, model: nn.Module) -> Path:
    """Write weights and card; returns the weights path."""
    if not ID_PATTERN.match(card.id):
        raise ValueError(f"model id {card.id!r} must be lowercase letters, digits, '-' or '_'")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{card.id}.safetensors"
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(weights), metadata={"architecture": card.architecture, "id": card.id})
    weights.chmod(0o644)  # safetensors writes 0600; servers often run as another user
    (folder / f"{card.id}.json").write_text(json.dumps(card.to_json(), indent=2) + "\n")
    return weights


def read_card(path: Path) -> ModelCard:
    data = json.loads(Path(path).read_text())
    return ModelCard(**{k: v for k, v in data.items() if k in ModelCard.__dataclass_fields__})


def load(card_path: Path) -> StoredModel:
    """Rebuild the architecture named in the card and load its safetensors weights."""
    card = read_card(card_path)
    module = models.build(card.architecture, len(card.labels))
    module.load_state_dict(load_file(str(Path(card_path).with_suffix(".safetensors"))))
    module.eval()
    return StoredModel(card, module)


def load_folder(folder: Path) -> dict[str, StoredModel]:
    """Every model in a folder, keyed by id, in file-name order."""
    found = {}
    for card_path in sorted(Path(folder).glob("*.json")):
        if card_path.with_suffix(".safetensors").is_file():
            stored = load(card_path)
            found[stored.card.id] = stored
    return found


class ModelRegistry:
    """The models a server can use: shipped ones first, then user-made ones (same id: user wins)."""

    def __init__(self, folders: list[Path]):
        self.folders = [Path(f) for f in folders]
        self.models: dict[str, StoredModel] = {}
        for folder in self.folders:
            if folder.is_dir():
                self.models.update(load_folder(folder))

    def get(self, model_id: str) -> StoredModel:
        if model_id not in self.models:
            known = ", ".join(sorted(self.models)) or "none are installed"
            raise KeyError(f"There is no model {model_id!r}. Known models: {known}.")
        return self.models[model_id]

    def cards(self) -> list[ModelCard]:
        return [m.card for m in self.models.values()]
