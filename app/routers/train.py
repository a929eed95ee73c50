"""The live training lab: start, watch and steer training jobs; describe architectures."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from app.deps import SettingsDep, TrainingDep
from app.errors import refusal_message
from app.owners import CallerDep
from app.sockets import CLOSED, until_closed
from app.training import check_size, fits
from engine import choices, models
from engine.refusal import Refusal
from engine.stores.db import MODEL_NAME_LENGTH, StoreError, clean_name
from engine.training import kfold
from engine.training.worker import JobSpec

router = APIRouter(tags=["training"])

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
    optimizer: Literal[choices.OPTIMIZERS] = "momentum"
    learning_rate: LearningRate = 0.01
    learning_rates: list[LearningRate] | None = Field(
        None, min_length=1, max_length=4, description="a learning-rate race: up to 4 rates trained side by side")
    momentum: float = Field(0.9, ge=0, lt=1)
    batch_size: int = Field(64, ge=1, le=1024)
    epochs: int = Field(1, ge=1, le=50)
    train_size: int | None = Field(5000, ge=100, le=60000, description="training images (None: all 55,000; "
                                   "with folds, the images cut into folds: at most and by default all 60,000)")
    val_size: int = Field(5000, ge=500, le=10000, description="images held out of the 60k for validation")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    augment: bool = Field(False, description="slant/size/position/stroke changes (helps drawn digits)")
    name: str | None = Field(None, max_length=60, description="the trained model's name (blank: one is made)")
    start_paused: bool = Field(False, description="start paused, ready for Step")
    weight_decay: float = Field(0.0, ge=0, le=0.1, allow_inf_nan=False,
                                description="L2 weight decay: each step also shrinks every weight by lr x this")
    dropout: float = Field(0.0, ge=0, le=0.9, allow_inf_nan=False,
                           description="a Dropout layer at this rate before the output layer (0: none)")
    keep_best: bool = Field(False, description="save the model of the epoch of lowest validation loss")
    patience: int | None = Field(None, ge=1, le=50, description="early stopping: stop after this many epochs "
                                                               "without a lower validation loss")
    compare: bool = Field(False, description="two runs overlaid: without weight decay, dropout and keep-best, "
                                             "and with them")
    folds: int | None = Field(None, ge=2, le=10, description="k-fold cross-validation: one run per fold")

    @field_validator("name")
    @classmethod
    def a_clean_name(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return clean_name(value, "model", MODEL_NAME_LENGTH)
        except StoreError as exc:
            raise ValueError(str(exc)) from None


class LearningRateChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    learning_rate: LearningRate
    run: int | None = Field(None, ge=0, le=9, description="which run of the job, from 0: a race's rate, a "
                            "comparison's or a fold's (default: all)")


@router.get("/api/architectures")
def presets() -> dict:
    """The preset architectures from the lessons, with their layer lists."""
    return {"presets": [{"name": a.name, "title": a.title, "description": a.description, "layers": a.layers}
                        for a in models.PRESETS.values()]}


@router.post("/api/architectures/describe")
def describe(body: ArchitectureRequest, settings: SettingsDep) -> dict:
    """Each layer's output shape, weights, biases and parameters, and the totals."""
    rows, params, macs = models.measure(body.architecture)  # shapes only: nothing is allocated
    return {"layers": rows, "parameters": params, "macs": macs, "fits": fits(params, macs, settings)}


@router.post("/api/train", status_code=201)
def start(body: TrainRequest, training: TrainingDep, settings: SettingsDep, caller: CallerDep) -> dict:
    """Queue a training job; it runs in a worker process. 201 with {id, status, position}. One
    active job per owner token and a few per address; a full queue answers 503 with Retry-After."""
    check_size(body.architecture, settings)
    spec = JobSpec(**body.model_dump(exclude={"learning_rate", "learning_rates"}), learning_rates=runs(body))
    estimate = None
    if body.folds:  # the folds train one after the other: such a job may run longer than others, bounded
        estimate = how_long(body, settings)
        if not estimate["fits"]:
            raise Refusal(422, "too_long", too_long(body, estimate), "epochs")
        spec.time_limit = settings.kfold_time_limit
    made = caller.ensure()
    job = training.submit(spec, caller)
    return {"id": job.id, "status": job.status, "position": training.jobs.position(job), **made,
            **({"estimate_s": estimate["estimate_s"], "limit_s": estimate["limit_s"]} if estimate else {})}


@router.post("/api/train/estimate")
def estimate(body: TrainRequest, settings: SettingsDep) -> dict:
    """How long a k-fold job would take on this server, before it starts: {estimate_s, limit_s,
    fits, method, speed}. Its network's mini-batches are timed here, now (kept for the next ask)."""
    check_size(body.architecture, settings)
    runs(body)
    if not body.folds:
        refuse("folds", "An estimate is made for k-fold cross-validation: give folds (2 to 10).")
    return how_long(body, settings)


def how_long(body: TrainRequest, settings) -> dict:
    """The k-fold job's estimate from this machine's measured speed, and whether it fits the limit."""
    speed = kfold.measure_speed(body.architecture, body.batch_size, body.optimizer)
    n = body.train_size or 60000
    seconds = kfold.estimate(speed, n, body.folds, body.epochs, body.batch_size)
    batches = kfold.batches_per_epoch(n, body.folds, body.batch_size)
    return {"estimate_s": round(seconds, 1), "limit_s": settings.kfold_time_limit,
            "fits": seconds <= settings.kfold_time_limit, "images": n, "folds": body.folds,
            "batches": batches, "steps": body.folds * body.epochs * batches,
            "speed": {"step_s": round(speed["step"], 5), "image_s": round(speed["image"], 7),
                      "batch_size": speed["batch_size"], "threads": speed["threads"]},
            "method": f"{body.folds} folds x {body.epochs} epoch(s) x {batches:,} mini-batches of "
                      f"{body.batch_size}, at {speed['step'] * 1000:.1f} ms each as timed on this server "
                      f"now, plus each fold's evaluations"}


def duration(seconds: float) -> str:
    """"about 1 h 45 min", "about 12 min", "about 40 s"."""
    s = round(seconds)
    if s >= 3600:
        return f"about {s // 3600} h {round(s % 3600 / 60)} min"
    return f"about {round(s / 60)} min" if s >= 90 else f"about {s} s"


def too_long(body: TrainRequest, estimate: dict) -> str:
    """Why a k-fold job is refused: its estimate, the limit, and how to shorten it."""
    limit, seconds = estimate["limit_s"], estimate["estimate_s"]
    speed = kfold.measure_speed(body.architecture, body.batch_size, body.optimizer)  # (kept: not timed again)
    fit = kfold.epochs_within(speed, estimate["images"], body.folds, body.batch_size, limit)
    shorter = (f"at most {fit} epoch{'s' if fit != 1 else ''} fit" if fit >= 1
               else "even one epoch does not fit: use fewer images or folds")
    return (f"This k-fold job would take {duration(seconds)} on this server ({estimate['method']}), longer "
            f"than the {duration(limit)} a k-fold job may train here (kfold_time_limit). Shorten it: fewer "
            f"epochs ({shorter}), fewer images or fewer folds, or a larger batch.")


def refuse(field: str, message: str) -> None:
    raise Refusal(422, "invalid_request", message, field)


def runs(body: TrainRequest) -> list[float]:
    """Each run's learning rate: a race's, one per fold, the two of a comparison, or the one rate;
    a request that mixes them is refused (422, naming the field)."""
    if body.compare and body.folds:
        refuse("compare", "A comparison and k-fold cross-validation cannot be one job: choose one.")
    if body.learning_rates and (body.compare or body.folds):
        refuse("compare" if body.compare else "folds", "A learning-rate race cannot also be a comparison or "
               "k-fold cross-validation: give one learning rate.")
    if body.compare and not (body.weight_decay or body.dropout or body.keep_best):
        refuse("compare", "Nothing to compare: set weight decay, dropout or keep the best epoch for the run "
               "that has them.")
    if not body.folds and body.train_size is not None and body.train_size > 55000:
        refuse("train_size", "At most 55,000 training images (60,000 less the validation images); "
               "all 60,000 only with k folds.")
    if body.folds and body.train_size is not None and body.train_size < 50 * body.folds:
        refuse("train_size", f"{body.folds} folds need at least {50 * body.folds} images.")
    if body.compare:
        return [body.learning_rate] * 2
    if body.folds:
        return [body.learning_rate] * body.folds
    return body.learning_rates or [body.learning_rate]


@router.get("/api/train/{job_id}")
def status(job_id: str, training: TrainingDep) -> dict:
    """Status (queued with position, running, paused, done, stopped, diverged, failed), epoch,
    step, metrics so far; when done the test accuracy and the saved model ids."""
    return training.jobs.summary(training.jobs.get(job_id))


@router.get("/api/train/{job_id}/results")
def results(job_id: str, training: TrainingDep) -> dict:
    """Per run: test accuracy, confusion matrix and up to 16 misclassified test images per cell
    (images in the one form: {"width", "height", "channels", "base64"}), and the saved model id."""
    job = training.jobs.get(job_id)
    return {"id": job.id, "status": job.status, "results": job.results}


@router.post("/api/train/{job_id}/{action}")
def control(job_id: str, action: Literal["pause", "resume", "step", "stop"], training: TrainingDep,
            caller: CallerDep) -> dict:
    """Pause, resume, step exactly one mini-batch (then pause), or stop (the model so far is saved).
    Only the job's owner (or the admin)."""
    training.owned(job_id, caller)
    return training.command(job_id, action)


@router.patch("/api/train/{job_id}")
def change_learning_rate(job_id: str, body: LearningRateChange, training: TrainingDep, caller: CallerDep) -> dict:
    """A new learning rate, used from the next mini-batch (the job's owner or the admin)."""
    training.owned(job_id, caller)
    return training.command(job_id, "lr", body.learning_rate, body.run)


@router.websocket("/ws/train/{job_id}")
async def stream(ws: WebSocket, job_id: str, training: TrainingDep, since: int = 0):
    """Every event of the job, in order, from `since` (the last seq a client saw: reconnect with
    it to resume). Closes after the final event."""
    await ws.accept()
    try:
        await run_in_threadpool(training.jobs.get, job_id)  # in district mode these ask Redis: not on the loop
    except Refusal as exc:  # no such job (404), or district mode's Redis not answering (503: try again)
        await ws.send_json(refusal_message(exc))
        await ws.close(code=4404 if exc.status == 404 else 1013)
        return
    changed = training.watch(job_id)
    try:
        while True:
            for event in await run_in_threadpool(training.jobs.events_since, job_id, since):
                await ws.send_json(event)
                since = event["seq"]
                if event["type"] == "done":
                    await ws.close()
                    return
            changed.clear()
            if (not await run_in_threadpool(training.jobs.events_since, job_id, since)
                    and await until_closed(ws, changed.wait()) is CLOSED):
                return  # the page went away (or the server is shutting down)
    finally:
        training.unwatch(job_id, changed)
