"""The model catalogue: list, card, rename, delete, download, export."""
from fastapi import APIRouter
from fastapi.responses import FileResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from app.deps import ClassroomDep, RegistryDep, SettingsDep
from app.errors import ApiError
from app.owners import CallerDep
from app.serialize import card_summary
from engine import imageio
from engine.activations import filters as conv_filters
from engine.export import standalone_script
from engine.stores import files

router = APIRouter(prefix="/api/models", tags=["models"])


class Rename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=60, description="the new display name")


def visible(card, registry, caller) -> bool:
    """Listings show shipped models, models trained here with no owner, and the caller's own."""
    return card.id not in registry.user_ids or card.owner is None or caller.owns(card.owner)


@router.get("")
def list_models(registry: RegistryDep, settings: SettingsDep, caller: CallerDep) -> dict:
    """The models this client may use: shipped ones and its own (the admin sees all): id, task,
    labels, test accuracy; `mine` marks the ones it may rename or delete."""
    return {"default": settings.default_model,
            "models": [{**card_summary(c, settings.default_model), "trained_here": c.id in registry.user_ids,
                        "mine": c.id in registry.user_ids and caller.owns(c.owner)}
                       for c in registry.cards() if visible(c, registry, caller)]}


@router.get("/{model_id}")
def model_card(model_id: str, registry: RegistryDep) -> dict:
    """The full model card: architecture, data, training settings, accuracy, the command that made it."""
    return registry.card(model_id).public()


def _owned(model_id: str, registry, caller) -> None:
    """404 for no such model, 403 for a shipped one or another owner's."""
    card = registry.user_card(model_id)
    caller.require(card.owner, "model")


@router.patch("/{model_id}")
def rename(model_id: str, body: Rename, registry: RegistryDep, settings: SettingsDep, caller: CallerDep) -> dict:
    """Rename a model trained here (its owner or the admin; shipped models cannot be changed)."""
    _owned(model_id, registry, caller)
    return card_summary(registry.rename(model_id, body.name), settings.default_model)


@router.delete("/{model_id}", status_code=204)
def delete(model_id: str, registry: RegistryDep, classroom: ClassroomDep, caller: CallerDep) -> None:
    """Delete a model trained here, with its weights and card (its owner or the admin). A model
    that a live class session reads drawings with cannot be deleted until the session ends."""
    _owned(model_id, registry, caller)
    using = classroom.sessions.live_using(model_id)
    if using:
        raise ApiError(409, "model_in_use", f"The class session {using[0]} is reading drawings with this model; "
                       "end the session first, then delete the model.")
    registry.delete(model_id)


@router.get("/{model_id}/weights")
def weights(model_id: str, registry: RegistryDep) -> FileResponse:
    """The weights as a safetensors file."""
    return FileResponse(registry.weights_path(model_id), media_type="application/octet-stream",
                        filename=f"{model_id}.safetensors")


@router.get("/{model_id}/export", response_class=PlainTextResponse)
def export(model_id: str, registry: RegistryDep) -> PlainTextResponse:
    """A short standalone PyTorch script that rebuilds the network and loads the weights."""
    script = standalone_script(registry.get(model_id))
    return PlainTextResponse(script, media_type="text/x-python",
                             headers={"Content-Disposition": f'attachment; filename="{model_id}.py"'})


@router.get("/{model_id}/history")
def history(model_id: str, registry: RegistryDep) -> dict:
    """The first conv layer's filters and its feature maps of one test image, from the start of
    training and every quarter epoch: {"snapshots": [{"step", "epoch", "weights", "maps"}], "image"}
    (maps: images of signed values, 128 = 0, each with its scale; kept by an older version: upgraded)."""
    path = registry.history_path(model_id)
    if path is None:
        raise ApiError(404, "no_history", f"{model_id!r} has no filters over training time: it has no "
                       "convolution layer, ships with NeuronLab, or was trained before they were kept.")
    kept = files.read_json(path)
    for snapshot in kept["snapshots"]:
        if isinstance(snapshot["maps"], str):
            snapshot["maps"] = {**imageio.upgrade(snapshot.pop("maps"), snapshot.pop("map_shape")), "scale": 1.0}
    kept["image"] = imageio.upgrade(kept["image"], kept.pop("image_shape", None))
    return kept


@router.get("/{model_id}/filters")
def filters(model_id: str, registry: RegistryDep) -> dict:
    """Each conv layer's learned weights (out, in, kH, kW) and biases."""
    try:
        return {"model": model_id, "layers": conv_filters(registry.get(model_id)),
                "history": registry.history_path(model_id) is not None}
    except ValueError as exc:
        raise ApiError(422, "no_conv_layers", str(exc)) from exc
