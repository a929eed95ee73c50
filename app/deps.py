"""Shared request dependencies, as Annotated aliases."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.errors import ApiError
from app.settings import Settings
from engine.store import ModelRegistry, StoredModel


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


SettingsDep = Annotated[Settings, Depends(_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(_registry)]


def find_model(registry: ModelRegistry, model_id: str) -> StoredModel:
    """The model, or a 404 that lists the known ids."""
    try:
        return registry.get(model_id)
    except KeyError as exc:
        raise ApiError(404, "unknown_model", exc.args[0] + " See GET /api/models.") from exc
