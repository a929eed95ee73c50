"""The job manager: training jobs queue here and run in worker processes (engine.worker), at
most `max_running` at a time and one queued-or-running job per client. It keeps every job's
events (numbered, so a listener that reconnects can resume) and tells listeners when they change.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from engine.train import MALLOC_TUNING
from engine.worker import JobSpec, worker_main

ACTIVE = ("queued", "running", "paused")
FINAL = ("done", "stopped", "diverged", "failed")
ACTIONS = {  # action -> statuses it is allowed in
    "pause": ("running",), "resume": ("paused",), "step": ("running", "paused"),
    "stop": ACTIVE, "lr": ACTIVE,
}


class JobError(Exception):
    """A request the job cannot take now; `status` is the HTTP-like code (404, 409)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Job:
    id: str
    spec: JobSpec
    client: str
    created: float = field(default_factory=time.time)
    status: str = "queued"
    events: list[dict] = field(default_factory=list)
    latest: dict = field(default_factory=dict)   # last progress event per run
    epochs: list[dict] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)
    error: str | None = None
    process: object = None
    commands: object = None

    def summary(self, position: int | None) -> dict:
        """What GET /api/train/{id} returns (no images)."""
        runs = [self.latest.get(i, {}) for i in range(len(self.spec.learning_rates))]
        return {
            "id": self.id, "status": self.status, "position": position, "spec": self.spec.public(),
            "epoch": runs[0].get("epoch", 0), "step": runs[0].get("step", 0),
            "total_steps": runs[0].get("total_steps"), "runs": runs, "epochs": self.epochs,
            "test_accuracy": [r["test_accuracy"] for r in self.results] or None,
            "model_ids": [r["model_id"] for r in self.results] or None, "error": self.error,
            "last_event": len(self.events),
        }


class JobManager:
    def __init__(self, data_dir: Path, models_dir: Path, max_running: int = 1, threads: int = 1,
                 niceness: int = 10, time_limit: float = 1800.0, max_events: int = 20000):
        self.data_dir, self.models_dir = Path(data_dir), Path(models_dir)
        self.max_running, self.threads, self.niceness = max_running, threads, niceness
        self.time_limit, self.max_events = time_limit, max_events
        self.ctx = mp.get_context("spawn")  # a clean interpreter: no forked server threads
        for key, value in MALLOC_TUNING.items():  # read by glibc when each worker starts
            os.environ.setdefault(key, value)
        self.events = self.ctx.Queue()
        self.jobs: dict[str, Job] = {}
        self.lock = threading.RLock()
        self.listeners: list[Callable[[str, dict], None]] = []
        self.closed = False
        self.pump = threading.Thread(target=self._pump, name="job-events", daemon=True)
        self.pump.start()

    # --- requests ---------------------------------------------------------------------------

    def submit(self, spec: JobSpec, client: str) -> Job:
        with self.lock:
            mine = [j for j in self.jobs.values() if j.client == client and j.status in ACTIVE]
            if mine:
                raise JobError(409, f"You already have a training job ({mine[0].id}, {mine[0].status}). "
                                    "Stop it or wait for it to finish before starting another.")
            job = Job(id=uuid.uuid4().hex[:12], spec=spec, client=client)
            self.jobs[job.id] = job
            self._record(job, {"type": "status", "status": "queued", "position": self.position(job)})
            self._schedule()
            return job

    def get(self, job_id: str) -> Job:
        with self.lock:
            if job_id not in self.jobs:
                raise JobError(404, f"There is no training job {job_id!r}. Start one with POST /api/train.")
            return self.jobs[job_id]

    def position(self, job: Job) -> int | None:
        """1-based place in the queue, or None when not queued."""
        queued = [j for j in self.jobs.values() if j.status == "queued"]
        return queued.index(job) + 1 if job in queued else None

    def command(self, job_id: str, action: str, value: float | None = None, run: int | None = None) -> Job:
        with self.lock:
            job = self.get(job_id)
            if job.status not in ACTIONS[action]:
                raise JobError(409, f"Cannot {action} a job that is {job.status}.")
            if job.status == "queued":
                if action == "stop":
                    self._record(job, {"type": "done", "status": "stopped", "results": []})
                    self._announce_positions()
                else:  # a learning rate set before the job starts
                    job.spec.learning_rates = [value if run in (None, i) else lr
                                               for i, lr in enumerate(job.spec.learning_rates)]
                return job
            job.commands.put({"action": action, "value": value, "run": run})
            return job

    def events_since(self, job_id: str, seq: int) -> list[dict]:
        with self.lock:
            return [e for e in self.get(job_id).events if e["seq"] > seq]

    def close(self, timeout: float = 2.0) -> None:
        """Stop every job (workers get a stop, then are terminated)."""
        with self.lock:
            self.closed = True
            running = [j for j in self.jobs.values() if j.process is not None and j.process.is_alive()]
            for job in running:
                job.commands.put({"action": "stop"})
        for job in running:
            job.process.join(timeout)
            if job.process.is_alive():
                job.process.terminate()

    # --- inside -----------------------------------------------------------------------------

    def _schedule(self) -> None:
        running = [j for j in self.jobs.values() if j.status in ("running", "paused")]
        for job in [j for j in self.jobs.values() if j.status == "queued"][: self.max_running - len(running)]:
            job.commands = self.ctx.Queue()
            job.process = self.ctx.Process(
                target=worker_main, name=f"train-{job.id}", daemon=True,
                args=(job.id, asdict(job.spec), str(self.data_dir), str(self.models_dir), job.commands,
                      self.events, self.threads, self.niceness, self.time_limit))
            job.process.start()
            self._record(job, {"type": "status", "status": "running", "starting": True})
        self._announce_positions()

    def _announce_positions(self) -> None:
        for job in self.jobs.values():
            if job.status == "queued":
                position = self.position(job)
                if job.events and job.events[-1].get("position") != position:
                    self._record(job, {"type": "status", "status": "queued", "position": position})

    def _record(self, job: Job, event: dict) -> None:
        event = {**event, "seq": len(job.events) + 1, "time": time.time()}
        event.pop("job", None)
        kind = event["type"]
        if kind == "status":
            job.status = event["status"]
        elif kind == "progress":
            job.latest[event["run"]] = event
        elif kind == "epoch":
            job.epochs.append(event)
        elif kind == "done":
            job.status, job.error = event["status"], event.get("error")
            job.results = event.get("results", [])
        job.events.append(event)
        if len(job.events) > self.max_events:  # thin old progress events, keep everything else
            job.events = [e for i, e in enumerate(job.events) if e["type"] != "progress" or i % 2]
        for listener in list(self.listeners):
            listener(job.id, event)

    def _pump(self) -> None:
        while not self.closed:
            try:
                event = self.events.get(timeout=1.0)
            except queue.Empty:
                self._reap()
                continue
            except (EOFError, OSError):
                return
            with self.lock:
                job = self.jobs.get(event.get("job"))
                if job is None or job.status in FINAL:
                    continue
                self._record(job, event)
                if event["type"] == "done":
                    self._schedule()

    def _reap(self) -> None:
        """A worker that died without reporting (killed, out of memory) fails its job."""
        with self.lock:
            for job in self.jobs.values():
                if job.status in ("running", "paused") and job.process is not None and not job.process.is_alive():
                    self._record(job, {"type": "done", "status": "failed", "results": [],
                                       "error": f"the training process ended unexpectedly (exit code {job.process.exitcode})"})
                    self._schedule()
