"""The model catalogue: list, card, rename, delete, download, export."""
from fastapi import APIRouter
from fastapi.responses import FileResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from app.deps import RegistryDep, SettingsDep, find_model
from app.errors import ApiError
from app.serialize import card_summary
from engine.activations import filters as conv_filters
from engine.export import standalone_script

router = APIRouter(prefix="/api/models", tags=["models"])


class Rename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=60, description="the new display name")


def _user_only(fn, *args):
    try:
        return fn(*args)
    except PermissionError as exc:
        raise ApiError(403, "shipped_model", str(exc)) from exc


@router.get("")
def list_models(registry: RegistryDep, settings: SettingsDep) -> dict:
    """Every model the server can use: id, task, labels, test accuracy."""
    return {"default": settings.default_model,
            "models": [{**card_summary(c, settings.default_model), "trained_here": c.id in registry.user_ids}
                       for c in registry.cards()]}


@router.get("/{model_id}")
def model_card(model_id: str, registry: RegistryDep) -> dict:
    """The full model card: architecture, data, training settings, accuracy, the command that made it."""
    return find_model(registry, model_id).card.to_json()


@router.patch("/{model_id}")
def rename(model_id: str, body: Rename, registry: RegistryDep, settings: SettingsDep) -> dict:
    """Rename a model trained here (shipped models cannot be changed)."""
    find_model(registry, model_id)
    return card_summary(_user_only(registry.rename, model_id, body.name.strip()), settings.default_model)


@router.delete("/{model_id}", status_code=204)
def delete(model_id: str, registry: RegistryDep) -> None:
    """Delete a model trained here, with its weights and card."""
    find_model(registry, model_id)
    _user_only(registry.delete, model_id)


@router.get("/{model_id}/weights")
def weights(model_id: str, registry: RegistryDep) -> FileResponse:
    """The weights as a safetensors file."""
    find_model(registry, model_id)
    return FileResponse(registry.weights_path(model_id), media_type="application/octet-stream",
                        filename=f"{model_id}.safetensors")


@router.get("/{model_id}/export", response_class=PlainTextResponse)
def export(model_id: str, registry: RegistryDep) -> PlainTextResponse:
    """A short standalone PyTorch script that rebuilds the network and loads the weights."""
    script = standalone_script(find_model(registry, model_id))
    return PlainTextResponse(script, media_type="text/x-python",
                             headers={"Content-Disposition": f'attachment; filename="{model_id}.py"'})


@router.get("/{model_id}/filters")
def filters(model_id: str, registry: RegistryDep) -> dict:
    """Each conv layer's learned weights (out, in, kH, kW) and biases."""
    try:
        return {"model": model_id, "layers": conv_filters(find_model(registry, model_id))}
    except ValueError as exc:
        raise ApiError(422, "no_conv_layers", str(exc)) from exc
