"""The live training lab: start, watch and steer training jobs; describe architectures."""
from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, WebSocket
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.deps import SettingsDep
from app.errors import ApiError
from app.owners import Caller, CallerDep
from app.settings import Settings
from app.sockets import CLOSED, until_closed
from engine import models
from engine.jobs import JobError, JobManager
from engine.worker import JobSpec

router = APIRouter(tags=["training"])
log = logging.getLogger("neuronlab")

LearningRate = Annotated[float, Field(gt=0, le=10, allow_inf_nan=False,
                                      description="step size; above 0 and at most 10")]


def _architecture(value: Any) -> Any:
    if isinstance(value, str):
        if value not in models.PRESETS:
            raise ValueError(f"unknown preset {value!r}; choose one of {', '.join(models.PRESETS)} "
                             "or give a list of layers")
        return value
    models.measure(value)  # shapes only (meta device); raises ArchitectureError (a ValueError) naming the layer
    return value


class ArchitectureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    architecture: str | list[dict[str, Any]] = Field("mnist_recipe", description="a preset name or a layer list")

    _check = field_validator("architecture")(lambda cls, v: _architecture(v))


class TrainRequest(ArchitectureRequest):
    dataset: Literal["mnist", "fashion"] = "mnist"
    optimizer: Literal["sgd", "momentum", "adam"] = "momentum"
    learning_rate: LearningRate = 0.01
    learning_rates: list[LearningRate] | None = Field(
        None, min_length=1, max_length=4, description="a learning-rate race: up to 4 rates trained side by side")
    momentum: float = Field(0.9, ge=0, lt=1)
    batch_size: int = Field(64, ge=1, le=1024)
    epochs: int = Field(1, ge=1, le=50)
    train_size: int | None = Field(5000, ge=100, le=55000, description="training images (None: all 55,000)")
    val_size: int = Field(5000, ge=500, le=10000, description="images held out of the 60k for validation")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    augment: bool = Field(False, description="slant/size/position/stroke changes (helps drawn digits)")
    name: str | None = Field(None, max_length=60)
    start_paused: bool = Field(False, description="start paused, ready for Step")


class LearningRateChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    learning_rate: LearningRate
    run: int | None = Field(None, ge=0, le=3, description="which run of a race (default: all)")


def jobs(request: Request) -> JobManager:
    return request.app.state.jobs


JOB_ERRORS = {404: "job_not_found", 409: "job_conflict", 422: "invalid_request", 429: "too_many_jobs",
              503: "queue_full"}


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except JobError as exc:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        fields = {"run": str(exc)} if exc.status == 422 else None
        raise ApiError(exc.status, JOB_ERRORS.get(exc.status, "job_conflict"), str(exc), fields, headers) from exc


def _fits(params: int, macs: int, settings: Settings) -> bool:
    return params <= settings.max_parameters and macs <= settings.max_macs


def _check_size(architecture, settings: Settings) -> None:
    _, params, macs = models.measure(architecture)
    if not _fits(params, macs, settings):
        raise ApiError(422, "invalid_request", "The architecture is too large for this server: "
                       f"{params:,} weights (limit {settings.max_parameters:,}) and {macs:,} multiply-adds "
                       f"per image (limit {settings.max_macs:,}). Use fewer filters or units, or pool earlier.",
                       {"architecture": "too large for this server"})


@router.get("/api/architectures")
def presets() -> dict:
    """The preset architectures from the lessons, with their layer lists."""
    return {"presets": [{"name": a.name, "title": a.title, "description": a.description, "layers": a.layers}
                        for a in models.PRESETS.values()]}


@router.post("/api/architectures/describe")
def describe(body: ArchitectureRequest, settings: SettingsDep) -> dict:
    """Each layer's output shape, weights, biases and parameters, and the totals."""
    rows, params, macs = models.measure(body.architecture)  # shapes only: nothing is allocated
    return {"layers": rows, "parameters": params, "macs": macs, "fits": _fits(params, macs, settings)}


@router.post("/api/train", status_code=201)
def start(body: TrainRequest, request: Request, settings: SettingsDep, caller: CallerDep) -> dict:
    """Queue a training job; it runs in a worker process. 201 with {id, status, position}. One
    active job per owner token and a few per address; a full queue answers 503 with Retry-After."""
    _check_size(body.architecture, settings)
    spec = JobSpec(**body.model_dump(exclude={"learning_rate", "learning_rates"}),
                   learning_rates=body.learning_rates or [body.learning_rate])
    made = caller.ensure()
    job = submit(request, spec, caller)
    return {"id": job.id, "status": job.status, "position": jobs(request).position(job), **made}


def submit(request: Request, spec: JobSpec, caller: Caller):
    """Queue a job owned by the caller (who must have an owner by now)."""
    caller.ensure()
    return _call(jobs(request).submit, spec, caller.owner, caller.address)


def owned_job(request: Request, job_id: str, caller: Caller):
    job = _call(jobs(request).get, job_id)
    caller.require(job.client, "training job")
    return job


@router.get("/api/train/{job_id}")
def status(job_id: str, request: Request) -> dict:
    """Status (queued with position, running, paused, done, stopped, diverged, failed), epoch,
    step, metrics so far; when done the test accuracy and the saved model ids."""
    manager = jobs(request)
    job = _call(manager.get, job_id)
    return job.summary(manager.position(job))


@router.get("/api/train/{job_id}/results")
def results(job_id: str, request: Request) -> dict:
    """Per run: test accuracy, confusion matrix and up to 16 misclassified test images per cell
    (base64 bytes of 28x28 images), and the saved model id."""
    job = _call(jobs(request).get, job_id)
    return {"id": job.id, "status": job.status, "results": job.results}


@router.post("/api/train/{job_id}/{action}")
def control(job_id: str, action: Literal["pause", "resume", "step", "stop"], request: Request,
            caller: CallerDep) -> dict:
    """Pause, resume, step exactly one mini-batch (then pause), or stop (the model so far is saved).
    Only the job's owner (or the admin)."""
    manager = jobs(request)
    owned_job(request, job_id, caller)
    job = _call(manager.command, job_id, action)
    return job.summary(manager.position(job))


@router.patch("/api/train/{job_id}")
def change_learning_rate(job_id: str, body: LearningRateChange, request: Request, caller: CallerDep) -> dict:
    """A new learning rate, used from the next mini-batch (the job's owner or the admin)."""
    manager = jobs(request)
    owned_job(request, job_id, caller)
    job = _call(manager.command, job_id, "lr", body.learning_rate, body.run)
    return job.summary(manager.position(job))


@router.websocket("/ws/train/{job_id}")
async def stream(ws: WebSocket, job_id: str, since: int = 0):
    """Every event of the job, in order, from `since` (the last seq a client saw: reconnect with
    it to resume). Closes after the final event."""
    manager: JobManager = ws.app.state.jobs
    await ws.accept()
    try:
        manager.get(job_id)
    except JobError as exc:
        await ws.send_json({"type": "error", "error": "job_not_found", "message": str(exc)})
        await ws.close(code=4404)
        return
    changed = asyncio.Event()
    waiters = ws.app.state.job_waiters.setdefault(job_id, set())
    waiters.add(changed)
    try:
        while True:
            for event in manager.events_since(job_id, since):
                await ws.send_json(event)
                since = event["seq"]
                if event["type"] == "done":
                    await ws.close()
                    return
            changed.clear()
            if not manager.events_since(job_id, since) and await until_closed(ws, changed.wait()) is CLOSED:
                return  # the page went away (or the server is shutting down)
    finally:
        waiters.discard(changed)


def install(app, settings: Settings) -> JobManager:
    """Create the job manager and wire its events to waiting WebSockets and the model registry."""
    manager = JobManager(settings.data_dir, settings.data_dir / "models", max_running=settings.training_jobs,
                         threads=settings.training_threads, time_limit=settings.training_time_limit,
                         max_queue=settings.max_queue, per_address=settings.jobs_per_address,
                         paused_release=settings.paused_release, grace=settings.job_grace,
                         records_dir=settings.data_dir / "jobs")
    loop = asyncio.get_running_loop()
    app.state.job_waiters = {}

    def on_event(job_id: str, event: dict) -> None:  # runs in the manager's thread
        if event["type"] == "done":
            for result in event.get("results", []):
                try:
                    app.state.registry.add(result["model_id"])
                except (OSError, ValueError) as exc:
                    log.error("the model %s of job %s could not be read: %s", result["model_id"], job_id, exc)
        loop.call_soon_threadsafe(_wake, app.state.job_waiters.get(job_id, ()))

    manager.listeners.append(on_event)
    return manager


def _wake(waiters) -> None:
    for changed in list(waiters):
        changed.set()
