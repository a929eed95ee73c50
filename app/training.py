"""The training lab's service: the job manager, wired to the model registry and to the pages that
watch a job (each /ws/train socket waits on an asyncio.Event that the manager's thread wakes)."""
from __future__ import annotations

import asyncio
import logging

from app.errors import ApiError
from app.owners import Caller
from app.settings import Settings
from engine import models
from engine.stores.store import ModelRegistry
from engine.training.jobs import Job, JobError, JobManager
from engine.training.worker import JobSpec

log = logging.getLogger("neuronlab")

JOB_ERRORS = {404: "job_not_found", 409: "job_conflict", 422: "invalid_request", 429: "too_many_jobs",
              503: "queue_full"}


def job_call(fn, *args, **kwargs):
    """Call the job manager; its refusals become the matching HTTP error."""
    try:
        return fn(*args, **kwargs)
    except JobError as exc:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        fields = {"run": str(exc)} if exc.status == 422 else None
        raise ApiError(exc.status, JOB_ERRORS.get(exc.status, "job_conflict"), str(exc), fields, headers) from exc


def fits(params: int, macs: int, settings: Settings) -> bool:
    return params <= settings.max_parameters and macs <= settings.max_macs


def check_size(architecture, settings: Settings) -> None:
    """422 when a network is too large for this server (measured on the meta device: nothing allocated)."""
    _, params, macs = models.measure(architecture)
    if not fits(params, macs, settings):
        raise ApiError(422, "invalid_request", "The architecture is too large for this server: "
                       f"{params:,} weights (limit {settings.max_parameters:,}) and {macs:,} multiply-adds "
                       f"per image (limit {settings.max_macs:,}). Use fewer filters or units, or pool earlier.",
                       {"architecture": "too large for this server"})


class Training:
    """The job manager, the sockets waiting on each job, and the registry learning each new model.
    In district mode (NEURONLAB_REDIS_URL) the manager is the district's queue
    (engine.training.district.QueuedJobs, the same interface): any replica answers for any job,
    and what a service notes about a job is kept in Redis, for whichever replica hears its end first."""

    def __init__(self, settings: Settings, registry: ModelRegistry, loop: asyncio.AbstractEventLoop):
        if settings.redis_url:
            from engine.training.district import QueuedJobs  # only district mode needs redis and rq
            self.manager = QueuedJobs(settings.redis_url, settings.training_time_limit, settings.max_queue,
                                      settings.jobs_per_address)
        else:
            self.manager = JobManager(
                settings.data_dir, settings.data_dir / "models", max_running=settings.training_jobs,
                threads=settings.training_threads, niceness=settings.training_niceness, time_limit=settings.training_time_limit,
                max_queue=settings.max_queue, per_address=settings.jobs_per_address,
                paused_release=settings.paused_release, grace=settings.job_grace, records_dir=settings.data_dir / "jobs")
        self.registry, self.loop = registry, loop
        self.waiters: dict[str, set[asyncio.Event]] = {}
        self.listen(self._on_event)

    def listen(self, listener) -> None:
        """Call listener(job_id, event) for every event of every job (in the manager's thread)."""
        self.manager.listeners.append(listener)

    def note(self, key: str, data: dict) -> None:
        """Keep `data` under `key` until it is taken (district mode: in Redis, seen by every replica)."""
        job_call(self.manager.note, key, data)

    def read_note(self, key: str) -> dict | None:
        return job_call(self.manager.read_note, key)

    def take_note(self, key: str) -> dict | None:
        """The note under `key`, to the first caller only (then it is gone)."""
        return job_call(self.manager.take_note, key)

    def _on_event(self, job_id: str, event: dict) -> None:  # runs in the manager's thread
        if event["type"] == "done":
            for result in event.get("results", []):
                try:
                    self.registry.add(result["model_id"])
                except (OSError, ValueError) as exc:
                    log.error("the model %s of job %s could not be read: %s", result["model_id"], job_id, exc)
        if job_id in self.waiters:
            self.loop.call_soon_threadsafe(_wake, self.waiters.get(job_id, ()))

    def submit(self, spec: JobSpec, caller: Caller) -> Job:
        """Queue a job owned by the caller (made an owner now if it had none)."""
        caller.ensure()
        return job_call(self.manager.submit, spec, caller.owner, caller.address)

    def get(self, job_id: str) -> Job:
        return job_call(self.manager.get, job_id)

    def owned(self, job_id: str, caller: Caller) -> Job:
        job = self.get(job_id)
        caller.require(job.client, "training job")
        return job

    def command(self, job_id: str, *args) -> dict:
        job = job_call(self.manager.command, job_id, *args)
        return self.summary(job)

    def position(self, job: Job) -> int | None:
        return self.manager.position(job)

    def summary(self, job: Job) -> dict:
        """GET /api/train/{id}; in district mode a queued job also says when no training worker is alive."""
        if hasattr(self.manager, "summary"):
            return job_call(self.manager.summary, job)
        return job.summary(self.position(job))

    def events_since(self, job_id: str, seq: int) -> list[dict]:
        return job_call(self.manager.events_since, job_id, seq)

    def watch(self, job_id: str) -> asyncio.Event:
        """An event set whenever the job has news (call on the loop; `unwatch` when done)."""
        changed = asyncio.Event()
        self.waiters.setdefault(job_id, set()).add(changed)
        return changed

    def unwatch(self, job_id: str, changed: asyncio.Event) -> None:
        waiting = self.waiters.get(job_id, set())
        waiting.discard(changed)
        if not waiting:
            self.waiters.pop(job_id, None)

    def close(self) -> None:
        self.manager.close()  # one server: each running job saves its model, then stops; a district's jobs go on


def _wake(waiters) -> None:
    for changed in list(waiters):
        changed.set()
