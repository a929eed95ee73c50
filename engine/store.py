"""Model files: weights as safetensors plus a JSON model card, side by side.

`<dir>/<id>.safetensors` holds the state dict; `<dir>/<id>.json` says what the model is
(architecture, dataset, labels, preprocessing, accuracy, how it was made). Nothing is unpickled.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from engine import models

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass
class ModelCard:
    id: str
    name: str
    task: str                      # "digits", "fashion" or "project" (a project's own classes)
    dataset: str                   # dataset it was trained on
    labels: list[str]
    architecture: str              # a preset name in engine.models.PRESETS, or "custom"
    preprocess: str                # "digit", "object" or "photo": how an image is prepared (engine.preprocess)
    test_accuracy: float | None = None
    parameters: int | None = None
    training: dict = field(default_factory=dict)  # epochs, seed, seconds, command, optimizer...
    description: str = ""
    layers: list | None = None     # the layer list, for architectures that are not presets
    input_shape: list[int] = field(default_factory=lambda: list(models.INPUT_SHAPE))  # (C, H, W)

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
    module = build_for(card)
    module.load_state_dict(load_file(str(Path(card_path).with_suffix(".safetensors"))))
    module.eval()
    return StoredModel(card, module)


def build_for(card: ModelCard) -> nn.Sequential:
    """The untrained network a card describes."""
    return models.build(card.architecture if card.layers is None else card.layers, len(card.labels), card.input_shape)


def load_folder(folder: Path) -> dict[str, StoredModel]:
    """Every model in a folder, keyed by id, in file-name order."""
    found = {}
    for card_path in sorted(Path(folder).glob("*.json")):
        if card_path.with_suffix(".safetensors").is_file():
            stored = load(card_path)
            found[stored.card.id] = stored
    return found


class ModelRegistry:
    """The models a server can use: shipped ones first, then user-made ones from the last folder
    (same id: user wins). Only user-made models can be renamed or deleted."""

    def __init__(self, folders: list[Path]):
        self.folders = [Path(f) for f in folders]
        self.user_folder = self.folders[-1]
        self.models: dict[str, StoredModel] = {}
        self.user_ids: set[str] = set()
        for folder in self.folders:
            if folder.is_dir():
                found = load_folder(folder)
                self.models.update(found)
                if folder == self.user_folder and len(self.folders) > 1:
                    self.user_ids |= set(found)

    def add(self, model_id: str) -> StoredModel:
        """Load a model that was just saved into the user folder."""
        stored = load(self.user_folder / f"{model_id}.json")
        self.models[model_id] = stored
        self.user_ids.add(model_id)
        return stored

    def _user_model(self, model_id: str) -> StoredModel:
        stored = self.get(model_id)
        if model_id not in self.user_ids:
            raise PermissionError(f"{model_id!r} ships with NeuronLab and cannot be changed or deleted.")
        return stored

    def rename(self, model_id: str, name: str) -> ModelCard:
        stored = self._user_model(model_id)
        stored.card.name = name
        path = self.user_folder / f"{model_id}.json"
        tmp = path.with_suffix(".json.part")
        tmp.write_text(json.dumps(stored.card.to_json(), indent=2) + "\n")
        tmp.replace(path)
        return stored.card

    def delete(self, model_id: str) -> None:
        self._user_model(model_id)
        for suffix in (".json", ".safetensors"):
            (self.user_folder / f"{model_id}{suffix}").unlink(missing_ok=True)
        del self.models[model_id]
        self.user_ids.discard(model_id)

    def weights_path(self, model_id: str) -> Path:
        self.get(model_id)
        for folder in reversed(self.folders):
            if (folder / f"{model_id}.safetensors").is_file():
                return folder / f"{model_id}.safetensors"
        raise KeyError(f"the weights of {model_id!r} are missing")

    def get(self, model_id: str) -> StoredModel:
        if model_id not in self.models:
            known = ", ".join(sorted(self.models)) or "none are installed"
            raise KeyError(f"There is no model {model_id!r}. Known models: {known}.")
        return self.models[model_id]

    def cards(self) -> list[ModelCard]:
        # list() copies in one step: the job thread may add a model meanwhile
        return [m.card for m in list(self.models.values())]
