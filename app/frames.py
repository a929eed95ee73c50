"""Where live-drawing frames (and class-session drawings) are read: a worker process of its own,
so reading them does not share Python's GIL with the event loop that serves thirty sockets; or,
with NEURONLAB_INFERENCE_PROCESSES=0, one thread of the server using the server's own registry.

The worker keeps a registry of the same folders; a model trained after it started is loaded from
the user folder the first time a frame asks for it.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import torch

from app.reading import classify_bytes, reply_for
from app.settings import Settings
from engine.stores.store import ModelRegistry, StoredModel

_registry: ModelRegistry | None = None
_settings: Settings | None = None


def _use(registry: ModelRegistry, settings: Settings) -> None:
    global _registry, _settings
    _registry, _settings = registry, settings


def _start_worker(folders: list[str], settings: Settings, server: int) -> None:
    """`server` is the server's pid, given by the server: asking os.getppid() here would say init
    if the server was killed while this process was still starting."""
    threading.Thread(target=_exit_with_parent, args=(server,), daemon=True).start()
    torch.set_num_threads(1)
    _use(ModelRegistry([Path(f) for f in folders]), settings)


def _exit_with_parent(parent: int) -> None:  # nobody would ever send this worker a frame again
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _model(model_id: str) -> StoredModel:
    try:
        return _registry.get(model_id)
    except KeyError:  # trained after this worker started
        _registry.add(model_id)
        return _registry.get(model_id)


def read_frame(data: bytes, model_id: str, steps: bool) -> dict:
    """The reply for one live frame."""
    return reply_for(data, _model(model_id), _settings, steps)


def read_drawing(data: bytes, model_id: str):
    """(the 28x28 the network read or None, probabilities or None) for a class-session drawing;
    raises engine.imageio.ImageError for a bad upload."""
    result = classify_bytes(data, _model(model_id), _settings)
    return result.prepared.input, result.probabilities


def _warm() -> bool:
    return True  # the first call starts the worker process and imports what it reads frames with


class FrameReader:
    """Submit frames; restarts the worker process if it ever dies."""

    def __init__(self, settings: Settings, registry: ModelRegistry):
        self.settings, self.registry = settings, registry
        self.pool = self._new()

    def _new(self) -> Executor:
        if self.settings.inference_processes == 0:
            _use(self.registry, self.settings)
            return ThreadPoolExecutor(1, thread_name_prefix="frames")
        pool = ProcessPoolExecutor(self.settings.inference_processes, mp_context=mp.get_context("spawn"),
                                   initializer=_start_worker,
                                   initargs=([str(f) for f in self.registry.folders], self.settings, os.getpid()))
        pool.submit(_warm)  # start the worker now, not on the first frame
        return pool

    async def run(self, loop, fn, *args):
        try:
            return await loop.run_in_executor(self.pool, fn, *args)
        except BrokenProcessPool:
            self.pool = self._new()
            return await loop.run_in_executor(self.pool, fn, *args)

    async def read(self, loop, data: bytes, model_id: str, steps: bool) -> dict:
        return await self.run(loop, read_frame, data, model_id, steps)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
