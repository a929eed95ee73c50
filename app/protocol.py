"""uvicorn's HTTP protocol (h11) with a deadline for slow clients.

uvicorn times out idle keep-alive connections, but a client that sends a request's headers or
body a byte at a time ("slowloris") is never timed out, and enough of them use up the server's
connections and memory. Here every request must arrive whole within NEURONLAB_REQUEST_TIMEOUT
seconds (default 20) of its first byte, else the connection is closed. A request the server is
still answering (a long upload being read is not that) and WebSockets are not affected. Past the
connection limit (--limit-concurrency) the 503 is the JSON error every other error is.

    uvicorn --factory app.main:create_app --http app.protocol:GuardedH11Protocol
"""
from __future__ import annotations

import json

import h11
from uvicorn.protocols.http import h11_impl
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.serialize import error_body
from app.settings import get_settings

BUSY = json.dumps(error_body("server_busy", "The server has as many connections open as it takes "
                             "(NEURONLAB_MAX_CONNECTIONS); try again in a few seconds.")).encode()


async def service_unavailable(scope, receive, send) -> None:
    """What uvicorn answers past --limit-concurrency, as JSON like every other error (its own is
    plain text)."""
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BUSY)).encode()),
                            (b"retry-after", b"5"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": BUSY, "more_body": False})


# uvicorn's h11 protocol looks this name up in its module each time it refuses a request
h11_impl.service_unavailable = service_unavailable


class GuardedH11Protocol(H11Protocol):
    request_timeout: float | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if GuardedH11Protocol.request_timeout is None:
            GuardedH11Protocol.request_timeout = get_settings().request_timeout
        self._deadline = None
        self._arm()

    def _arm(self) -> None:
        """Start the clock for the next request (the first bytes of a connection, or of the next
        request on a kept-alive connection)."""
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._too_slow)

    def _disarm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()
            self._deadline = None

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state in (h11.IDLE, h11.DONE):
            self._arm()  # a new request begins on a kept-alive connection
        super().data_received(data)
        if self.transport.get_protocol() is not self or self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            self._disarm()  # the request has arrived whole, or the connection became a WebSocket

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.get_protocol() is not self:  # upgraded: the WebSocket owns the connection now
            return
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            if self.cycle is None or self.cycle.response_complete:
                self.logger.info("closed a connection whose request did not arrive within %ss", self.request_timeout)
                self.transport.close()
            else:  # the app already answers this request (e.g. reading a slow upload): its body must come
                self.cycle.disconnected = True
                self.transport.close()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)
