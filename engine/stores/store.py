"""Model files: weights as safetensors plus a JSON model card, side by side.

`<dir>/<id>.safetensors` holds the state dict; `<dir>/<id>.json` says what the model is
(architecture, dataset, labels, preprocessing, accuracy, how it was made, who owns it). Nothing is
unpickled. Both files are written whole or not at all (engine.stores.files), weights first, so a card
never points at missing weights; a card that cannot be read is skipped with a log line.

The registry keeps every card in memory (small) and the networks themselves in a bounded LRU:
a server with hundreds of trained models holds only the few in use.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load as load_weights
from safetensors.torch import save as weights_bytes
from torch import nn

from engine import models, photonet
from engine.refusal import Refusal
from engine.stores import files
from engine.stores.cards import ModelCard
from engine.stores.db import MODEL_NAME_LENGTH, clean_name

log = logging.getLogger("neuronlab")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")


class UnknownModel(Refusal, KeyError):
    """404 unknown_model: no model by that id, or its weights are missing or damaged. A KeyError
    too, for the code that asks the registry and carries on without the model."""

    def __init__(self, message: str):
        super().__init__(404, "unknown_model", message)

    def __str__(self) -> str:  # the message as written (a KeyError would show it quoted)
        return self.message

    def __reduce__(self):
        return type(self), (self.message,)


class ShippedModel(Refusal, PermissionError):
    """403 shipped_model: a model that ships with NeuronLab cannot be changed or deleted. A
    PermissionError too, for the code that skips what it may not remove."""

    def __init__(self, message: str):
        super().__init__(403, "shipped_model", message)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        return type(self), (self.message,)


TASKS = {"mnist": ("digits", "digit"), "fashion": ("fashion", "object")}  # dataset: (task, preparation)


def new_card(model_id: str, name: str, architecture: str | list, dataset: str, labels, module: nn.Module,
             accuracy: float | None, training: dict, *, owner: str | None = None, input_shape=None,
             task: str | None = None, preprocess: str | None = None, base: str | None = None,
             made_name: dict | None = None) -> ModelCard:
    """The card of a network just trained (the train command, a training-lab job, a project's job):
    the task and how images are prepared follow from the dataset ("project:<id>" reads photos);
    a preset is named, any other layer list kept whole; `base`: the model whose frozen features a
    transfer head reads."""
    default_task, default_preprocess = ("project", "photo") if dataset.startswith("project:") else TASKS[dataset]
    preset = isinstance(architecture, str)
    return ModelCard(
        id=model_id, name=name, task=task or default_task, dataset=dataset, labels=list(labels),
        architecture=architecture if preset else "custom", preprocess=preprocess or default_preprocess,
        test_accuracy=None if accuracy is None else round(accuracy, 4), parameters=models.count_parameters(module),
        training=training, description=models.DESCRIPTIONS.get(architecture, "") if preset else "",
        layers=None if preset else architecture, input_shape=list(input_shape or models.INPUT_SHAPE), owner=owner,
        base=base, made_name=made_name)


@dataclass
class StoredModel:
    card: ModelCard
    module: nn.Sequential  # in eval mode


def save(folder: Path, card: ModelCard, model: nn.Module) -> Path:
    """Write weights, then card, each whole (temp file, fsync, rename); returns the weights path.
    On a full disk this raises OSError and leaves neither file behind."""
    if not ID_PATTERN.match(card.id):
        raise ValueError(f"model id {card.id!r} must be lowercase letters, digits, '-' or '_'")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{card.id}.safetensors"
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    data = weights_bytes(state, metadata={"architecture": card.architecture, "id": card.id})
    files.write_bytes(weights, data)
    try:
        files.write_json(folder / f"{card.id}.json", card.to_json())
    except BaseException:
        weights.unlink(missing_ok=True)
        raise
    return weights


def read_card(path: Path) -> ModelCard:
    data = files.read_json(path)
    if not isinstance(data, dict):
        raise ValueError("a model card must be a JSON object")
    return ModelCard(**{k: v for k, v in data.items() if k in ModelCard.__dataclass_fields__})


def load(card_path: Path) -> StoredModel:
    """Rebuild the architecture named in the card and load its safetensors weights."""
    card = read_card(card_path)
    return StoredModel(card, load_module(card, Path(card_path).with_suffix(".safetensors")))


def load_module(card: ModelCard, weights: Path) -> nn.Sequential:
    """The network a card describes with its weights (for a transfer head: the head alone)."""
    module = build_for(card)
    module.load_state_dict(load_weights(Path(weights).read_bytes()))
    return module.eval()


def build_for(card: ModelCard) -> nn.Sequential:
    """The untrained network a card describes; a transfer head is built on its base's features."""
    if card.base is not None:
        return models.build_layers(card.layers or [], len(card.labels), input_shape=(photonet.FEATURES,))
    if card.architecture == "efficientnet_lite0":
        return photonet.EfficientNetLite0(len(card.labels))
    return models.build(card.architecture if card.layers is None else card.layers, len(card.labels), card.input_shape)


MAX_HEADER = 100 * 1024 * 1024  # the safetensors library's own limit on a header


def check_weights(path: Path) -> None:
    """ValueError unless the file looks like safetensors: an 8-byte header length, a JSON header
    of that length, every tensor's bytes inside the file. Reads the header only."""
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        if size < 8 or length > min(size - 8, MAX_HEADER):
            raise ValueError("it is not a safetensors file (no valid header)")
        try:
            header = json.loads(f.read(length))
        except ValueError:
            raise ValueError("it is not a safetensors file (its header is not JSON)") from None
    data = size - 8 - length
    if not isinstance(header, dict) or not all(
            k == "__metadata__" or (isinstance(v, dict) and isinstance(v.get("data_offsets"), list)
                                    and len(v["data_offsets"]) == 2 and all(isinstance(o, int) for o in v["data_offsets"])
                                    and 0 <= v["data_offsets"][0] <= v["data_offsets"][1] <= data)
            for k, v in header.items()):
        raise ValueError("it is not a safetensors file (its header does not describe its tensors)")


def scan_folder(folder: Path, shared: bool = False) -> dict[str, ModelCard]:
    """Every readable card with its weights in a folder, keyed by id, in file-name order. A card
    that is empty, half-written or not a card is skipped with a log line: it never stops a start.
    `shared`: other servers write to the folder too (their young temporary files are left alone)."""
    found = {}
    files.remove_partial(folder, files.SHARED_PARTIAL_AGE if shared else 0.0)
    for card_path in sorted(Path(folder).glob("*.json")):
        if not card_path.with_suffix(".safetensors").is_file():
            continue
        try:
            card = read_card(card_path)
            if card.id != card_path.stem:
                raise ValueError(f"its id {card.id!r} does not match the file name")
            check_weights(card_path.with_suffix(".safetensors"))
        except (OSError, ValueError, TypeError) as exc:
            log.warning("skipped the model %s (%s and its .safetensors weights): %s", card_path.stem, card_path, exc)
            continue
        found[card.id] = card
    return found


class ModelRegistry:
    """The models a server can use: shipped ones first, then user-made ones from the last folder
    (same id: user wins). Only user-made models can be renamed or deleted. Cards stay in memory;
    networks are loaded when first used and at most `cache_size` are kept.

    `shared` (district mode): other servers add, rename and delete models in the same user folder,
    so a user model's card is checked against its file (one stat) whenever it is asked for, and
    listings look at the folder again."""

    def __init__(self, folders: list[Path], cache_size: int = 8, shared: bool = False):
        self.folders = [Path(f) for f in folders]
        self.shared = shared
        self._stamps: dict[str, int] = {}  # user model id -> its card file's mtime_ns, as last read
        self.user_folder = self.folders[-1]
        self.cache_size = cache_size
        self.by_id: dict[str, ModelCard] = {}
        self.paths: dict[str, Path] = {}     # id -> its weights
        self.user_ids: set[str] = set()
        self._loaded: OrderedDict[str, StoredModel] = OrderedDict()
        self._lock = threading.RLock()
        for folder in self.folders:
            if folder.is_dir():
                found = scan_folder(folder, shared and folder == self.user_folder)
                self.by_id.update(found)
                self.paths.update({i: folder / f"{i}.safetensors" for i in found})
                if folder == self.user_folder and len(self.folders) > 1:
                    self.user_ids |= set(found)

    def __contains__(self, model_id: object) -> bool:
        if isinstance(model_id, str):
            self._refresh(model_id)
        return model_id in self.by_id

    def _refresh(self, model_id: str) -> None:
        """Shared mode: bring one user model in line with its files (another server may have added,
        renamed or deleted it). Shipped models and ids no model could have are left alone."""
        if not self.shared or not ID_PATTERN.match(model_id) or (model_id in self.by_id and model_id not in self.user_ids):
            return
        path = self.user_folder / f"{model_id}.json"
        try:
            stamp = path.stat().st_mtime_ns
            if not path.with_suffix(".safetensors").is_file():
                raise FileNotFoundError(path.with_suffix(".safetensors"))
        except OSError:
            self._forget(model_id)
            return
        if self._stamps.get(model_id) != stamp:
            try:
                self.add(model_id)
            except (OSError, ValueError, TypeError) as exc:  # half-written by another server: next time
                log.warning("could not read the model card %s: %s", path, exc)

    def _rescan(self) -> None:
        """Shared mode: every user model in the folder now, and none that is gone."""
        if not self.shared:
            return
        present = {p.stem for p in self.user_folder.glob("*.json") if ID_PATTERN.match(p.stem)}
        for model_id in present | self.user_ids:
            self._refresh(model_id)

    def _forget(self, model_id: str) -> None:
        with self._lock:
            if model_id in self.user_ids:
                self.by_id.pop(model_id, None)
                self.paths.pop(model_id, None)
            self._loaded.pop(model_id, None)
            self.user_ids.discard(model_id)
            self._stamps.pop(model_id, None)

    @property
    def models(self) -> dict[str, ModelCard]:
        return self.by_id

    def add(self, model_id: str) -> ModelCard:
        """Take in a model that was just saved into the user folder (its network loads when used)."""
        path = self.user_folder / f"{model_id}.json"
        stamp = path.stat().st_mtime_ns
        card = read_card(path)
        check_weights(path.with_suffix(".safetensors"))
        with self._lock:
            self.by_id[model_id], self.paths[model_id] = card, path.with_suffix(".safetensors")
            self._stamps[model_id] = stamp
            self.user_ids.add(model_id)
            self._loaded.pop(model_id, None)
        return card

    def user_card(self, model_id: str) -> ModelCard:
        card = self.card(model_id)
        if model_id not in self.user_ids:
            raise ShippedModel(f"{model_id!r} ships with NeuronLab and cannot be changed or deleted.")
        return card

    def rename(self, model_id: str, name: str) -> ModelCard:
        """A new name, by the rule every name follows (StoreError 422 if it breaks it)."""
        card = self.user_card(model_id)
        name = clean_name(name, "model", MODEL_NAME_LENGTH)
        files.write_json(self.user_folder / f"{model_id}.json", {**card.to_json(), "name": name, "made_name": None})
        card.name, card.made_name = name, None  # a person's name now: shown as given
        return card

    def delete(self, model_id: str) -> None:
        """Remove a user model; the card goes first, so a crash halfway leaves no card without weights."""
        self.user_card(model_id)
        for suffix in (".json", ".safetensors", ".history.json"):
            (self.user_folder / f"{model_id}{suffix}").unlink(missing_ok=True)
        self._forget(model_id)

    def weights_path(self, model_id: str) -> Path:
        self.card(model_id)
        if not self.paths[model_id].is_file():
            raise UnknownModel(f"The weights of model {model_id!r} are missing: it cannot be used. "
                               "Train it again, or ask the server's admin to remove it.")
        return self.paths[model_id]

    def history_path(self, model_id: str):
        """The file of the model's filters over training time, or None."""
        self.card(model_id)
        path = self.paths[model_id].with_name(f"{model_id}.history.json")
        return path if path.is_file() else None

    def card(self, model_id: str) -> ModelCard:
        self._refresh(model_id)
        card = self.by_id.get(model_id)
        if card is None:
            known = ", ".join(sorted(self.by_id)) or "none are installed"
            raise UnknownModel(f"There is no model {str(model_id)[:80]!r}. Known models: {known}. "
                               "See GET /api/models.")
        return card

    def get(self, model_id: str) -> StoredModel:
        """The model with its network, loaded now if it is not among the recently used."""
        card = self.card(model_id)
        with self._lock:
            stored = self._loaded.get(model_id)
            if stored is not None:
                self._loaded.move_to_end(model_id)
                return stored
        try:
            module = load_module(card, self.paths[model_id])
        except (OSError, ValueError, RuntimeError, SafetensorError) as exc:  # its weights changed on disk since the start
            log.warning("model %s cannot be read (%s): its weights file is damaged or gone", model_id, exc)
            raise UnknownModel(f"The weights of model {model_id!r} are damaged or gone: it cannot be used. "
                           "Train it again, or ask the server's admin to remove it.") from exc
        if card.base is not None:  # a head on a pretrained network's frozen body: one network
            module = nn.Sequential(*self.get(card.base).module.body(), *module).eval()
        stored = StoredModel(card, module)
        with self._lock:
            self._loaded[model_id] = stored
            while len(self._loaded) > self.cache_size:
                self._loaded.popitem(last=False)
        return stored

    def loaded(self) -> list[str]:
        return list(self._loaded)

    def cards(self) -> list[ModelCard]:
        self._rescan()
        return list(self.by_id.values())  # one step: the job thread may add a model meanwhile
