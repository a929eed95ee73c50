"""The job manager: training jobs queue here and run in worker processes (engine.training.worker), at
most `max_running` at a time. It keeps every job's events (numbered, so a listener that
reconnects can resume) and tells listeners when they change.

Limits that keep one client from holding the server: one active job per owner, `per_address`
per network address (new tokens do not dodge it), at most `max_queue` waiting (503 with a time
to retry), and a paused job gives its slot to the queue after `paused_release` seconds. Finished
jobs are forgotten from memory after `grace` seconds; each job's record (status, epochs, results)
is kept on disk in `records_dir`, so a job is still there after a restart; one that was cut short
by the restart shows as "interrupted" with what it had saved.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import re
import secrets
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from engine.choices import ACTIVE, FINAL
from engine.refusal import Refusal
from engine.stores import files
from engine.training import recovery
from engine.training.train import MALLOC_TUNING
from engine.training.worker import JobSpec, worker_main

log = logging.getLogger("neuronlab")
JOB_ID = re.compile(r"^[0-9a-f]{32}$")  # 128 random bits
ACTIONS = {  # action -> statuses it is allowed in
    "pause": ("running",), "resume": ("paused",), "step": ("running", "paused"),
    "stop": ACTIVE, "lr": ACTIVE,
}
KEEP_RECORDS = 500   # job records kept on disk (the oldest go first)


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
                  epochs=r.get("epochs", []), results=r.get("results", []), error=r.get("error"),
                  finished=r.get("finished"), total_steps=r.get("total_steps"))
        job.events = [{"seq": 1, "type": "done", "status": job.status, "results": job.results, "error": job.error,
                       "time": job.finished or job.created}]
        return job


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


class JobManager:
    def __init__(self, data_dir: Path, models_dir: Path, max_running: int = 1, threads: int = 1,
                 niceness: int = 10, time_limit: float = 1800.0, max_events: int = 20000,
                 max_queue: int = 12, per_address: int = 3, paused_release: float = 60.0,
                 grace: float = 600.0, records_dir: Path | None = None):
        self.data_dir, self.models_dir = Path(data_dir), Path(models_dir)
        self.max_running, self.threads, self.niceness = max_running, threads, niceness
        self.time_limit, self.max_events = time_limit, max_events
        self.max_queue, self.per_address = max_queue, per_address
        self.paused_release, self.grace = paused_release, grace
        self.records_dir = Path(records_dir) if records_dir else None
        self.ctx = mp.get_context("spawn")  # a clean interpreter: no forked server threads
        for key, value in MALLOC_TUNING.items():  # read by glibc when each worker starts
            os.environ.setdefault(key, value)
        self.events = self.ctx.Queue()
        self.jobs: dict[str, Job] = {}
        self.lock = threading.RLock()
        self.listeners: list[Callable[[str, dict], None]] = []
        self.notes: dict[str, dict] = {}  # what services note about jobs (note, read_note, take_note)
        self.closed = self.closing = False
        # Workers are started from this one thread, which lives as long as the manager: Linux sends
        # a worker its parent-death signal when the thread that started it ends, not only the process
        # (a request's thread from a pool that retires idle threads would take its job down with it).
        self.starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="job-starter")
        self._recover()
        self.pump = threading.Thread(target=self._pump, name="job-events", daemon=True)
        self.pump.start()

    # --- requests ---------------------------------------------------------------------------

    def submit(self, spec: JobSpec, client: str, address: str = "local") -> Job:
        with self.lock:
            active = [j for j in self.jobs.values() if j.status in ACTIVE]
            check_limits(active, client, address, self.per_address, sum(j.status == "queued" for j in active),
                         self.max_queue)
            spec.owner = client
            job = Job(id=secrets.token_hex(16), spec=spec, client=client, address=address)
            self.jobs[job.id] = job
            self._record(job, {"type": "status", "status": "queued", "position": self.position(job)})
            self._schedule()
            return job

    def get(self, job_id: str) -> Job:
        with self.lock:
            job = self.jobs.get(job_id) or self._load_record(job_id)
            if job is None:
                shown = job_id if len(job_id) <= 40 else job_id[:40] + "..."
                raise JobError(404, f"There is no training job {shown!r}. Start one with POST /api/train.")
            return job

    def position(self, job: Job) -> int | None:
        """1-based place in the queue, or None when not queued."""
        queued = self._queue()
        return queued.index(job) + 1 if job in queued else None

    def command(self, job_id: str, action: str, value: float | None = None, run: int | None = None) -> Job:
        with self.lock:
            job = self.get(job_id)
            check_command(job, action, run)
            if job.process is None:  # still queued: nothing runs yet
                if action == "stop":
                    self._record(job, {"type": "done", "status": "stopped", "results": []})
                    self._announce_positions()
                else:  # a learning rate set before the job starts
                    job.spec.learning_rates = [value if run in (None, i) else lr
                                               for i, lr in enumerate(job.spec.learning_rates)]
                return job
            if action == "resume" and not job.holds_slot and not self._free_slots():
                # its slot went to the queue while it was paused: it waits its turn, paused
                job.queued_at = time.monotonic()
                self._record(job, {"type": "status", "status": "queued", "resuming": True})
                self._announce_positions()
                return job
            if action == "resume":
                job.holds_slot = True
            job.commands.put({"action": action, "value": value, "run": run})
            return job

    def note(self, key: str, data: dict) -> None:
        """Keep `data` under `key` until it is taken (a service's memo about a job)."""
        with self.lock:
            self.notes[key] = data

    def read_note(self, key: str) -> dict | None:
        with self.lock:
            return self.notes.get(key)

    def take_note(self, key: str) -> dict | None:
        """The note under `key`, to the first caller only."""
        with self.lock:
            return self.notes.pop(key, None)

    def events_since(self, job_id: str, seq: int) -> list[dict]:
        with self.lock:
            return [e for e in self.get(job_id).events if e["seq"] > seq]

    def close(self, timeout: float = 4.0) -> None:
        """Stop every job: workers are told to stop (each saves its model so far) and get up to
        `timeout` seconds in all; what reached us is recorded as "interrupted", then the rest
        are terminated and recorded as interrupted with nothing saved."""
        with self.lock:
            self.closing = True
            running = [j for j in self.jobs.values() if j.process is not None and j.process.is_alive()]
            for job in running:
                job.commands.put({"action": "stop"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(j.status in ACTIVE for j in running):
            time.sleep(0.05)
        with self.lock:
            self.closed = True
            for job in list(self.jobs.values()):
                if job.status in ACTIVE:
                    self._record(job, {"type": "done", "status": "interrupted", "results": job.results,
                                       "error": "The server shut down before this job finished."})
        for job in running:
            if job.process.is_alive():
                job.process.terminate()
            job.process.join(1.0)
        self.starter.shutdown(wait=False)

    # --- inside -----------------------------------------------------------------------------

    def _queue(self) -> list[Job]:
        return sorted((j for j in self.jobs.values() if j.status == "queued"), key=lambda j: j.queued_at)

    def _free_slots(self) -> int:
        return self.max_running - sum(j.holds_slot and j.status in ("running", "paused") for j in self.jobs.values())

    def _schedule(self) -> None:
        if self.closing:
            return
        for job in self._queue()[: max(0, self._free_slots())]:
            job.holds_slot = True
            if job.process is not None:  # a paused job whose turn came back
                job.commands.put({"action": "resume"})
                self._record(job, {"type": "status", "status": "running"})
                continue
            job.commands = self.ctx.Queue()
            job.process = self.ctx.Process(
                target=worker_main, name=f"train-{job.id[:8]}", daemon=True,
                args=(job.id, asdict(job.spec), str(self.data_dir), str(self.models_dir), job.commands,
                      self.events, self.threads, self.niceness, self.time_limit, os.getpid()),
                kwargs={"parent_death": signal.SIGKILL})  # it dies with this server, whatever it is doing
            self.starter.submit(job.process.start).result()
            self._record(job, {"type": "status", "status": "running", "starting": True})
        self._announce_positions()

    def _announce_positions(self) -> None:
        for job in self._queue():
            position = self.position(job)
            if job.events and job.events[-1].get("position") != position:
                self._record(job, {"type": "status", "status": "queued", "position": position})

    def _record(self, job: Job, event: dict) -> None:
        event = {**event, "seq": len(job.events) + 1, "time": time.time()}
        event.pop("job", None)
        kind = event["type"]
        if kind == "done" and self.closing and event["status"] == "stopped":  # by the shutdown, not its owner
            event["status"] = "interrupted"
            event["error"] = "The server shut down before this job finished; the model so far was saved."
        job.apply(event)
        job.events.append(event)
        if len(job.events) > self.max_events:  # thin old progress events, keep everything else
            job.events = [e for i, e in enumerate(job.events) if e["type"] != "progress" or i % 2]
        if kind in ("epoch", "done") or (kind == "status" and event.get("position") is None):
            self._save_record(job)
        for listener in list(self.listeners):
            listener(job.id, event)

    def _pump(self) -> None:
        last = time.monotonic()
        while not self.closed:
            try:
                event = self.events.get(timeout=0.5)
            except queue.Empty:
                event = None
            except (EOFError, OSError):
                return
            with self.lock:
                if event is not None:
                    job = self.jobs.get(event.get("job"))
                    if job is not None and job.status not in FINAL:
                        self._record(job, event)
                        if event["type"] == "done":
                            self._schedule()
                if time.monotonic() - last >= 0.5:
                    last = time.monotonic()
                    self._housekeep()

    def _housekeep(self) -> None:
        """Fail jobs whose worker died, hand slots of long-paused jobs to the queue, release the
        processes of finished jobs and forget them after the grace period."""
        now = time.monotonic()
        for job in list(self.jobs.values()):
            if job.status in ACTIVE and job.process is not None and not job.process.is_alive():
                self._record(job, {"type": "done", "status": "failed", "results": [],
                                   "error": f"the training process ended unexpectedly (exit code {job.process.exitcode})"})
            elif (job.status == "paused" and job.holds_slot and self._queue()
                  and now - (job.paused_since or now) >= self.paused_release):
                job.holds_slot = False
                self._record(job, {"type": "status", "status": "paused", "slot_released": True})
            if job.status in FINAL and job.process is not None and not job.process.is_alive():
                job.process.join(0)
                job.process.close()
                job.commands.close()
                job.commands.join_thread()
                job.process = job.commands = None
            if job.status in FINAL and job.process is None and time.time() - (job.finished or 0) > self.grace:
                del self.jobs[job.id]
        self._schedule()

    # --- records on disk ----------------------------------------------------------------------

    def _save_record(self, job: Job) -> None:
        if self.records_dir is None:
            return
        try:
            self.records_dir.mkdir(parents=True, exist_ok=True)
            files.write_json(self.records_dir / f"{job.id}.json", job.record())
        except OSError as exc:  # a full disk must not stop the job (its model save reports that)
            log.error("could not save the record of job %s: %s", job.id, exc)

    def _load_record(self, job_id: str) -> Job | None:
        if self.records_dir is None or not JOB_ID.match(str(job_id)):
            return None
        try:
            return Job.from_record(files.read_json(self.records_dir / f"{job_id}.json"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("skipped the unreadable record of job %s: %s", job_id, exc)
            return None

    def _recover(self) -> None:
        """At start: jobs that were queued or running when the server stopped are reconciled with
        the models folder: one whose model was saved says so (done, when it had trained to its
        end; else interrupted with the model so far), the others are interrupted with nothing saved;
        records past KEEP_RECORDS (oldest first) and half-written ones are removed."""
        if self.records_dir is None or not self.records_dir.is_dir():
            return
        saved: dict[str, list[dict]] | None = None  # read once, and only if a job was cut short
        files.remove_partial(self.records_dir)
        paths = sorted(self.records_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in paths[:-KEEP_RECORDS]:
            old.unlink(missing_ok=True)
        for path in paths[-KEEP_RECORDS:]:
            try:
                record = files.read_json(path)
                if record.get("status") in ACTIVE:
                    saved = recovery.saved_models(self.models_dir) if saved is None else saved
                    recovery.reconcile(record, saved.get(record["id"], []))
                    files.write_json(path, record)
            except (OSError, ValueError, KeyError, AttributeError) as exc:
                log.warning("skipped the unreadable job record %s: %s", path, exc)
