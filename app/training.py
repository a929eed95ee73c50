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
from engine.training.lifecycle import Job, Jobs
from engine.training.worker import JobSpec

log = logging.getLogger("neuronlab")

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
    """The jobs' transport (app.backends chose it: this server's worker processes, or a
    district's queue), the sockets waiting on each job, and the registry learning each new model."""

    def __init__(self, jobs: Jobs, registry: ModelRegistry, loop: asyncio.AbstractEventLoop):
        self.jobs, self.registry, self.loop = jobs, registry, loop
        self.waiters: dict[str, set[asyncio.Event]] = {}
        self.listen(self._on_event)

    def listen(self, listener) -> None:
        """Call listener(job_id, event) for every event of every job (in the jobs' thread)."""
        self.jobs.listeners.append(listener)

    def _on_event(self, job_id: str, event: dict) -> None:  # runs in the jobs' thread
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
        return self.jobs.submit(spec, caller.owner, caller.address)

    def owned(self, job_id: str, caller: Caller) -> Job:
        """The job, when the caller owns it (403 otherwise)."""
        job = self.jobs.get(job_id)
        caller.require(job.client, "training job")
        return job

    def command(self, job_id: str, *args) -> dict:
        """A command to the job; its summary after it."""
        return self.jobs.summary(self.jobs.command(job_id, *args))

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
        self.jobs.close()  # one server: each running job saves its model, then stops; a district's jobs go on


def _wake(waiters) -> None:
    for changed in list(waiters):
        changed.set()
