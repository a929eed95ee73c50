"""Shared request dependencies, as Annotated aliases."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request, UploadFile
from PIL import Image
from pydantic import Field

from app.errors import ApiError
from app.settings import Settings
from engine import imageio
from engine.store import ModelCard, ModelRegistry, StoredModel


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


# Row ids (photos, classes, drawings) as SQLite stores them: a number past 2**63 is a 422, not a 500.
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=0, le=MAX_ROW_ID, description="a whole number id")]
FormRowId = Annotated[int, Field(ge=0, le=MAX_ROW_ID)]

SettingsDep = Annotated[Settings, Depends(_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(_registry)]


def find_model(registry: ModelRegistry, model_id: str) -> StoredModel:
    """The model with its network, or a 404 that lists the known ids."""
    find_card(registry, model_id)
    return registry.get(model_id)


def find_card(registry: ModelRegistry, model_id: str) -> ModelCard:
    """The model's card (its network is not loaded), or a 404 that lists the known ids."""
    try:
        return registry.card(model_id)
    except KeyError as exc:
        raise ApiError(404, "unknown_model", exc.args[0] + " See GET /api/models.") from exc


IMAGE_STATUS = {"empty": 400, "corrupt": 400, "unsupported": 415, "too_large": 413}
BLANK_MESSAGE = ("No ink or object was found in the image: it is blank or has almost no contrast. "
                 "Draw or photograph a digit with a clear stroke.")


def decode_upload(image: UploadFile, settings: Settings) -> Image.Image:
    """An uploaded file as a decoded image, or the matching 4xx (the size cap is already enforced
    by the body-size middleware; reading one byte more keeps a lying client honest)."""
    try:
        return imageio.decode(image.file.read(settings.max_upload_bytes + 1), settings.max_image_pixels,
                              settings.max_decoded_bytes)
    except imageio.ImageError as exc:
        raise ApiError(IMAGE_STATUS[exc.code], f"image_{exc.code}", str(exc)) from exc


def blank_image() -> ApiError:
    return ApiError(422, "image_blank", BLANK_MESSAGE)
