"""Training jobs in district mode (docs/scaling.md): queued in Redis through RQ and trained by
worker processes on any machine that shares the data folder, with what JobManager offers one
server: the same events, commands (pause, resume, step, stop, a new learning rate), limits and
time limit. A replica keeps no job in memory, so any replica answers for any job.

RQ over Dramatiq, measured (bench/bench_queue.py): RQ's worker forks a process per job and
learns at once when that process is killed; Dramatiq runs jobs in threads of the worker process
and gave a killed job back to another worker only after 75 s, to train again from the start.

In Redis, per job: its record (neuronlab:job:<id>, JSON, what JobManager keeps on disk), its
status (...:status), its events (...:events, a list: seq n is item n - 1), its commands
(...:commands, a list the worker pops between mini-batches) and a heartbeat (...:alive, expires).
Every event is also published on the channel neuronlab:jobs, so every replica can wake the pages
that watch the job. An event is written only while the job is not final (a Lua script checks
and writes in one step), so a job stopped while queued, failed by a killed worker or reaped
after its machine vanished stays so.

This module is the replicas' side (and what both sides share); the workers' side is
engine/training/district_worker.py, also started as

    python -m engine.training.district --redis redis://10.0.0.5:6379/0 [--data-dir data]
"""
from __future__ import annotations

import functools
import json
import logging
import secrets
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import redis
from rq import Queue, Worker

from engine.choices import ACTIVE, FINAL
from engine.training.jobs import JOB_ID, Job, JobError, check_command, check_limits
from engine.training.worker import JobSpec

log = logging.getLogger("neuronlab")

QUEUE = "neuronlab-training"
FINETUNE_QUEUE = "neuronlab-finetune"  # a class's fine-tune (seconds): workers take these first
FINETUNE_START, FINETUNE_LIMIT = 60, 300  # seconds a fine-tune may wait for a worker, and run
KEY = "neuronlab:job:"            # + job id (+ ":events", ":status", ":commands", ":alive")
ACTIVE_SET = "neuronlab:jobs:active"
NEWS = "neuronlab:jobs"           # pub/sub: {"job": id, ...event} for every event
NOTE = "neuronlab:note:"          # + key: what a replica's service noted about a job (app.training.Training.note)
HEARTBEAT, HEARTBEAT_TTL = 5.0, 60   # seconds between a job's heartbeats; without one this long it is dead
WORKER_TTL, WORKER_BEAT = 30, 15  # a training worker's RQ heartbeat: every 15 s idle (worker_ttl - 15) and busy
WORKER_LIVE = 60                  # seconds since its last heartbeat after which a worker counts as gone
NO_WORKER = ("No training worker is running, so this job waits in the queue until one starts; tell whoever "
             "runs the server (the district's workers: python -m engine.training.district).")
KEEP_EVENTS = 3600                # seconds a finished job's events stay (then its record answers alone)
KEEP_RECORD = 30 * 86400          # seconds a job's record stays
HARD_LIMIT = 300                  # seconds past the time limit after which RQ kills a job that did not stop
WORKER = "engine.training.district_worker."  # where the workers' job functions are (RQ imports them by name)
RECORDED = ("status", "progress", "epoch", "done", "learning_rate")  # events that change the record

# Write one event of a job unless the job is final (a status in FINAL; or, with ARGV[3], unless its status is other
# than expected). KEYS: record, events, status, active set, commands, alive. ARGV: event JSON,
# record JSON ("" keeps it), expected status ("" any), new status ("" unchanged), final ("1"),
# job id, seconds to keep events, seconds to keep the record, news channel, news JSON.
APPEND = """
local status = redis.call('GET', KEYS[3])
local final = {""" + ", ".join(f"{status}=true" for status in FINAL) + """}
if status and final[status] then return 0 end
if ARGV[3] ~= '' and status ~= ARGV[3] then return 0 end
local seq = redis.call('RPUSH', KEYS[2], ARGV[1])
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[8]) end
if ARGV[4] ~= '' then redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[8]) end
if ARGV[5] == '1' then
  redis.call('SREM', KEYS[4], ARGV[6])
  redis.call('EXPIRE', KEYS[2], ARGV[7])
  redis.call('DEL', KEYS[5], KEYS[6])
end
redis.call('PUBLISH', ARGV[9], ARGV[10])
return seq
"""


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)


class JobStore:
    """A job's record, events, commands and heartbeat in Redis (replicas and workers both use it)."""

    def __init__(self, client: redis.Redis):
        self.redis = client
        self._append = client.register_script(APPEND)

    def keys(self, job_id: str) -> list[str]:
        k = KEY + job_id
        return [k, k + ":events", k + ":status", ACTIVE_SET, k + ":commands", k + ":alive"]

    def load(self, job_id: str) -> Job | None:
        """The job as its record says, with its last event (whose seq is how many it has)."""
        if not JOB_ID.match(str(job_id)):
            return None
        k = KEY + job_id
        raw, count, last = self.redis.pipeline().get(k).llen(k + ":events").lindex(k + ":events", -1).execute()
        if raw is None:
            return None
        job = Job.from_record(json.loads(raw))
        job.events = [{**json.loads(last), "seq": count}] if last else job.events
        return job

    def append(self, job: Job, event: dict, expect: str | None = None) -> int:
        """Apply an event to the job and store both; its seq, or 0 when the job is final already
        (or its status is not `expect`)."""
        event = {k: v for k, v in event.items() if k != "job"} | {"time": time.time()}
        job.apply(event)
        kind = event["type"]
        recorded = kind in RECORDED
        text = json.dumps(event)
        return self._append(keys=self.keys(job.id), args=[
            text, json.dumps(job.record()) if recorded else "", expect or "",
            job.status if recorded else "", "1" if kind == "done" else "", job.id,
            KEEP_EVENTS, KEEP_RECORD, NEWS, f'{{"job": {json.dumps(job.id)}, {text[1:]}'])

    def fail(self, job_id: str, error: str) -> bool:
        """Mark an active job failed (its worker died); False if it had ended already."""
        job = self.load(job_id)
        if job is None or job.status not in ACTIVE:
            return False
        return bool(self.append(job, {"type": "done", "status": "failed", "results": [], "error": error}))


# --- the replicas' side ----------------------------------------------------------------------

def answered(method):
    """Redis not answering becomes a JobError the client can act on (503, try again), not a crash."""
    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except (redis.RedisError, OSError) as exc:
            log.warning("the district's Redis: %s", exc)
            raise JobError(503, "The district's training queue (Redis) is not answering. Try again in a "
                                "minute; if it lasts, tell whoever runs the server.", retry_after=30) from exc
    return call


class QueuedJobs:
    """JobManager's interface over Redis and RQ, for a replica: submit, get, position, command,
    events_since, listeners. A thread follows the news channel (listeners hear every job's events,
    as JobManager's do) and fails running jobs whose heartbeat stopped (a worker machine gone)."""

    def __init__(self, url: str, time_limit: float = 1800.0, max_queue: int = 12, per_address: int = 3):
        self.redis = connect(url)
        self.store = JobStore(self.redis)
        self.queue = Queue(QUEUE, connection=self.redis)
        self.time_limit, self.max_queue, self.per_address = time_limit, max_queue, per_address
        self.listeners: list[Callable[[str, dict], None]] = []
        self.closed = threading.Event()
        self.follower = threading.Thread(target=self._follow, name="district-jobs", daemon=True)
        self.follower.start()

    @answered
    def submit(self, spec: JobSpec, client: str, address: str = "local") -> Job:
        # the checks and the queueing, one replica at a time
        with self.redis.lock("neuronlab:jobs:submit", timeout=10, blocking_timeout=10):
            active = [j for j in map(self.store.load, sorted(m.decode() for m in self.redis.smembers(ACTIVE_SET)))
                      if j is not None and j.status in ACTIVE]
            check_limits(active, client, address, self.per_address, self.queue.count, self.max_queue)
            spec.owner = client
            job = Job(id=secrets.token_hex(16), spec=spec, client=client, address=address)
            self.redis.sadd(ACTIVE_SET, job.id)
            self.store.append(job, {"type": "status", "status": "queued", "position": self.queue.count + 1})
            self.queue.enqueue(WORKER + "run_job", job.id, asdict(spec), self.time_limit, job_id=job.id,
                               job_timeout=int(self.time_limit + HARD_LIMIT), result_ttl=600, failure_ttl=86400)
            return job

    @answered
    def get(self, job_id: str) -> Job:
        job = self.store.load(job_id)
        if job is None:
            shown = job_id if len(job_id) <= 40 else job_id[:40] + "..."
            raise JobError(404, f"There is no training job {shown!r}. Start one with POST /api/train.")
        return job

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
        """GET /api/train/{id}: a queued job says when no worker is alive to take it (it would wait for good)."""
        summary = job.summary(self.position(job))
        if job.status == "queued" and not self.workers():
            summary.update(no_worker=True, message=NO_WORKER)
        return summary

    @answered
    def command(self, job_id: str, action: str, value: float | None = None, run: int | None = None) -> Job:
        job = self.get(job_id)
        check_command(job, action, run)
        if job.status == "queued":  # no worker has it yet (the script refuses if one took it meanwhile)
            if action == "stop" and self.store.append(job, {"type": "done", "status": "stopped", "results": []},
                                                       expect="queued"):
                self.queue.remove(job.id)
                return job
            if action == "lr":  # the rate it will start with
                job.spec.learning_rates = [value if run in (None, i) else lr for i, lr in enumerate(job.spec.learning_rates)]
                if self.store.append(job, {"type": "learning_rate", "value": value, "run": run, "queued": True},
                                     expect="queued"):
                    return job
            if action not in ("stop", "lr"):
                raise JobError(409, f"Cannot {action} a job that is queued.")
            job = self.get(job_id)  # a worker took it meanwhile: tell the worker
        self.redis.rpush(KEY + job_id + ":commands", json.dumps({"action": action, "value": value, "run": run}))
        return job

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

    @answered
    def note(self, key: str, data: dict) -> None:
        self.redis.set(NOTE + key, json.dumps(data), ex=KEEP_RECORD)

    @answered
    def read_note(self, key: str) -> dict | None:
        raw = self.redis.get(NOTE + key)
        return None if raw is None else json.loads(raw)

    @answered
    def take_note(self, key: str) -> dict | None:
        raw = self.redis.getdel(NOTE + key)  # one replica gets it
        return None if raw is None else json.loads(raw)

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
                            for listener in list(self.listeners):
                                try:
                                    listener(job_id, event)
                                except Exception:  # one listener's failure must not stop the news
                                    log.exception("a listener failed on an event of job %s", job_id)
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
