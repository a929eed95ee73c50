"""Assemble the NeuronLab app: settings, models in app state, routers, static files, errors.

    uvicorn --factory app.main:create_app
"""
from __future__ import annotations

import asyncio
import gc
import logging
import sys
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import errors, owners
from app.frames import FrameReader
from app.limits import BodySizeLimit
from app.routers import descent, filters, health, models, neuron, pages, predict, projects, sessions, train
from app.security import OriginGuard, SecurityHeaders
from app.settings import ROOT, Settings, get_settings
from engine import imageio
from engine.store import ModelRegistry

log = logging.getLogger("neuronlab")

VENDOR = {"/vendor/swagger-ui": "swagger-ui-dist", "/vendor/chartjs": "chart.js/dist"}

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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        torch.set_num_threads(settings.torch_threads)
        imageio.limit_concurrency(settings.decode_slots)
        key = owners.admin_key(settings)
        app.state.admin_key_hash = owners.token_hash(key)
        if not settings.admin_key:
            print(f"NeuronLab admin key for this run (X-Admin-Key; may change and delete everything): {key}\n"
                  "  set NEURONLAB_ADMIN_KEY to keep one across restarts", file=sys.stderr, flush=True)
        app.state.registry = ModelRegistry([settings.models_dir, settings.data_dir / "models"], settings.model_cache)
        if settings.default_model not in app.state.registry:
            log.warning("default model %r not found in %s", settings.default_model, settings.models_dir)
        app.state.frames = FrameReader(settings, app.state.registry)
        app.state.jobs = train.install(app, settings)
        app.state.projects = projects.install(app, settings)
        app.state.sessions = sessions.install(app, settings)
        gc.collect()
        gc.freeze()  # the models and modules loaded at start are never collected: shorter GC pauses
        yield
        app.state.galleries.close()
        await asyncio.to_thread(app.state.jobs.close)  # each running job saves its model, then stops
        app.state.frames.close()

    app = FastAPI(title="NeuronLab", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description=API_DESCRIPTION)
    app.state.settings = settings
    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(OriginGuard, allowed=settings.allowed_origins)
    for router in (health.router, models.router, predict.router, train.router, projects.router,
                   sessions.router, descent.router, filters.router, neuron.router, pages.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")
    for url, folder in VENDOR.items():  # npm packages (package.json), served locally: works offline
        if (ROOT / "node_modules" / folder).is_dir():
            app.mount(url, StaticFiles(directory=ROOT / "node_modules" / folder), name=url)
    return app
