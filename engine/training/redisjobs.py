"""Training jobs in Redis, as both sides of district mode keep them (the replicas:
engine/training/district.py; the workers: engine/training/district_worker.py).

In Redis, per job: its record (neuronlab:job:<id>, JSON, what JobManager keeps on disk), its
status (...:status), its events (...:events, a list: seq n is item n - 1), its commands
(...:commands, a list the worker pops between mini-batches) and a heartbeat (...:alive, expires).
Every event is also published on the channel neuronlab:jobs, so every replica can wake the pages
that watch the job. An event is written only while the job is not final (a Lua script checks
and writes in one step), so a job stopped while queued, failed by a killed worker or reaped
after its machine vanished stays so.
"""
from __future__ import annotations

import json
import time

import redis

from engine.choices import ACTIVE, FINAL
from engine.training.lifecycle import JOB_ID, Job

QUEUE = "neuronlab-training"
FINETUNE_QUEUE = "neuronlab-finetune"  # a class's fine-tune (seconds): workers take these first
KEY = "neuronlab:job:"            # + job id (+ ":events", ":status", ":commands", ":alive")
ACTIVE_SET = "neuronlab:jobs:active"
NEWS = "neuronlab:jobs"           # pub/sub: {"job": id, ...event} for every event
HEARTBEAT, HEARTBEAT_TTL = 5.0, 60   # seconds between a job's heartbeats; without one this long it is dead
WORKER_TTL, WORKER_BEAT = 30, 15  # a training worker's RQ heartbeat: every 15 s idle (worker_ttl - 15) and busy
KEEP_EVENTS = 3600                # seconds a finished job's events stay (then its record answers alone)
KEEP_RECORD = 30 * 86400          # seconds a job's record stays
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


