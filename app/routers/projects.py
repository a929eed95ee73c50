"""Teach your own classes: projects, their classes and photos, training and prediction.

The data lives in engine.projects.ProjectStore (SQLite + files); training runs as a job of the
live-training lab's JobManager (same queue, limits and progress stream: /ws/train/{job id}).
"""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.deps import FormRowId, RegistryDep, RowId, SettingsDep, decode_upload
from app.errors import ApiError
from app.owners import Caller, CallerDep
from app.routers.train import jobs, submit
from app.serialize import classification_json
from app.settings import Settings
from engine import datasets, models
from engine.inference import classify
from engine.jobs import ACTIVE
from engine.projects import Limits, ProjectStore, StoreError
from engine.worker import JobSpec

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
    epochs: int = Field(40, ge=1, le=200, description="passes over the training photos")
    learning_rate: float = Field(0.003, gt=0, le=1, allow_inf_nan=False, description="Adam's step size (peak)")
    augment: bool = Field(True, description="zoom, turn, shift, light and colour changes of each photo")
    mirror: bool = Field(True, description="also left-right flips (turn off when left and right differ)")
    seed: int = Field(0, ge=0, le=2**31 - 1)


def projects(request: Request) -> ProjectStore:
    return request.app.state.projects


def active_job(request: Request, project_id: str) -> dict | None:
    """The project's queued, running or paused training job, if any (finished ones are forgotten
    by the listener in `install`)."""
    manager = jobs(request)
    for job_id, (pid, *_) in request.app.state.project_jobs.items():
        if pid == project_id and manager.jobs[job_id].status in ACTIVE:
            return {"id": job_id, "status": manager.jobs[job_id].status}
    return None


def with_job(request: Request, project: dict) -> dict:
    project["job"] = active_job(request, project["id"])
    return project


def owned(request: Request, project_id: str, caller: Caller) -> ProjectStore:
    """The store, once the caller is known to own the project (403 otherwise, 404 if none)."""
    store = projects(request)
    caller.require(store.owner(project_id), "project")
    return store


@router.get("")
def list_projects(request: Request, caller: CallerDep) -> dict:
    """This client's projects (the admin sees all): id, name, number of classes and photos, its model."""
    return {"projects": projects(request).list(caller.owner, everyone=caller.admin)}


@router.post("", status_code=201)
def create(body: NewProject, request: Request, caller: CallerDep) -> dict:
    """A new project, with its first classes if given; it belongs to the caller's owner token."""
    made = caller.ensure()
    return {**with_job(request, projects(request).create(body.name, body.classes, caller.owner)), **made}


@router.get("/{project_id}")
def project(project_id: str, request: Request) -> dict:
    """The project: classes with their photo ids, its model, the last training's results."""
    return with_job(request, projects(request).get(project_id))


@router.patch("/{project_id}")
def rename(project_id: str, body: Renamed, request: Request, caller: CallerDep) -> dict:
    return with_job(request, owned(request, project_id, caller).rename(project_id, body.name))


@router.delete("/{project_id}", status_code=204)
def delete(project_id: str, request: Request, registry: RegistryDep, caller: CallerDep) -> None:
    """Delete the project with its classes, photos and model (a training job is stopped)."""
    store = owned(request, project_id, caller)
    job = active_job(request, project_id)
    if job:  # its model, saved when it stops, is deleted by the listener in `install`
        jobs(request).command(job["id"], "stop")
    model_id = store.delete(project_id)
    if model_id in registry.user_ids:
        registry.delete(model_id)


@router.post("/{project_id}/classes", status_code=201)
def add_class(project_id: str, body: Renamed, request: Request, caller: CallerDep) -> dict:
    return owned(request, project_id, caller).add_class(project_id, body.name)


@router.patch("/{project_id}/classes/{class_id}")
def rename_class(project_id: str, class_id: RowId, body: Renamed, request: Request, caller: CallerDep) -> dict:
    return owned(request, project_id, caller).rename_class(project_id, class_id, body.name)


@router.delete("/{project_id}/classes/{class_id}", status_code=204)
def delete_class(project_id: str, class_id: RowId, request: Request, caller: CallerDep) -> None:
    """Delete a class and its photos (a model already trained keeps its classes until retrained)."""
    owned(request, project_id, caller).delete_class(project_id, class_id)


@router.post("/{project_id}/samples", status_code=201)
def add_samples(
    project_id: str,
    request: Request,
    settings: SettingsDep,
    caller: CallerDep,
    images: Annotated[list[UploadFile], File(description="one or more PNG, JPEG, WebP or GIF photos")],
    class_id: Annotated[FormRowId | None, Form(description="the class these photos show")] = None,
    source: Annotated[Literal["upload", "webcam"], Form()] = "upload",
) -> dict:
    """Add photos to a class. All are checked first: if one cannot be read, none is added; the
    batch is kept in one transaction (a full disk keeps none of it)."""
    store = owned(request, project_id, caller)
    store.check_class(project_id, class_id)  # before reading any photo
    decoded = []
    for upload in images:
        try:
            decoded.append(decode_upload(upload, settings))
        except ApiError as exc:
            exc.message = f"{upload.filename or 'a photo'}: {exc.message} No photo was added."
            raise
    return {"samples": store.add_samples(project_id, class_id, decoded, source)}


@router.get("/{project_id}/samples/{sample_id}.jpg", response_class=FileResponse)
def sample_image(project_id: str, sample_id: RowId, request: Request) -> FileResponse:
    """A kept photo (JPEG, at most 320 pixels on its longer side)."""
    return FileResponse(projects(request).sample_file(project_id, sample_id), media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=86400"})


@router.delete("/{project_id}/samples/{sample_id}", status_code=204)
def delete_sample(project_id: str, sample_id: RowId, request: Request, caller: CallerDep) -> None:
    owned(request, project_id, caller).delete_sample(project_id, sample_id)


@router.post("/{project_id}/train", status_code=201)
def train(project_id: str, body: TrainProject, request: Request, caller: CallerDep) -> dict:
    """Train a small CNN on the project's photos (a job: follow it at /ws/train/{id}). Each class
    needs 4 photos or more; a fifth of each class is held out to measure the accuracy."""
    store = owned(request, project_id, caller)
    current = with_job(request, store.get(project_id))
    if current["job"]:
        raise ApiError(409, "job_conflict", f"This project is already training (job {current['job']['id']}); "
                       "wait for it or stop it.")
    data, held_out = store.training_set(project_id, body.seed)
    data_file = store.folder / project_id / "training-set.npz"
    datasets.save_arrays(data_file, data)
    spec = JobSpec(dataset="project", architecture=models.PHOTO_LAYERS, optimizer="adam",
                   learning_rates=[body.learning_rate], batch_size=16, epochs=body.epochs,
                   train_size=None, val_size=len(held_out), seed=body.seed, augment=body.augment,
                   schedule="onecycle", name=current["name"], project=project_id, data_file=str(data_file),
                   mirror=body.mirror, weight_decay=1e-4)
    job = submit(request, spec, caller)
    request.app.state.project_jobs[job.id] = (project_id, held_out, len(data.train) + len(held_out))
    return {"id": job.id, "status": job.status, "position": jobs(request).position(job),
            "train_photos": len(data.train), "held_out_photos": len(held_out)}


@router.post("/{project_id}/predict")
def predict(
    project_id: str,
    request: Request,
    settings: SettingsDep,
    registry: RegistryDep,
    image: Annotated[UploadFile, File(description="PNG, JPEG, WebP or GIF")],
    steps: Annotated[bool, Form(description="include the preparation steps")] = False,
) -> JSONResponse:
    """Classify a photo with the project's trained model (same response as /api/predict)."""
    model_id = projects(request).get(project_id)["model_id"]
    if model_id is None or model_id not in registry:
        raise ApiError(409, "not_trained", "This project has no trained model yet: add photos to each class "
                       f"and train it (POST /api/projects/{project_id}/train).")
    result = classify(registry.get(model_id), decode_upload(image, settings))
    return JSONResponse(classification_json(result, with_steps=steps))


def install(app, settings: Settings) -> ProjectStore:
    """Open the project store and record each finished project job's model and results."""
    store = ProjectStore(settings.data_dir / "projects",
                         Limits(settings.max_projects, settings.project_classes, settings.project_samples))
    app.state.project_jobs = {}

    def on_event(job_id: str, event: dict) -> None:  # the job manager's thread, after train's listener
        if event["type"] != "done" or job_id not in app.state.project_jobs:
            return
        project_id, held_out, photos = app.state.project_jobs.pop(job_id)
        (store.folder / project_id / "training-set.npz").unlink(missing_ok=True)  # the worker has read it
        for result in event.get("results", [])[:1]:
            summary = {
                "model_id": result["model_id"], "job": job_id, "accuracy": result["test_accuracy"],
                "per_class": result["per_class"], "confusion": result["confusion"],
                "labels": app.state.registry.card(result["model_id"]).labels,
                "held_out": held_out, "photos": photos, "seconds": result["seconds"], "steps": result["steps"],
                "status": event["status"],
                "mistakes": {cell: [held_out[i] for i in m["indices"]] for cell, m in result["mistakes"].items()},
            }
            try:
                old = store.set_model(project_id, result["model_id"], summary)
            except StoreError:  # deleted while it trained: its model goes too
                old = result["model_id"]
            if old in app.state.registry.user_ids:
                app.state.registry.delete(old)

    app.state.jobs.listeners.append(on_event)
    return store
