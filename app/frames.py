"""Where live-drawing frames (and class-session drawings) are read: a worker process of its own,
so reading them does not share Python's GIL with the event loop that serves thirty sockets; or,
with NEURONLAB_INFERENCE_PROCESSES=0, one thread of the server.

Frames are read in batches: while the worker reads one batch, the frames that arrive from every
drawer wait together and go over as the next batch, one trip to the worker and one forward pass
per model for all of them. A lone drawer's frame goes at once (a batch of one).

The worker imports neither torch nor the web framework: it runs each network as numpy operations
(engine.lite), sent by the server with the first frame that needs it, so it holds ~50 MB where a
second torch would hold ~240 MB.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import TYPE_CHECKING

from app.reading import Limits, read_drawing, replies_for, unreadable
from engine.lite import Program

if TYPE_CHECKING:  # not imported in the worker: it stays small
    from app.settings import Settings
    from engine.stores.store import ModelRegistry

# In the worker: the networks it was sent (by model id) and the upload limits.
_programs: dict[str, Program] = {}
_limits: Limits | None = None
log = logging.getLogger("neuronlab")
MISSING = "reader_missing_model"  # a frame whose network this worker was never sent (see FrameReader)


def _start_worker(limits: Limits, server: int | None) -> None:
    """`server` is the server's pid, given by the server (None: this is the server's own thread):
    asking os.getppid() here would say init if the server was killed while this process started."""
    global _limits
    if server is not None:
        threading.Thread(target=_exit_with_parent, args=(server,), daemon=True).start()
    _limits = limits


def _exit_with_parent(parent: int) -> None:  # nobody would ever send this worker a frame again
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _learn(programs: dict[str, Program], forget: bool) -> None:
    if forget:
        _programs.clear()
    _programs.update(programs)


def read_frames(frames: list[tuple[bytes, str, bool]], programs: dict[str, Program], forget: bool = False) -> list[dict]:
    """The replies for a batch of live frames, (bytes, model id, with steps?) each, with the
    networks this worker has not been sent before."""
    _learn(programs, forget)
    known = [(i, (data, _programs[model_id], steps)) for i, (data, model_id, steps) in enumerate(frames)
             if model_id in _programs]
    replies = [{"type": "error", "error": MISSING}] * len(frames)
    for (i, _), reply in zip(known, replies_for([frame for _, frame in known], _limits)):
        replies[i] = reply
    return replies


def read_class_drawing(data: bytes, model_id: str, programs: dict[str, Program], forget: bool = False):
    """(the 28x28 the network read or None, probabilities or None) for a class-session drawing;
    raises engine.imageio.ImageError for a bad upload, KeyError if the network was never sent."""
    _learn(programs, forget)
    return read_drawing(data, _programs[model_id], _limits)


def _warm() -> bool:
    return True  # the first call starts the worker process and imports what it reads frames with


MAX_BATCH = 64  # frames sent to the worker at once (more wait for the next trip)
MAX_PROGRAMS = 16  # networks the worker holds


class FrameReader:
    """Submit frames (batched, see above) and drawings; restarts the worker process if it ever dies.

    The worker has no torch: the server compiles each network (engine.inference.program_of) and
    sends it with the first frame that needs it, remembering what the worker holds."""

    def __init__(self, settings: Settings, registry: ModelRegistry):
        self.settings, self.registry = settings, registry
        self.limits = Limits.of(settings)
        self.pool = self._new()
        self.waiting: list[tuple[bytes, str, bool, asyncio.Future]] = []
        self.sending = False
        self.frames = self.batches = 0  # how many frames were read in how many trips

    def _new(self) -> Executor:
        self.known: set[str] = set()  # model ids the worker has been sent
        self.forget = False
        if self.settings.inference_processes == 0:
            _start_worker(self.limits, None)
            return ThreadPoolExecutor(1, thread_name_prefix="frames")
        with _one_thread():
            pool = ProcessPoolExecutor(self.settings.inference_processes, mp_context=mp.get_context("spawn"),
                                       initializer=_start_worker, initargs=(self.limits, os.getpid()))
            pool.submit(_warm)  # start the worker now (it copies the environment as it starts), not on the first frame
        return pool

    def _programs(self, model_ids) -> dict[str, Program]:
        """The networks the worker lacks (at most MAX_PROGRAMS held: past that it starts afresh)."""
        from engine.inference import program_of  # torch: the server's side only
        wanted = set(model_ids) - self.known
        if len(self.known | wanted) > MAX_PROGRAMS:
            self.known, self.forget, wanted = set(), True, set(model_ids)
        programs = {}
        for model_id in wanted:
            try:
                programs[model_id] = program_of(self.registry.get(model_id))
            except (KeyError, ValueError, OSError) as exc:
                log.warning("the live reader cannot use %s: %s", model_id, exc)
        self.known |= set(programs)
        return programs

    async def _call(self, loop, fn, model_ids, *args):
        """Run fn(*args, programs, forget) in the worker, sending the networks it lacks."""
        programs, forget = self._programs(model_ids), self.forget
        self.forget = False
        try:
            return await loop.run_in_executor(self.pool, fn, *args, programs, forget)
        except BrokenProcessPool:
            self.pool = self._new()
            return await loop.run_in_executor(self.pool, fn, *args, self._programs(model_ids), False)

    async def drawing(self, loop, data: bytes, model_id: str):
        """Read a class-session drawing where the live frames are read (one queue for every drawing)."""
        try:
            return await self._call(loop, read_class_drawing, [model_id], data, model_id)
        except KeyError:  # a second worker process that was never sent this network
            self.known.discard(model_id)
            return await self._call(loop, read_class_drawing, [model_id], data, model_id)

    async def read(self, loop, data: bytes, model_id: str, steps: bool) -> dict:
        """The reply for one live frame (call on the event loop)."""
        reply = loop.create_future()
        self.waiting.append((data, model_id, steps, reply))
        if not self.sending:
            self.sending = True
            loop.create_task(self._send(loop))
        return await reply

    async def _send(self, loop) -> None:
        """Send the waiting frames to the worker, a batch at a time, until none wait."""
        try:
            while self.waiting:
                batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
                self.frames, self.batches = self.frames + len(batch), self.batches + 1
                frames = [(data, model, steps) for data, model, steps, _ in batch]
                try:
                    replies = await self._call(loop, read_frames, {m for _, m, _ in frames}, frames)
                    missing = {m for (_, m, _), r in zip(frames, replies) if r.get("error") == MISSING}
                    if missing:  # another worker process than the one sent the network: send it again
                        self.known -= missing
                        replies = await self._call(loop, read_frames, missing, frames)
                except Exception as exc:  # the worker died twice, or the server is stopping
                    replies = [exc] * len(batch)
                for (*_, reply), result in zip(batch, replies):
                    if reply.done():  # its socket went away meanwhile
                        continue
                    if isinstance(result, Exception):
                        reply.set_exception(result)
                    else:
                        reply.set_result(unreadable() if result.get("error") == MISSING else result)
        finally:
            self.sending = False

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


@contextmanager
def _one_thread():
    """The worker's numpy uses one thread: set while it is started (it reads its environment then)."""
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: "1" for name in names})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
