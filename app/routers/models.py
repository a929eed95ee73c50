"""The model catalogue."""
from fastapi import APIRouter

from app.deps import RegistryDep, SettingsDep, find_model
from app.serialize import card_summary

router = APIRouter(prefix="/api/models", tags=["models"])


@router.get("")
def list_models(registry: RegistryDep, settings: SettingsDep) -> dict:
    """Every model the server can use: id, task, labels, test accuracy."""
    return {"default": settings.default_model,
            "models": [card_summary(c, settings.default_model) for c in registry.cards()]}


@router.get("/{model_id}")
def model_card(model_id: str, registry: RegistryDep) -> dict:
    """The full model card: architecture, data, training settings, accuracy, the command that made it."""
    return find_model(registry, model_id).card.to_json()
