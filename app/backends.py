"""Where this server keeps what it shares with others, chosen once, here, from the settings:

- one server (the default): training jobs run in worker processes started here
  (engine.training.jobs.JobManager), galleries live in this process, the stores are SQLite files
  in the data folder;
- a district (NEURONLAB_REDIS_URL, docs/scaling.md): jobs wait in Redis for the district's
  workers (engine.training.district.QueuedJobs), galleries go over Redis, the data folder is
  shared with the other replicas, and with NEURONLAB_DATABASE_URL the stores are in PostgreSQL.

Nothing else in app/ asks which: the services are built from a Backends."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from app.hub import GalleryHub, RedisGalleryHub
from app.settings import Settings
from engine.training.jobs import JobManager
from engine.training.lifecycle import Jobs


@dataclass
class Backends:
    jobs: Jobs                 # the training jobs' transport
    galleries: GalleryHub      # class sessions' live galleries
    database_url: str | None   # PostgreSQL shared by the replicas; None: SQLite files in the data folder
    shared: bool               # other servers write to the same data folder at the same time

    @classmethod
    def choose(cls, settings: Settings, loop: asyncio.AbstractEventLoop) -> Backends:
        if settings.redis_url:
            from engine.training.district import QueuedJobs  # only a district needs redis and rq
            jobs = QueuedJobs(settings.redis_url, settings.training_time_limit, settings.max_queue,
                              settings.jobs_per_address)
            return cls(jobs, RedisGalleryHub(loop, settings.redis_url), settings.database_url, shared=True)
        jobs = JobManager(
            settings.data_dir, settings.data_dir / "models", max_running=settings.training_jobs,
            threads=settings.training_threads, niceness=settings.training_niceness,
            time_limit=settings.training_time_limit, max_queue=settings.max_queue,
            per_address=settings.jobs_per_address, paused_release=settings.paused_release,
            grace=settings.job_grace, records_dir=settings.data_dir / "jobs")
        return cls(jobs, GalleryHub(loop), settings.database_url, shared=False)
