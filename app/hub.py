"""The gallery hub: teachers' gallery sockets subscribe to a session code; any code, on the event
loop or in a threadpool endpoint, publishes to it. Publishing hands the event to the loop with
call_soon_threadsafe: asyncio queues may only be touched from the loop's own thread."""
from __future__ import annotations

import asyncio

SHUTDOWN = {"type": "shutdown"}  # what subscribers get when the server stops


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

    def close(self) -> None:
        """Tell every subscriber the server is stopping (call on the loop)."""
        for code in list(self.subscribers):
            self._deliver(code, SHUTDOWN)
