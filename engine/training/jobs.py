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
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from engine import datasets
from engine.choices import ACTIVE, FINAL
from engine.stores import files
from engine.stores import store as model_store
from engine.training import recovery
from engine.training.finetune import tune_and_save
from engine.training.lifecycle import JOB_ID, Job, JobError, Jobs
from engine.training.train import MALLOC_TUNING
from engine.training.worker import worker_main

__all__ = ["Job", "JobError", "JobManager"]

log = logging.getLogger("neuronlab")
KEEP_RECORDS = 500   # job records kept on disk (the oldest go first)


class JobManager(Jobs):
    """The job lifecycle (engine.training.lifecycle) on one server: jobs in memory and on disk,
    run in worker processes started here."""

    def __init__(self, data_dir: Path, models_dir: Path, max_running: int = 1, threads: int = 1,
                 niceness: int = 10, time_limit: float = 1800.0, max_events: int = 20000,
                 max_queue: int = 12, per_address: int = 3, paused_release: float = 60.0,
                 grace: float = 600.0, records_dir: Path | None = None):
        super().__init__()
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
        self.replays: dict[str, object] = {}  # training images mixed into a class's fine-tune, by dataset
        self.closed = self.closing = False
        # Workers are started from this one thread, which lives as long as the manager: Linux sends
        # a worker its parent-death signal when the thread that started it ends, not only the process
        # (a request's thread from a pool that retires idle threads would take its job down with it).
        self.starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="job-starter")
        self._recover()
        self.pump = threading.Thread(target=self._pump, name="job-events", daemon=True)
        self.pump.start()

    # --- requests ---------------------------------------------------------------------------

    def _exclusive(self):
        return self.lock

    def _active(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.status in ACTIVE]

    def _waiting(self) -> int:
        return sum(j.status == "queued" for j in self.jobs.values())

    def _admit(self, job: Job) -> None:
        self.jobs[job.id] = job
        self._record(job, {"type": "status", "status": "queued", "position": self.position(job)})
        self._schedule()

    def _load(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id) or self._load_record(job_id)

    def _untaken(self, job: Job) -> bool:
        return job.process is None

    def _append(self, job: Job, event: dict, expect: str | None = None) -> int:
        if job.status in FINAL or (expect and job.status != expect):
            return 0
        self._record(job, event)
        return job.events[-1]["seq"]

    def _dequeue(self, job: Job) -> None:
        self._announce_positions()

    def _deliver(self, job: Job, command: dict) -> None:
        if command["action"] == "resume" and not job.holds_slot and not self._free_slots():
            # its slot went to the queue while it was paused: it waits its turn, paused
            job.queued_at = time.monotonic()
            self._record(job, {"type": "status", "status": "queued", "resuming": True})
            self._announce_positions()
            return
        if command["action"] == "resume":
            job.holds_slot = True
        job.commands.put(command)

    def position(self, job: Job) -> int | None:
        queued = self._queue()
        return queued.index(job) + 1 if job in queued else None

    def finetune(self, card_path: Path, dataset: str, **work) -> dict:
        """A class's fine-tune, here (seconds; one at a time, the classroom sees to that)."""
        if dataset not in self.replays:
            self.replays[dataset] = datasets.load(dataset, self.data_dir).train
        return tune_and_save(model_store.load(Path(card_path)), replay=self.replays[dataset], folder=self.models_dir,
                             **work)

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
        if kind in ("epoch", "done", "learning_rate") or (kind == "status" and event.get("position") is None):
            self._save_record(job)
        self._tell(job.id, event)

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
