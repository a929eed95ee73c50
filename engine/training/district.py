"""Training jobs in district mode (docs/scaling.md): queued in Redis through RQ and trained by
worker processes on any machine that shares the data folder, with what JobManager offers one
server: the same events, commands (pause, resume, step, stop, a new learning rate), limits and
time limit. A replica keeps no job in memory, so any replica answers for any job.

RQ over Dramatiq, measured (bench/bench_queue.py): RQ's worker forks a process per job and
learns at once when that process is killed; Dramatiq runs jobs in threads of the worker process
and gave a killed job back to another worker only after 75 s, to train again from the start.

How jobs are kept in Redis: engine/training/redisjobs.py (both sides use it).

This module is the replicas' side; the workers' side is
engine/training/district_worker.py, also started as

    python -m engine.training.district --redis redis://10.0.0.5:6379/0 [--data-dir data]
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
import time
from dataclasses import asdict
from pathlib import Path

import redis
from rq import Queue, Worker

from engine.choices import ACTIVE, FINAL
from engine.training.lifecycle import Job, JobError, Jobs
from engine.training.redisjobs import ACTIVE_SET, FINETUNE_QUEUE, HEARTBEAT, KEY, NEWS, QUEUE, JobStore, connect

log = logging.getLogger("neuronlab")

FINETUNE_START, FINETUNE_LIMIT = 60, 300  # seconds a fine-tune may wait for a worker, and run
WORKER_LIVE = 60                  # seconds since its last heartbeat after which a worker counts as gone
NO_WORKER = ("No training worker is running, so this job waits in the queue until one starts; tell whoever "
             "runs the server (the district's workers: python -m engine.training.district).")
HARD_LIMIT = 300                  # seconds past the time limit after which RQ kills a job that did not stop
WORKER = "engine.training.district_worker."  # where the workers' job functions are (RQ imports them by name)


def unavailable(exc: Exception) -> JobError:
    log.warning("the district's Redis: %s", exc)
    return JobError(503, "The district's training queue (Redis) is not answering. Try again in a "
                         "minute; if it lasts, tell whoever runs the server.", retry_after=30)


def answered(method):
    """Redis not answering becomes a JobError the client can act on (503, try again), not a crash."""
    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except (redis.RedisError, OSError) as exc:
            raise unavailable(exc) from exc
    return call


class QueuedJobs(Jobs):
    """The job lifecycle (engine.training.lifecycle) over Redis and RQ, for a replica: jobs wait in
    RQ's queue for a district worker, their records, events and commands in Redis (JobStore). A
    thread follows the news channel (listeners hear every job's events, as JobManager's do) and
    fails running jobs whose heartbeat stopped (a worker machine gone)."""

    def __init__(self, url: str, time_limit: float = 1800.0, max_queue: int = 12, per_address: int = 3):
        super().__init__()
        self.redis = connect(url)
        self.store = JobStore(self.redis)
        self.queue = Queue(QUEUE, connection=self.redis)
        self.time_limit, self.max_queue, self.per_address = time_limit, max_queue, per_address
        self.closed = threading.Event()
        self.follower = threading.Thread(target=self._follow, name="district-jobs", daemon=True)
        self.follower.start()

    @contextlib.contextmanager
    def _exclusive(self):
        """One replica at a time submits or commands."""
        try:
            with self.redis.lock("neuronlab:jobs:lock", timeout=10, blocking_timeout=10):
                yield
        except (redis.RedisError, OSError) as exc:
            raise unavailable(exc) from exc

    def _active(self) -> list[Job]:
        return [j for j in map(self.store.load, sorted(m.decode() for m in self.redis.smembers(ACTIVE_SET)))
                if j is not None and j.status in ACTIVE]

    def _waiting(self) -> int:
        return self.queue.count

    def _admit(self, job: Job) -> None:
        self.redis.sadd(ACTIVE_SET, job.id)
        self.store.append(job, {"type": "status", "status": "queued", "position": self.queue.count + 1})
        limit = job.spec.time_limit or self.time_limit  # a k-fold job's own, as the server allowed it
        self.queue.enqueue(WORKER + "run_job", job.id, asdict(job.spec), limit, job_id=job.id,
                           job_timeout=int(limit + HARD_LIMIT), result_ttl=600, failure_ttl=86400)

    @answered
    def _load(self, job_id: str) -> Job | None:
        return self.store.load(job_id)

    def _untaken(self, job: Job) -> bool:
        return job.status == "queued"  # the script refuses its events if a worker takes it meanwhile

    def _append(self, job: Job, event: dict, expect: str | None = None) -> int:
        return self.store.append(job, event, expect)

    def _dequeue(self, job: Job) -> None:
        self.queue.remove(job.id)

    def _deliver(self, job: Job, command: dict) -> None:
        self.redis.rpush(KEY + job.id + ":commands", json.dumps(command))

    @answered
    def position(self, job: Job) -> int | None:
        """A queued job's place in the queue: 1 is next (or already taken by a worker that is starting it)."""
        if job.status != "queued":
            return None
        ids = self.queue.get_job_ids()
        return ids.index(job.id) + 1 if job.id in ids else 1

    @answered
    def workers(self) -> int:
        """How many training workers are alive: registered with RQ for the training queue and heard from
        within WORKER_LIVE seconds (one killed with SIGKILL stays registered until its key expires)."""
        now = time.time()
        return sum(1 for w in Worker.all(connection=self.redis, queue=self.queue)
                   if w.last_heartbeat is not None and now - w.last_heartbeat.timestamp() < WORKER_LIVE)

    def summary(self, job: Job) -> dict:
        """A queued job also says when no worker is alive to take it (it would wait for good)."""
        summary = super().summary(job)
        if job.status == "queued" and not self.workers():
            summary.update(no_worker=True, message=NO_WORKER)
        return summary

    @answered
    def events_since(self, job_id: str, seq: int) -> list[dict]:
        key = KEY + job_id + ":events"
        events = self.redis.lrange(key, max(seq, 0), -1)
        if events:
            return [{**json.loads(e), "seq": seq + i + 1} for i, e in enumerate(events)]
        job = self.get(job_id)
        if job.status in FINAL and not self.redis.exists(key):  # its events expired: the record's end
            return [{**job.events[-1], "seq": seq + 1}]
        return []

    @answered
    def finetune(self, card_path: Path, dataset: str, **work) -> dict:
        """A class's fine-tune (engine.training.finetune.tune_and_save) on a worker; waits for it
        and returns what it returns. A worker free within FINETUNE_START seconds takes it."""
        job = Queue(FINETUNE_QUEUE, connection=self.redis).enqueue(
            WORKER + "run_finetune", str(card_path), dataset, work, job_timeout=FINETUNE_LIMIT, result_ttl=600, failure_ttl=3600)
        started = time.monotonic()
        while True:
            status = job.get_status(refresh=True)
            if status == "finished":
                return job.return_value()
            if status in ("failed", "stopped", "canceled"):
                raise JobError(503, "The fine-tune failed on the training worker; try again, and if it fails "
                                    "again tell whoever runs the server (the worker's log says why).")
            waited = time.monotonic() - started
            if status in ("queued", "deferred", "scheduled") and waited > FINETUNE_START:
                job.cancel()
                raise JobError(503, f"Every training worker stayed busy for {FINETUNE_START} s, so the fine-tune "
                                    "could not start. Try again when a training job ends.", retry_after=60)
            if waited > FINETUNE_START + FINETUNE_LIMIT:
                raise JobError(503, "The fine-tune took too long on the training worker; try again.")
            time.sleep(0.1)

    def close(self) -> None:
        """Stop following (jobs go on: they belong to the workers, not to this replica)."""
        self.closed.set()
        self.follower.join(5)
        self.redis.close()

    def _follow(self) -> None:
        reaped_at = 0.0
        while not self.closed.is_set():
            try:
                with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    pubsub.subscribe(NEWS)
                    while not self.closed.is_set():
                        message = pubsub.get_message(timeout=1.0)
                        if message is not None:
                            event = json.loads(message["data"])
                            job_id = event.pop("job")
                            self._tell(job_id, event)
                        if time.monotonic() - reaped_at > HEARTBEAT:
                            reaped_at = time.monotonic()
                            self._reap()
            except (redis.RedisError, OSError, ValueError, KeyError) as exc:
                log.warning("following training jobs in Redis: %s", exc)
                self.closed.wait(1.0)

    def _reap(self) -> None:
        """Fail running or paused jobs whose worker stopped beating (its machine went away)."""
        for member in self.redis.smembers(ACTIVE_SET):
            job_id = member.decode()
            status = self.redis.get(KEY + job_id + ":status")
            if status in (b"running", b"paused") and not self.redis.exists(KEY + job_id + ":alive"):
                if self.redis.set(KEY + job_id + ":reaped", 1, nx=True, ex=60):  # one replica does it
                    self.store.fail(job_id, "the worker training this job stopped answering (its machine or "
                                            "process went away); start it again")
            elif status is None and not self.redis.exists(KEY + job_id):
                self.redis.srem(ACTIVE_SET, job_id)  # its record expired


if __name__ == "__main__":  # the documented way to start a worker
    from engine.training.district_worker import main
    main()
