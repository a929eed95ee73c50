"""The gallery hub: teachers' gallery sockets subscribe to a session code; any code, on the event
loop or in a threadpool endpoint, publishes to it. Publishing hands the event to the loop with
call_soon_threadsafe: asyncio queues may only be touched from the loop's own thread.

GalleryHub delivers within this process (one server). RedisGalleryHub (district mode) sends every
event through Redis pub/sub, so a teacher's socket on one replica sees what students post to
another; whatever a socket may have missed (a new socket, a lost Redis link) it gets again as
the snapshot, which comes from the shared database, not from Redis."""
from __future__ import annotations

import asyncio
import json
import logging

log = logging.getLogger("neuronlab")

SHUTDOWN = {"type": "shutdown"}  # what subscribers get when the server stops (or events may have been lost)
CHANNEL = "neuronlab:gallery:"   # + session code: the Redis channel of a session's gallery events
RETRY = 1.0                      # seconds between attempts to reach Redis again


class GalleryHub:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.subscribers: dict[str, set[asyncio.Queue]] = {}

    def subscribe(self, code: str) -> asyncio.Queue:
        """A queue of the session's events (call on the loop)."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=1000)
        self.subscribers.setdefault(code, set()).add(queue)
        return queue

    def unsubscribe(self, code: str, queue: asyncio.Queue) -> None:
        found = self.subscribers.get(code)
        if found is not None:
            found.discard(queue)
            if not found:
                del self.subscribers[code]

    def publish(self, code: str, event: dict) -> None:
        """Send an event to every gallery of the session; safe from any thread."""
        self.loop.call_soon_threadsafe(self._deliver, code, event)

    def _deliver(self, code: str, event: dict) -> None:
        for queue in list(self.subscribers.get(code, ())):
            if queue.full():  # a gallery that stopped reading: it gets a fresh snapshot on reconnect
                continue
            queue.put_nowait(event)

    def _reconnect_all(self) -> None:
        """Tell every subscriber to reconnect (and so get a snapshot); call on the loop."""
        for code in list(self.subscribers):
            self._deliver(code, SHUTDOWN)

    async def start(self) -> None:
        """Nothing to start in one process."""

    async def close(self) -> None:
        """Tell every subscriber the server is stopping (call on the loop)."""
        self._reconnect_all()


class RedisGalleryHub(GalleryHub):
    """District mode: events go out over Redis pub/sub (in the order they were published) and come
    back to every replica's local subscribers, this one's included."""

    def __init__(self, loop: asyncio.AbstractEventLoop, url: str):
        super().__init__(loop)
        import redis.asyncio  # only district mode needs the redis package

        self.redis = redis.asyncio.Redis.from_url(url, socket_connect_timeout=3, health_check_interval=10)
        self.errors = (redis.RedisError, OSError)
        self._outbox: asyncio.Queue = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self._listening = asyncio.Event()

    def publish(self, code: str, event: dict) -> None:
        self.loop.call_soon_threadsafe(self._outbox.put_nowait, (code, json.dumps(event)))

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._send()), asyncio.create_task(self._listen())]
        try:  # the first gallery socket should not miss events published right after the start
            await asyncio.wait_for(self._listening.wait(), 5)
        except asyncio.TimeoutError:
            log.warning("Redis is not answering yet: live galleries wait for it")

    async def _send(self) -> None:
        while True:
            code, message = await self._outbox.get()
            try:
                await self.redis.publish(CHANNEL + code, message)
            except self.errors as exc:  # the listener loses its link too and sends galleries to reconnect
                log.warning("a gallery event for %s was not sent to Redis: %s", code, exc)

    async def _listen(self) -> None:
        lost = False
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.psubscribe(CHANNEL + "*")
                    self._listening.set()
                    if lost:  # galleries that connected while Redis was away missed events too
                        self._reconnect_all()
                        lost = False
                    async for message in pubsub.listen():
                        if message["type"] == "pmessage":
                            self._receive(message["channel"], message["data"])
            except self.errors as exc:
                log.warning("lost Redis (%s): galleries reconnect and get a snapshot", exc)
            lost = True
            self._listening.clear()
            self._reconnect_all()  # what is published while the link is down reaches no queue
            await asyncio.sleep(RETRY)

    def _receive(self, channel: bytes, data: bytes) -> None:
        try:
            self._deliver(channel.decode()[len(CHANNEL):], json.loads(data))
        except (UnicodeDecodeError, ValueError):
            log.warning("ignored a message on %r that is not a gallery event", channel[:80])

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.redis.aclose()
        self._reconnect_all()
