"""A model card: what a model is (architecture, dataset, labels, preparation, accuracy, how it was
made, who owns it), kept as JSON beside its weights (engine.stores.store). No torch here: the
live-frame reader (engine.lite) reads cards too."""
from __future__ import annotations

from dataclasses import dataclass, field

INPUT_SHAPE = (1, 28, 28)  # engine.models.INPUT_SHAPE, without importing torch


@dataclass
class ModelCard:
    id: str
    name: str
    task: str                      # "digits", "fashion" or "project" (a project's own classes)
    dataset: str                   # dataset it was trained on
    labels: list[str]
    architecture: str              # a preset name in engine.models.PRESETS, or "custom"
    preprocess: str                # "digit", "object", "photo" or "imagenet": how an image is prepared (engine.preprocess)
    test_accuracy: float | None = None
    parameters: int | None = None
    training: dict = field(default_factory=dict)  # epochs, seed, seconds, command, optimizer...
    description: str = ""
    layers: list | None = None     # the layer list, for architectures that are not presets
    input_shape: list[int] = field(default_factory=lambda: list(INPUT_SHAPE))  # (C, H, W)
    owner: str | None = None       # SHA-256 of its owner's token (None: shipped or shared)
    base: str | None = None        # a head trained on this model's frozen features (transfer learning)
    made_name: dict | None = None  # the parts of a name the server made (network, data, accuracy, time,
                                   # lr), so pages say it in the reader's language; None once a person names it

    def to_json(self) -> dict:
        return dict(self.__dict__)

    def public(self) -> dict:
        """What any client may read: everything but the owner's hash."""
        return {k: v for k, v in self.__dict__.items() if k != "owner"}
