"""Where live-drawing frames (and class-session drawings) are read: a worker process of its own,
so reading them does not share Python's GIL with the event loop that serves thirty sockets; or,
with NEURONLAB_INFERENCE_PROCESSES=0, one thread of the server.

Frames are read in batches: while the worker reads one batch, the frames that arrive from every
drawer wait together and go over as the next batch, one trip to the worker and one forward pass
per model for all of them. A lone drawer's frame goes at once (a batch of one). With more than one
worker (NEURONLAB_INFERENCE_PROCESSES), each reads a batch of its own at the same time.

What the server and a worker say to each other is the reader's protocol (app/reading.py): named
messages (UseModels, ReadFrames, ReadDrawing), each answered by the worker's `Reader`.

The worker imports neither torch nor the web framework: it runs each network as numpy operations
(engine.lite), sent by the server (UseModels) before the first frame that needs it, so it holds
~50 MB where a second torch would hold ~240 MB.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import pickle
import signal
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from app.reading import DrawingRead, Frame, FramesRead, Limits, Message, ReadDrawing, Reader, ReadFrames, UseModels
from engine.lite import Program

if TYPE_CHECKING:  # not imported in the worker: it stays small
    from app.settings import Settings
    from engine.stores.store import ModelRegistry

log = logging.getLogger("neuronlab")


def _exit_with_parent(parent: int) -> None:  # nobody would ever send this worker a frame again
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


MAX_BATCH = 64  # frames sent to the worker at once (more wait for the next trip)
MAX_PROGRAMS = 16  # networks a worker holds


class WorkerGone(RuntimeError):
    """The worker process died (or was stopped) before it answered."""


def _serve(requests: Connection, replies: Connection, limits: Limits, server: int) -> None:
    """The worker process: answer (call id, message) requests in order, until the server closes
    its end of the pipe (or dies: see _exit_with_parent; `server` is its pid, given by the server:
    asking os.getppid() here would say init if the server was killed while this process started).
    A reply is the call id (4 bytes), then (ok, answer or exception) pickled."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C stops the server, which then closes the pipe
    threading.Thread(target=_exit_with_parent, args=(server,), daemon=True).start()
    reader = Reader(limits)
    while True:
        try:
            call, message = requests.recv()
        except (EOFError, OSError):
            return
        try:
            body = pickle.dumps((True, reader.answer(message)), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            body = _pickled_error(exc)
        replies.send_bytes(struct.pack("!i", call) + body)


def _pickled_error(exc: Exception) -> bytes:
    """The exception as the server will unpickle it; one that would not come back whole goes as a
    RuntimeError saying what it was."""
    try:
        body = pickle.dumps((False, exc), protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(body)
        return body
    except Exception:
        return pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


class _Worker:
    """One worker process and the two pipes to it. The event loop writes requests and reads the
    replies itself (asyncio pipe transports): no thread stands between a frame and the worker,
    where a ProcessPoolExecutor hands each call through two threads of the server and a third
    (its queue feeder) each way."""

    def __init__(self, limits: Limits):
        ctx = mp.get_context("spawn")
        to_worker, self._requests = ctx.Pipe(duplex=False)
        self._replies, from_worker = ctx.Pipe(duplex=False)
        with _one_thread():
            self.process = ctx.Process(target=_serve, args=(to_worker, from_worker, limits, os.getpid()),
                                       name="neuronlab-frames", daemon=True)
            self.process.start()  # now (it copies the environment as it starts), not on the first frame
        to_worker.close()
        from_worker.close()
        self.known: set[str] = set()  # model ids this worker has been sent
        self.forget = False
        self.pending: dict[int, asyncio.Future] = {}
        self.calls = 0
        self.alive = True
        self._writer: asyncio.WriteTransport | None = None
        self._connected: asyncio.Task | None = None

    async def _connect(self) -> None:
        """On the event loop's first call: from then on the loop reads and writes the pipes."""
        loop = asyncio.get_running_loop()
        self._writer, _ = await loop.connect_write_pipe(asyncio.Protocol, _file(self._requests, "wb"))
        stream = asyncio.StreamReader(limit=2 ** 31)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), _file(self._replies, "rb"))
        self._listener = loop.create_task(self._listen(stream))

    async def ask(self, message: Message):
        """The worker's answer to one message (its exception raised here, WorkerGone if it died)."""
        if self._connected is None:
            self._connected = asyncio.get_running_loop().create_task(self._connect())
        await self._connected
        if not self.alive:
            raise WorkerGone("the frame reader stopped")
        self.calls += 1
        reply = self.pending[self.calls] = asyncio.get_running_loop().create_future()
        body = pickle.dumps((self.calls, message), protocol=pickle.HIGHEST_PROTOCOL)
        self._writer.write(struct.pack("!i", len(body)) + body)  # multiprocessing.Connection's framing
        return await reply

    async def _listen(self, stream: asyncio.StreamReader) -> None:
        try:
            while True:
                size, = struct.unpack("!i", await stream.readexactly(4))
                message = await stream.readexactly(size)
                reply = self.pending.pop(struct.unpack("!i", message[:4])[0], None)
                try:
                    ok, result = pickle.loads(message[4:])
                except Exception as exc:  # that call fails; the channel and the other calls go on
                    ok, result = False, RuntimeError(f"the frame reader's reply could not be read: {exc}")
                if reply is not None and not reply.done():
                    reply.set_result(result) if ok else reply.set_exception(result)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass  # the worker died (or was stopped)
        finally:
            self._gone()

    def _gone(self) -> None:
        self.alive = False
        for reply in self.pending.values():
            if not reply.done():
                reply.set_exception(WorkerGone("the frame reader stopped"))
        self.pending.clear()
        self.process.join(timeout=0)  # reap it if it is dead

    def close(self) -> None:
        self.alive = False
        if self._writer is not None:
            self._writer.close()
            self._listener.cancel()
        elif self._connected is None:
            self._requests.close()
            self._replies.close()
        self.process.terminate()  # it holds nothing to save (and would stop at the end of its pipe)
        self.process.join(timeout=2)


class _Thread:
    """NEURONLAB_INFERENCE_PROCESSES=0: frames are read by one thread of the server."""

    def __init__(self, limits: Limits):
        self.reader = Reader(limits)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="frames")
        self.known: set[str] = set()
        self.forget = False
        self.pending = ()
        self.alive = True

    async def ask(self, message: Message):
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.reader.answer, message)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _file(conn: Connection, mode: str):
    """The pipe end a Connection holds, as a file object of its own (for asyncio's pipe transports)."""
    fd = os.dup(conn.fileno())
    conn.close()
    return open(fd, mode, buffering=0)


class FrameReader:
    """Submit frames (batched, see above) and drawings; starts a worker again if one ever dies.

    The worker has no torch: the server compiles each network (engine.inference.program_of) and
    sends it with the first frame that needs it, remembering what each worker holds."""

    def __init__(self, settings: Settings, registry: ModelRegistry):
        self.settings, self.registry = settings, registry
        self.limits = Limits.of(settings)
        self.workers = [self._new() for _ in range(max(1, settings.inference_processes))]
        self.waiting: list[tuple[Frame, asyncio.Future]] = []
        self.sending = 0  # batches being read (at most one a worker)
        self.frames = self.batches = 0  # how many frames were read in how many trips

    def _new(self) -> _Worker | _Thread:
        return _Thread(self.limits) if self.settings.inference_processes == 0 else _Worker(self.limits)

    def _programs(self, worker, model_ids) -> dict[str, Program]:
        """The networks the worker lacks (at most MAX_PROGRAMS held: past that it starts afresh)."""
        from engine.inference import program_of  # torch: the server's side only
        wanted = set(model_ids) - worker.known
        if len(worker.known | wanted) > MAX_PROGRAMS:
            worker.known, worker.forget, wanted = set(), True, set(model_ids)
        programs = {}
        for model_id in wanted:
            try:
                programs[model_id] = program_of(self.registry.get(model_id))
            except (KeyError, ValueError, OSError) as exc:
                log.warning("the live reader cannot use %s: %s", model_id, exc)
        worker.known |= set(programs)
        return programs

    async def _call(self, message: Message, model_ids):
        """The answer to a message from the least busy worker, sent first (UseModels) the networks
        of `model_ids` it lacks; asked once more of a new worker if that one died."""
        for attempt in (1, 2):
            i = min(range(len(self.workers)), key=lambda i: (not self.workers[i].alive, len(self.workers[i].pending)))
            if not self.workers[i].alive:
                self.workers[i].close()
                self.workers[i] = self._new()
            worker = self.workers[i]
            programs, forget = self._programs(worker, model_ids), worker.forget
            worker.forget = False
            try:
                if programs or forget:  # the pipe keeps the order: the worker holds them before it reads
                    await worker.ask(UseModels(programs, forget))
                return await worker.ask(message)
            except WorkerGone:
                if attempt == 2:
                    raise

    async def drawing(self, data: bytes, model_id: str):
        """Read a class-session drawing where the live frames are read (one queue for every drawing):
        (the 28x28 the network read or None, probabilities or None); raises engine.imageio.ImageError
        for a bad upload."""
        read: DrawingRead = await self._call(ReadDrawing(data, model_id), [model_id])
        return read.seen, read.probabilities

    async def read(self, data: bytes, model_id: str, steps: bool) -> dict:
        """The reply for one live frame (call on the event loop)."""
        reply = asyncio.get_running_loop().create_future()
        self.waiting.append((Frame(data, model_id, steps), reply))
        self._dispatch()
        return await reply

    def _dispatch(self) -> None:
        """While frames wait and a worker has no batch, send it the waiting frames as one batch."""
        while self.waiting and self.sending < len(self.workers):
            batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
            self.sending += 1
            self.frames, self.batches = self.frames + len(batch), self.batches + 1
            asyncio.get_running_loop().create_task(self._send(batch))

    async def _send(self, batch: list) -> None:
        frames = [frame for frame, _ in batch]
        try:
            read: FramesRead = await self._call(ReadFrames(frames), {frame.model_id for frame in frames})
            replies = read.replies
        except Exception as exc:  # the worker died twice, or the server is stopping
            replies = [exc] * len(batch)
        finally:
            self.sending -= 1
        for (_, reply), result in zip(batch, replies):
            if reply.done():  # its socket went away meanwhile
                continue
            reply.set_exception(result) if isinstance(result, Exception) else reply.set_result(result)
        self._dispatch()

    def close(self) -> None:
        for worker in self.workers:
            worker.close()


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
