"""Shared request dependencies, as Annotated aliases: the services (built once, app.services),
settings, row ids, and reading an uploaded image."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, UploadFile
from PIL import Image
from pydantic import Field
from starlette.requests import HTTPConnection

from app.classroom import Classroom
from app.errors import ApiError
from app.frames import FrameReader
from app.photowork import PhotoWork
from app.services import Services
from app.settings import Settings
from app.teaching import Teaching
from app.training import Training
from engine import imageio
from engine.stores.projects import ProjectStore
from engine.stores.store import ModelRegistry, StoredModel


def services(conn: HTTPConnection) -> Services:
    """The app's services (a request or a WebSocket)."""
    return conn.app.state.services


def _settings(conn: HTTPConnection) -> Settings:
    return conn.app.state.settings


def _service(name: str):
    """A dependency that hands a route one of the services by name."""
    def service(conn: HTTPConnection):
        return getattr(services(conn), name)
    service.__name__ = name
    return Depends(service)


SettingsDep = Annotated[Settings, Depends(_settings)]
RegistryDep = Annotated[ModelRegistry, _service("registry")]
FramesDep = Annotated[FrameReader, _service("frames")]
TrainingDep = Annotated[Training, _service("training")]
ProjectsDep = Annotated[ProjectStore, _service("projects")]
TeachingDep = Annotated[Teaching, _service("teaching")]
ClassroomDep = Annotated[Classroom, _service("classroom")]
PhotosDep = Annotated[PhotoWork, _service("photos")]

# Row ids (photos, classes, drawings) as SQLite stores them: a number past 2**63 is a 422, not a 500.
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=0, le=MAX_ROW_ID, description="a whole number id")]
FormRowId = Annotated[int, Field(ge=0, le=MAX_ROW_ID)]


def on_photo_thread(photos: PhotoWork, stored: StoredModel, fn, *args):
    """Run fn(*args) where the photo network runs when this model reads photos through it
    (app.photowork); any other model right here."""
    return photos(fn, *args) if stored.card.preprocess == "imagenet" else fn(*args)


BLANK_MESSAGE = ("No ink or object was found in the image: it is blank or has almost no contrast. "
                 "Draw or photograph a digit with a clear stroke.")


def decode_upload(image: UploadFile, settings: Settings) -> Image.Image:
    """An uploaded file as a decoded image; a bad one raises imageio.ImageError, its own 4xx (the
    size cap is already enforced by the body-size middleware; reading one byte more keeps a lying
    client honest)."""
    return imageio.decode(image.file.read(settings.max_upload_bytes + 1), settings.max_image_pixels,
                          settings.max_decoded_bytes)


def blank_image() -> ApiError:
    return ApiError(422, "image_blank", BLANK_MESSAGE)
