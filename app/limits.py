"""ASGI middleware that caps request bodies before anything parses them."""
from __future__ import annotations

import json

from app.serialize import error_body


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuse bodies over `max_bytes` (or, for a path in `larger`, its own cap) with 413: at once
    from Content-Length, or while streaming."""

    def __init__(self, app, max_bytes: int, larger: dict[str, int] | None = None):
        self.app, self.default, self.larger = app, max_bytes, larger or {}

    async def _refuse(self, send, status: int, message: str) -> None:
        body = json.dumps(error_body("body_too_large" if status == 413 else "bad_length", message)).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _too_large_message(self, cap: int) -> str:
        return (f"The request body is larger than the {cap // 1024:,} KiB limit. "
                "Send a smaller file (an image: shrink or compress it first).")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cap = self.larger.get(scope["path"], self.default)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return await self._refuse(send, 400, "The Content-Length header is not a number.")
            if int(length) > cap:
                return await self._refuse(send, 413, self._too_large_message(cap))
        seen, exceeded, started = 0, False, False

        async def limited_receive():
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message):
            # If the app turned our exception into its own error response, say 413 instead.
            nonlocal started
            if exceeded:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._refuse(send, 413, self._too_large_message(cap))
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send, 413, self._too_large_message(cap))
