"""District mode's training workers (docs/scaling.md): an RQ worker that takes a class's
fine-tunes first, then training jobs, and runs each in a process it forks (torch loaded once,
before the fork). A training job runs the same worker_main as on one server, its commands read
from Redis and its events written there (engine.training.redisjobs.JobStore); a warm shutdown
(SIGTERM) stops the job with its model saved; a killed job process fails its job at once.

    python -m engine.training.district --redis redis://10.0.0.5:6379/0 [--data-dir data]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import signal
import threading
from pathlib import Path

import redis
from rq import Queue, Worker, worker_registration

from engine import datasets
from engine.stores import store
from engine.training.finetune import tune_and_save
from engine.training.lifecycle import Job
from engine.training.redisjobs import FINETUNE_QUEUE, HEARTBEAT, HEARTBEAT_TTL, KEY, QUEUE, WORKER_BEAT, WORKER_TTL, JobStore, connect
from engine.training.train import MALLOC_TUNING
from engine.training.worker import die_with_parent, lower_priority, worker_main

log = logging.getLogger("neuronlab")
RECONNECT = (1.0, 30.0)  # seconds a worker that lost Redis waits before asking again: first, and at most


class RedisCommands:
    """What a worker's JobRunner reads commands from: a queue.Queue's get / get_nowait over Redis."""

    def __init__(self, client: redis.Redis, job_id: str):
        self.redis, self.key = client, KEY + job_id + ":commands"

    def get(self, timeout: float | None = None) -> dict:
        got = self.redis.blpop([self.key], timeout=timeout or 0)
        if got is None:
            raise queue.Empty
        return json.loads(got[1])

    def get_nowait(self) -> dict:
        raw = self.redis.lpop(self.key)
        if raw is None:
            raise queue.Empty
        return json.loads(raw)


class RedisEvents:
    """What worker_main puts events on: each goes to Redis as the job's next event."""

    def __init__(self, store: JobStore, job: Job):
        self.store, self.job = store, job

    def put(self, event: dict) -> None:
        if (event["type"] == "done" and event["status"] == "stopped"
                and self.store.redis.exists(KEY + self.job.id + ":interrupted")):  # by a worker's shutdown
            event = {**event, "status": "interrupted",
                     "error": "The training worker shut down before this job finished; the model so far was saved."}
        self.store.append(self.job, event)


def run_job(job_id: str, spec: dict, time_limit: float) -> None:
    """The RQ job: train `spec` in this work horse (RQ forked it from the worker), its events and
    commands in Redis. Settings come from the worker's environment (WORKER_SETTINGS)."""
    settings = WORKER_SETTINGS
    client = connect(settings["url"])
    store = JobStore(client)
    alive = KEY + job_id + ":alive"
    client.set(alive, 1, ex=HEARTBEAT_TTL)  # before it is running: the reapers look for running jobs without one
    job = store.load(job_id)
    if job is None or not store.append(job, {"type": "status", "status": "running", "starting": True}, expect="queued"):
        client.delete(alive)
        return  # stopped (or expired) while it waited
    spec["learning_rates"] = job.spec.learning_rates  # changed while it waited
    beating = threading.Event()

    def heartbeat() -> None:
        while not beating.wait(HEARTBEAT):
            client.set(alive, 1, ex=HEARTBEAT_TTL)
    beat = threading.Thread(target=heartbeat, name="heartbeat", daemon=True)
    beat.start()
    signal.signal(signal.SIGUSR2, _worker_gone)
    die_with_parent(signal.SIGUSR2)  # the RQ worker killed: this ends at once, failing its job below
    try:
        worker_main(job_id, spec, settings["data_dir"], settings["models_dir"], RedisCommands(client, job_id),
                    RedisEvents(store, job), settings["threads"], settings["niceness"], time_limit,
                    settings.get("pid") or os.getppid())
    finally:
        beating.set()
        # worker_main returns early only when its parent (the RQ worker) is gone
        store.fail(job_id, "the queue worker running this job stopped")


def _worker_gone(signum, frame) -> None:
    raise SystemExit("the queue worker running this job stopped")


def run_finetune(card_path: str, dataset: str, work: dict) -> dict:
    """The RQ job of a class's fine-tune, in a work horse: the base model from the shared folder,
    the tuned one saved there."""
    settings = WORKER_SETTINGS
    lower_priority(settings["niceness"], settings["threads"])
    replay = datasets.load(dataset, Path(settings["data_dir"])).train
    return tune_and_save(store.load(Path(card_path)), replay=replay, folder=Path(settings["models_dir"]), **work)


WORKER_SETTINGS: dict = {}


def work(url: str, data_dir: Path, threads: int = 1, niceness: int = 10, burst: bool = False) -> None:
    """An RQ worker for training jobs: torch loaded once here, each job in a forked process."""
    import torch  # noqa: F401  (loaded before the fork: a job starts at once)
    for key, value in MALLOC_TUNING.items():
        os.environ.setdefault(key, value)
    WORKER_SETTINGS.update(url=url, data_dir=str(data_dir), models_dir=str(data_dir / "models"),
                           threads=threads, niceness=niceness, pid=os.getpid())  # the work horses' parent
    client = connect(url)
    store = JobStore(client)

    def horse_killed(job, retpid, ret_val, rusage) -> None:
        store.fail(job.id, f"the training process was killed (wait status {ret_val}); start it again")
    queues = [Queue(FINETUNE_QUEUE, connection=client), Queue(QUEUE, connection=client)]  # fine-tunes first
    delay = RECONNECT[0]
    while True:
        worker = None
        try:
            worker = TrainingWorker(queues, connection=client, work_horse_killed_handler=horse_killed,
                                    worker_ttl=WORKER_TTL, job_monitoring_interval=WORKER_BEAT)
            worked = worker.work(burst=burst, logging_level="WARNING")
        except (redis.ConnectionError, redis.TimeoutError) as exc:  # registering itself, or its goodbye
            log.warning("the district's Redis: %s", exc)
            worked = False
        if burst or (worker is not None and worker.stopping):
            return
        # RQ's worker quits on some Redis errors (a restart's dropped connection, a timeout): wait
        # until Redis answers again, longer each time, then listen again with a new worker
        if not reconnect(client, delay):
            return  # told to stop while it waited
        delay = RECONNECT[0] if worked else min(delay * 2, RECONNECT[1])


def reconnect(client: redis.Redis, delay: float) -> bool:
    """Wait `delay` seconds, then until Redis answers (doubling the wait up to RECONNECT[1]); False
    when SIGTERM or SIGINT came meanwhile (the worker stops: it has no job)."""
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    while not stopping.wait(delay):
        try:
            client.ping()
            log.warning("the district's Redis answers again: listening for jobs")
            return True
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            delay = min(delay * 2, RECONNECT[1])
            log.warning("the district's Redis: %s; trying again in %.0f s", exc, delay)
    return False


class TrainingWorker(Worker):
    """RQ's worker, but a warm shutdown (SIGTERM, Ctrl+C) tells the job in training to stop: it
    saves its model within a mini-batch and ends as interrupted (a second signal kills it)."""

    stopping = False  # told to stop (SIGTERM, Ctrl+C): work() returns for good

    def handle_warm_shutdown_request(self) -> None:
        self.stopping = True
        try:
            job = self.get_current_job()
            if job is not None and job.origin == QUEUE:  # a fine-tune just finishes
                self.connection.set(KEY + job.id + ":interrupted", 1, ex=3600)
                self.connection.rpush(KEY + job.id + ":commands", json.dumps({"action": "stop"}))
        except redis.RedisError as exc:  # Redis gone first: the job's process ends with its parent
            log.warning("could not tell the job to stop: %s", exc)
        super().handle_warm_shutdown_request()

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:
        """RQ's heartbeat; and when Redis came back without what it knew about this worker (restarted
        without its files), register again: the replicas count live workers from RQ's registry."""
        super().heartbeat(timeout, pipeline)
        if pipeline is None and not self.connection.hexists(self.key, "birth"):
            with self.connection.pipeline() as again:
                again.hset(self.key, mapping=self.serialize())
                worker_registration.register(self, again)
                again.expire(self.key, timeout or self.worker_ttl + 60)
                again.execute()


def main() -> None:
    p = argparse.ArgumentParser(description="A NeuronLab district training worker (RQ).")
    p.add_argument("--redis", default=os.environ.get("NEURONLAB_REDIS_URL"), help="the district's Redis URL")
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("NEURONLAB_DATA_DIR", "data")),
                   help="the data folder every replica and worker shares")
    p.add_argument("--threads", type=int, default=int(os.environ.get("NEURONLAB_TRAINING_THREADS", 1)))
    p.add_argument("--niceness", type=int, default=int(os.environ.get("NEURONLAB_TRAINING_NICENESS", 10)),
                   help="0: run at normal priority (a machine of its own)")
    args = p.parse_args()
    if not args.redis:
        p.error("give --redis or NEURONLAB_REDIS_URL")
    from engine.training import district_worker  # not a copy run as __main__: RQ's jobs import this module
    district_worker.work(args.redis, args.data_dir.resolve(), args.threads, args.niceness)


if __name__ == "__main__":
    main()
