"""Everything the routers use that outlives a request, built once when the server starts (the
lifespan in app.main) and handed to routers only through the Depends aliases in app.deps."""
from __future__ import annotations

import asyncio
import logging
import sys
import time
from dataclasses import dataclass

from app import owners
from app.backends import Backends
from app.classroom import Classroom
from app.frames import FrameReader
from app.photowork import PhotoWork
from app.settings import Settings
from app.teaching import Teaching
from app.training import Training
from engine.stores import expiry
from engine.stores.projects import Limits, ProjectStore
from engine.stores.store import ModelRegistry

log = logging.getLogger("neuronlab")


@dataclass
class Services:
    registry: ModelRegistry   # model cards, and the networks in use (engine.stores.store)
    frames: FrameReader       # the process that reads drawn frames and photos of class sessions
    training: Training        # training jobs (engine.training.jobs) and the sockets watching them
    projects: ProjectStore    # teach-your-own-classes projects (engine.stores.projects)
    teaching: Teaching        # a project's training jobs and their results
    classroom: Classroom      # class sessions, their live galleries and fine-tuning
    photos: PhotoWork         # where the photo network runs: a thread behind the drawing
    admin_key_hash: str       # SHA-256 of the server's admin key

    @classmethod
    def start(cls, settings: Settings) -> Services:
        """Build the services (call on the server's event loop)."""
        loop = asyncio.get_running_loop()
        key = owners.admin_key(settings)
        if not settings.admin_key:
            # a bare `uvicorn --factory app.main:create_app` start; `neuronlab serve` makes the key
            # itself and shows it in its start banner (neuronlab/banner.py)
            print(owners.admin_key_notice(key), file=sys.stderr, flush=True)
        backends = Backends.choose(settings, loop)  # one server, or a district's replica
        registry = ModelRegistry([settings.models_dir, settings.data_dir / "models"], settings.model_cache,
                                 shared=backends.shared)
        if settings.default_model not in registry:
            log.warning("default model %r not found in %s", settings.default_model, settings.models_dir)
        training = Training(backends.jobs, registry, loop)
        projects = ProjectStore(settings.data_dir / "projects",
                                Limits(settings.max_projects, settings.project_classes, settings.project_samples),
                                shared=backends.shared, database_url=backends.database_url)
        photos = PhotoWork(settings.photo_threads, settings.photo_niceness)
        return cls(registry=registry, frames=FrameReader(settings, registry), training=training, projects=projects,
                   teaching=Teaching(projects, training, registry, photos), photos=photos,
                   classroom=Classroom(settings.data_dir / "sessions", registry, backends.galleries, backends.jobs,
                                       backends.database_url),
                   admin_key_hash=owners.token_hash(key))

    def sweep(self, settings: Settings) -> expiry.Swept:
        """Expire what a school year leaves behind (engine/stores/expiry.py): trained models nobody
        named that no session or project refers to, and finished jobs' records, after
        NEURONLAB_EXPIRE_DAYS (0: never)."""
        swept = expiry.Swept()
        if not settings.expire_days:
            return swept
        now = time.time()
        mine = {i: c for i, c in self.registry.models.items() if i in self.registry.user_ids}
        texts = self.classroom.sessions.model_texts() + self.projects.model_texts()
        in_use = expiry.referenced(texts, set(mine)) | set(self.registry.loaded())
        for model_id in expiry.expired_models(mine, in_use, settings.expire_days, now, self.registry.user_folder):
            try:
                self.registry.delete(model_id)
                swept.models.append(model_id)
            except (OSError, KeyError, PermissionError):  # gone already (another replica's sweep)
                continue
        swept.records = expiry.expire_records(settings.data_dir / "jobs", settings.expire_days, now)
        if swept.models or swept.records:
            log.info("expired %d models nobody named and %d job records", len(swept.models), swept.records)
        return swept

    async def open(self) -> None:
        """Start what runs on the event loop (the district galleries' link to Redis)."""
        await self.classroom.galleries.start()

    async def close(self) -> None:
        await self.classroom.close()  # galleries first: teachers' pages are told the server restarts
        await asyncio.to_thread(self.training.close)  # each running job saves its model, then stops
        self.frames.close()
        self.photos.close()
