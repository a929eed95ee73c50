"""Assemble the NeuronLab app: settings, services (built in the lifespan), routers, static files, errors.

    uvicorn --factory app.main:create_app
"""
from __future__ import annotations

import asyncio
import gc
import logging
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import errors, resources
from app.limits import BodySizeLimit
from app.routers import (
    descent,
    filters,
    gallery,
    health,
    inside,
    models,
    neuron,
    pages,
    photos,
    predict,
    projects,
    sessions,
    teacher,
    train,
)
from app.security import HostGuard, OriginGuard, SecurityHeaders
from app.services import Services
from app.settings import Settings, get_settings
from engine import imageio

log = logging.getLogger("neuronlab")

API_DESCRIPTION = """A visual deep-learning playground for classrooms.

Every error is JSON: `{"error": code, "message": what went wrong and how to fix it, "fields"?: {...}}`.

**Who may change what**: send `X-Owner-Token` (a random token of 128 bits or more that your browser
keeps) on every request; what you create is yours, and renaming, deleting or steering it needs the
same token (or the server's `X-Admin-Key`).

**WebSocket `/ws/draw?model=digits`** (not listed below, as OpenAPI has no WebSockets): send each
canvas frame as a binary PNG message; receive `{"type": "prediction", "frame", "skipped", "model",
"labels", "probabilities", "prediction", "input", "steps"}`, `{"type": "empty"}` for a blank
canvas or `{"type": "error", "error", "message"}`. Frames that arrive while one is being read are
skipped: the latest frame wins. A text message `{"model": "fashion"}` switches the model.
"""


async def sweep_hourly(services: Services, settings: Settings) -> None:
    """Expire what nobody uses (Services.sweep) at start and every hour, off the event loop."""
    while True:
        try:
            await asyncio.to_thread(services.sweep, settings)
        except Exception:  # a sweep that fails (a full disk, a database away) is tried again later
            log.exception("the hourly expiry sweep failed")
        await asyncio.sleep(3600)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        torch.set_num_threads(settings.torch_threads)
        imageio.limit_concurrency(settings.decode_slots)
        app.state.services = Services.start(settings)
        await app.state.services.open()
        gc.collect()
        gc.freeze()  # the models and modules loaded at start are never collected: shorter GC pauses
        sweeping = asyncio.create_task(sweep_hourly(app.state.services, settings))
        yield
        sweeping.cancel()
        await app.state.services.close()

    app = FastAPI(title="NeuronLab", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description=API_DESCRIPTION)
    app.state.settings = settings
    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes,
                       larger={"/api/projects/import": settings.max_project_file_bytes})
    app.add_middleware(SecurityHeaders)
    app.add_middleware(OriginGuard, allowed=settings.allowed_origins)
    app.add_middleware(HostGuard, allowed=settings.allowed_hosts, public_url=settings.public_url)  # outermost: first
    for router in (health.router, models.router, predict.router, train.router, projects.router, sessions.router,
                   teacher.router, gallery.router, descent.router, filters.router, inside.router, neuron.router, photos.router,
                   pages.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=resources.where("static")), name="static")
    for url, folder in resources.vendor_dirs().items():  # npm packages (package.json), served locally: works offline
        app.mount(url, StaticFiles(directory=folder), name=url)
    return app
