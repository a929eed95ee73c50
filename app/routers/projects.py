"""Teach your own classes: projects, their classes and photos, training and prediction.

The data lives in engine.stores.projects.ProjectStore (SQLite + files); training runs as a job of the
live-training lab's JobManager (same queue, limits and progress stream: /ws/train/{job id}).
"""
from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from app.deps import FormRowId, PhotosDep, ProjectsDep, RegistryDep, RowId, SettingsDep, TeachingDep, decode_upload, on_photo_thread
from app.errors import ApiError
from app.owners import Caller, CallerDep
from app.serialize import classification_json
from engine import choices
from engine.imageio import ImageError
from engine.inference import classify
from engine.stores import bundle
from engine.stores.projects import ProjectStore

router = APIRouter(prefix="/api/projects", tags=["projects"])

Name = Annotated[str, Field(description="shown escaped; 1 to 40 characters")]


class NewProject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    classes: list[Name] = Field(default_factory=list, max_length=50, description="class names, e.g. ['Santa', 'not Santa']")


class Renamed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name


class TrainProject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["transfer", "scratch"] = Field(
        "transfer", description="transfer: a new output layer on the frozen ImageNet network's features (about a "
        "second, learns from a few photos); scratch: a small CNN trained from nothing (a job; the rest of the options)")
    epochs: int = Field(40, ge=1, le=200, description="passes over the training photos")
    learning_rate: float = Field(0.003, gt=0, le=1, allow_inf_nan=False, description="Adam's step size (peak)")
    augment: bool = Field(True, description="zoom, turn, shift, light and colour changes of each photo")
    mirror: bool = Field(True, description="also left-right flips (turn off when left and right differ)")
    seed: int = Field(0, ge=0, le=2**31 - 1)


def owned(store: ProjectStore, project_id: str, caller: Caller) -> ProjectStore:
    """The store, once the caller is known to own the project (403 otherwise, 404 if none)."""
    caller.require(store.owner(project_id), "project")
    return store


@router.get("")
def list_projects(store: ProjectsDep, caller: CallerDep) -> dict:
    """This client's projects (the admin sees all): id, name, number of classes and photos, its model."""
    return {"projects": store.list(caller.owner, everyone=caller.admin)}


@router.post("", status_code=201)
def create(body: NewProject, store: ProjectsDep, teaching: TeachingDep, caller: CallerDep) -> dict:
    """A new project, with its first classes if given; it belongs to the caller's owner token."""
    made = caller.ensure()
    return {**teaching.with_job(store.create(body.name, body.classes, caller.owner)), **made}


@router.post("/import", status_code=201)
def import_project(
    store: ProjectsDep,
    registry: RegistryDep,
    teaching: TeachingDep,
    settings: SettingsDep,
    caller: CallerDep,
    file: Annotated[UploadFile, File(description="a .neuronlab file (GET /api/projects/{id}/export)")],
) -> dict:
    """A project file as a new project of the caller (a new id; its model a new model, keeping its
    score). The whole file is checked before anything is written: a refusal (4xx) imports nothing."""
    data = file.file.read(settings.max_project_file_bytes + 1)
    limits = bundle.BundleLimits(max_bytes=settings.max_project_file_bytes, max_pixels=settings.max_image_pixels,
                                 max_decoded_bytes=settings.max_decoded_bytes, max_parameters=settings.max_parameters)
    made = caller.ensure()
    project = bundle.import_bundle(store, registry, data, caller.owner, limits)
    return {**teaching.with_job(project), **made}


@router.get("/{project_id}/export", response_class=Response,
            responses={200: {"content": {bundle.MEDIA_TYPE: {}}, "description": "a .neuronlab file (zip)"}})
def export_project(project_id: str, store: ProjectsDep, registry: RegistryDep, caller: CallerDep) -> Response:
    """The project as one .neuronlab file (a zip: manifest.json, photos/<class>/<n>.jpg, and the
    model's model.safetensors and model.json when trained), for POST /api/projects/import on any
    server. Its owner (or the admin) only."""
    owned(store, project_id, caller)
    name = store.get(project_id)["name"]
    plain = "".join(ch if ch.isascii() and (ch.isalnum() or ch in " -_.") else "_" for ch in name).strip() or "project"
    return Response(bundle.export(store, registry, project_id), media_type=bundle.MEDIA_TYPE, headers={
        "Content-Disposition": f"attachment; filename=\"{plain}{bundle.SUFFIX}\"; "
                               f"filename*=UTF-8''{quote(name + bundle.SUFFIX, safe='')}",
        "Cache-Control": "no-store"})


@router.get("/{project_id}")
def project(project_id: str, store: ProjectsDep, teaching: TeachingDep) -> dict:
    """The project: classes with their photo ids, its model, the last training's results."""
    return teaching.with_job(store.get(project_id))


@router.patch("/{project_id}")
def rename(project_id: str, body: Renamed, store: ProjectsDep, teaching: TeachingDep, caller: CallerDep) -> dict:
    return teaching.with_job(owned(store, project_id, caller).rename(project_id, body.name))


@router.delete("/{project_id}", status_code=204)
def delete(project_id: str, store: ProjectsDep, teaching: TeachingDep, caller: CallerDep) -> None:
    """Delete the project with its classes, photos and model (a training job is stopped)."""
    owned(store, project_id, caller)
    teaching.delete(project_id)


@router.post("/{project_id}/classes", status_code=201)
def add_class(project_id: str, body: Renamed, store: ProjectsDep, caller: CallerDep) -> dict:
    return owned(store, project_id, caller).add_class(project_id, body.name)


@router.patch("/{project_id}/classes/{class_id}")
def rename_class(project_id: str, class_id: RowId, body: Renamed, store: ProjectsDep, caller: CallerDep) -> dict:
    return owned(store, project_id, caller).rename_class(project_id, class_id, body.name)


@router.delete("/{project_id}/classes/{class_id}", status_code=204)
def delete_class(project_id: str, class_id: RowId, store: ProjectsDep, caller: CallerDep) -> None:
    """Delete a class and its photos (a model already trained keeps its classes until retrained)."""
    owned(store, project_id, caller).delete_class(project_id, class_id)


@router.post("/{project_id}/samples", status_code=201)
def add_samples(
    project_id: str,
    store: ProjectsDep,
    teaching: TeachingDep,
    settings: SettingsDep,
    caller: CallerDep,
    images: Annotated[list[UploadFile], File(description="one or more PNG, JPEG, WebP or GIF photos")],
    class_id: Annotated[FormRowId | None, Form(description="the class these photos show")] = None,
    source: Annotated[Literal["upload", "webcam"], Form()] = "upload",
) -> dict:
    """Add photos to a class. All are checked first: if one cannot be read, none is added; the
    batch is kept in one transaction (a full disk keeps none of it). Each photo's features from
    the ImageNet network are computed now and kept with it, for transfer learning."""
    owned(store, project_id, caller)
    store.check_class(project_id, class_id)  # before reading any photo
    decoded = []
    for upload in images:
        try:
            decoded.append(decode_upload(upload, settings))
        except ImageError as exc:
            exc.message = f"{upload.filename or 'a photo'}: {exc.message} No photo was added."
            raise
    kept = store.add_samples(project_id, class_id, decoded, source)
    teaching.features_ahead(project_id, [sample["id"] for sample in kept])
    return {"samples": kept}


@router.get("/{project_id}/samples/{sample_id}.jpg", response_class=FileResponse)
def sample_image(project_id: str, sample_id: RowId, store: ProjectsDep) -> FileResponse:
    """A kept photo (JPEG, at most 320 pixels on its longer side)."""
    return FileResponse(store.sample_file(project_id, sample_id), media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=86400"})


@router.delete("/{project_id}/samples/{sample_id}", status_code=204)
def delete_sample(project_id: str, sample_id: RowId, store: ProjectsDep, caller: CallerDep) -> None:
    owned(store, project_id, caller).delete_sample(project_id, sample_id)


@router.post("/{project_id}/train", status_code=201)
def train(project_id: str, body: TrainProject, store: ProjectsDep, teaching: TeachingDep, caller: CallerDep) -> dict:
    """Teach the project's classes. Each class needs 4 photos or more; a fifth of each class is held
    out to measure the accuracy (the same photos whichever way it is trained, for the same seed).
    By default by transfer learning, at once: the answer holds the project with its `result`. With
    `"method": "scratch"` a small CNN is trained as a job: follow it at /ws/train/{id}."""
    owned(store, project_id, caller)
    if body.method == "transfer":
        scratch_only = sorted(body.model_fields_set - {"method", "seed"})
        if scratch_only:
            raise ApiError(422, "invalid_request", f"{', '.join(scratch_only)}: only for training from scratch; send "
                           "\"method\": \"scratch\" with them, or leave them out for transfer learning.",
                           {name: "only with method scratch" for name in scratch_only})
        project, train_photos, held_out = teaching.transfer(project_id, caller, seed=body.seed)
        return {"id": None, "method": "transfer", "status": choices.DONE, "project": project,
                "train_photos": train_photos, "held_out_photos": held_out}
    options = body.model_dump(exclude={"method"})
    job, train_photos, held_out = teaching.start(project_id, caller, **options)
    return {"id": job.id, "method": "scratch", "status": job.status, "position": teaching.training.jobs.position(job),
            "train_photos": train_photos, "held_out_photos": held_out}


@router.post("/{project_id}/curve")
def learning_curve(project_id: str, store: ProjectsDep, teaching: TeachingDep, caller: CallerDep) -> dict:
    """How many photos a class does it need? Held-out accuracy after learning from 2, 5, 10 and 20
    photos a class, by transfer learning and by the small CNN from scratch, on the same held-out
    photos (null where a class has too few photos). The project's own model is left as it is."""
    owned(store, project_id, caller)
    return teaching.curve(project_id)


@router.post("/{project_id}/predict")
def predict(
    project_id: str,
    store: ProjectsDep,
    settings: SettingsDep,
    registry: RegistryDep,
    photos: PhotosDep,
    image: Annotated[UploadFile, File(description="PNG, JPEG, WebP or GIF")],
    steps: Annotated[bool, Form(description="include the preparation steps")] = False,
) -> JSONResponse:
    """Classify a photo with the project's trained model (same response as /api/predict)."""
    model_id = store.get(project_id)["model_id"]
    if model_id is None or model_id not in registry:
        raise ApiError(409, "not_trained", "This project has no trained model yet: add photos to each class "
                       f"and train it (POST /api/projects/{project_id}/train).")
    stored = registry.get(model_id)
    result = on_photo_thread(photos, stored, classify, stored, decode_upload(image, settings))
    return JSONResponse(classification_json(result, with_steps=steps))
