"""The life of a training job, written once: its record (Job), the refusals (JobError), the
limits that keep one client from holding the server, which command each status allows, and the
state machine over them (Jobs). Two transports carry it:

- engine.training.jobs.JobManager: one server; jobs run in worker processes it starts;
- engine.training.district.QueuedJobs: district mode; jobs wait in Redis (RQ) for workers on any
  machine, and any replica answers for any job.

A transport says how a job is admitted, loaded, appended an event to (with its seq), dequeued and
sent a command; every rule (who may start a job, what a queued job does with "stop" or a new
learning rate, the 404's words) is here.
"""
from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine import imageio
from engine.choices import ACTIVE
from engine.refusal import Refusal
from engine.training.worker import JobSpec

log = logging.getLogger("neuronlab")
JOB_ID = re.compile(r"^[0-9a-f]{32}$")  # 128 random bits
ACTIONS = {  # action -> statuses it is allowed in
    "pause": ("running",), "resume": ("paused",), "step": ("running", "paused"),
    "stop": ACTIVE, "lr": ACTIVE,
}


CODES = {404: "job_not_found", 409: "job_conflict", 422: "invalid_request", 429: "too_many_jobs", 503: "queue_full"}


class JobError(Refusal):
    """A request the job cannot take now; `status` is the HTTP-like code (404, 409, 422, 429, 503)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None, field: str | None = None):
        super().__init__(status, CODES.get(status, "job_conflict"), message, field, retry_after)


@dataclass
class Job:
    id: str
    spec: JobSpec
    client: str                      # the owner's hash
    address: str = "local"
    created: float = field(default_factory=time.time)
    status: str = "queued"
    events: list[dict] = field(default_factory=list)
    latest: dict = field(default_factory=dict)   # last progress event per run
    epochs: list[dict] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)
    error: str | None = None
    process: object = None
    commands: object = None
    finished: float | None = None    # when it reached a final status
    paused_since: float | None = None
    holds_slot: bool = False         # counts against max_running (running, or paused only briefly)
    queued_at: float = field(default_factory=time.monotonic)
    total_steps: int | None = None   # of each run, as its worker counted them when it started

    def apply(self, event: dict) -> None:
        """Take in one of the job's events: its status, latest progress per run, epochs, results."""
        kind = event["type"]
        if kind == "status":
            self.status = event["status"]
            self.total_steps = event.get("total_steps", self.total_steps)
            self.paused_since = time.monotonic() if self.status == "paused" else None
        elif kind == "progress":
            self.latest[event["run"]] = event
        elif kind == "epoch":
            self.epochs.append(event)
        elif kind == "done":
            self.status, self.error = event["status"], event.get("error")
            self.results = event.get("results", [])
            self.finished, self.holds_slot = time.time(), False

    def summary(self, position: int | None) -> dict:
        """What GET /api/train/{id} returns (no images)."""
        runs = [self.latest.get(i, {}) for i in range(len(self.spec.learning_rates))]
        return {
            "id": self.id, "status": self.status, "position": position, "spec": self.spec.public(),
            "epoch": runs[0].get("epoch", 0), "step": runs[0].get("step", 0),
            "total_steps": runs[0].get("total_steps"), "runs": runs, "epochs": self.epochs,
            "test_accuracy": [r["test_accuracy"] for r in self.results] or None,
            "model_ids": [r["model_id"] for r in self.results] or None, "error": self.error,
            "last_event": self.events[-1]["seq"] if self.events else 0,  # thinned lists are shorter
        }

    def record(self) -> dict:
        """What is kept on disk."""
        return {"id": self.id, "spec": self.spec.public(), "owner": self.client, "address": self.address,
                "created": self.created, "status": self.status, "latest": self.latest, "epochs": self.epochs,
                "results": self.results, "error": self.error, "finished": self.finished,
                "total_steps": self.total_steps}

    @classmethod
    def from_record(cls, r: dict) -> "Job":
        job = cls(id=r["id"], spec=JobSpec(**r["spec"]), client=r.get("owner"), address=r.get("address", ""),
                  created=r.get("created", 0.0), status=r["status"],
                  latest={int(run): e for run, e in r.get("latest", {}).items()},  # JSON keys are text
                  epochs=r.get("epochs", []), results=[upgraded(result) for result in r.get("results", [])],
                  error=r.get("error"),
                  finished=r.get("finished"), total_steps=r.get("total_steps"))
        job.events = [{"seq": 1, "type": "done", "status": job.status, "results": job.results, "error": job.error,
                       "time": job.finished or job.created}]
        return job


def upgraded(result: dict) -> dict:
    """A run's result as an older version kept it: its mistakes' images in the one image form."""
    for cell in (result.get("mistakes") or {}).values():
        cell["images"] = [imageio.upgrade(image) for image in cell.get("images", [])]
    return result


def check_limits(active: list[Job], client: str, address: str, per_address: int, queued: int, max_queue: int) -> None:
    """Refuse a new job (JobError) when its owner has one already, its address has `per_address`,
    or `queued` jobs wait already in a queue of `max_queue`."""
    mine = [j for j in active if j.client == client]
    if mine:
        raise JobError(409, f"You already have a training job ({mine[0].id}, {mine[0].status}). "
                            "Stop it or wait for it to finish before starting another.")
    if sum(j.address == address for j in active) >= per_address:
        raise JobError(429, f"Your computer already has {per_address} training jobs queued or "
                            "running; wait for one to finish or stop one.", retry_after=30)
    if queued >= max_queue:
        raise JobError(503, f"The training queue is full ({max_queue} jobs waiting). "
                            "Try again in a minute.", retry_after=60)


def check_command(job: Job, action: str, run: int | None) -> None:
    """Refuse (JobError) an action the job's status does not allow, or a run it does not have."""
    if job.status not in ACTIONS[action]:
        raise JobError(409, f"Cannot {action} a job that is {job.status}.")
    if run is not None and not 0 <= run < len(job.spec.learning_rates):
        raise JobError(422, f"This job has {len(job.spec.learning_rates)} run(s); run must be from 0 "
                            f"to {len(job.spec.learning_rates) - 1}.", field="run")


class Jobs:
    """The job state machine; a transport (a subclass) fills in the methods marked so.

    submit -> queued -> (a worker takes it) running <-> paused -> done | stopped | failed |
    interrupted. Every change is an event appended with the next seq; listeners hear each one."""

    per_address: int = 3
    max_queue: int = 12

    def __init__(self) -> None:
        self.listeners: list[Callable[[str, dict], None]] = []

    # --- the rules ------------------------------------------------------------------------

    def submit(self, spec: JobSpec, client: str, address: str = "local") -> Job:
        """Queue a job for `client` (an owner's hash) from `address`, within the limits."""
        with self._exclusive():
            check_limits(self._active(), client, address, self.per_address, self._waiting(), self.max_queue)
            spec.owner = client
            job = Job(id=secrets.token_hex(16), spec=spec, client=client, address=address)
            self._admit(job)
            return job

    def get(self, job_id: str) -> Job:
        job = self._load(job_id)
        if job is None:
            shown = job_id if len(job_id) <= 40 else job_id[:40] + "..."
            raise JobError(404, f"There is no training job {shown!r}. Start one with POST /api/train.")
        return job

    def command(self, job_id: str, action: str, value: float | None = None, run: int | None = None) -> Job:
        """pause, resume, step, stop or lr (a new learning rate, for one run or all). A job no
        worker has taken yet is stopped, or given the rate it will start with, right here."""
        with self._exclusive():
            job = self.get(job_id)
            check_command(job, action, run)
            if self._untaken(job):
                if action == "stop" and self._append(job, {"type": "done", "status": "stopped", "results": []},
                                                     expect="queued"):
                    self._dequeue(job)
                    return job
                if action == "lr":
                    job.spec.learning_rates = [value if run in (None, i) else lr
                                               for i, lr in enumerate(job.spec.learning_rates)]
                    if self._append(job, {"type": "learning_rate", "value": value, "run": run, "queued": True},
                                    expect="queued"):
                        return job
                if action not in ("stop", "lr"):
                    raise JobError(409, f"Cannot {action} a job that is queued.")
                job = self.get(job_id)  # a worker took it meanwhile: tell the worker
            self._deliver(job, {"action": action, "value": value, "run": run})
            return job

    def summary(self, job: Job) -> dict:
        """GET /api/train/{id}."""
        return job.summary(self.position(job))

    def _tell(self, job_id: str, event: dict) -> None:
        """Every listener hears the event; one that fails is logged and does not stop the others."""
        for listener in list(self.listeners):
            try:
                listener(job_id, event)
            except Exception:
                log.exception("a listener failed on an event of job %s", job_id)

    # --- the transport's part ---------------------------------------------------------------

    def _exclusive(self):
        """A context in which no other submit or command of this transport runs."""
        raise NotImplementedError

    def _active(self) -> list[Job]:
        """The jobs queued, running or paused."""
        raise NotImplementedError

    def _waiting(self) -> int:
        """How many jobs wait in the queue."""
        raise NotImplementedError

    def _admit(self, job: Job) -> None:
        """Keep a new job and queue it (its first event: queued, with its place)."""
        raise NotImplementedError

    def _load(self, job_id: str) -> Job | None:
        raise NotImplementedError

    def _untaken(self, job: Job) -> bool:
        """Whether no worker has the job yet."""
        raise NotImplementedError

    def _append(self, job: Job, event: dict, expect: str | None = None) -> int:
        """Apply an event to the job and keep it; its seq, or 0 when the job is final already or
        its status is not `expect`."""
        raise NotImplementedError

    def _dequeue(self, job: Job) -> None:
        """A job stopped before a worker took it leaves the queue."""
        raise NotImplementedError

    def _deliver(self, job: Job, command: dict) -> None:
        """Send a command to the worker that has the job."""
        raise NotImplementedError

    def position(self, job: Job) -> int | None:
        """1-based place in the queue, or None when not queued."""
        raise NotImplementedError

    def events_since(self, job_id: str, seq: int) -> list[dict]:
        raise NotImplementedError

    def finetune(self, card_path: Path, dataset: str, **work) -> dict:
        """A class's fine-tune (engine.training.finetune.tune_and_save); what it returns."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
