"""Headers on every response: a Content-Security-Policy that lets pages load and connect only to
this server (so nothing leaves the school network and no outside script can run), and a few
standard hardening headers."""
from __future__ import annotations

import json

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",   # element.style from the page modules and Swagger UI
    "img-src 'self' data: blob:",
    "media-src 'self' blob: mediastream:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(self), microphone=(), geolocation=()"),
]


class SecurityHeaders:
    """Plain ASGI middleware (WebSockets pass through untouched)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)


UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _origin_allowed(origin: str, host: str, allowed: set[str]) -> bool:
    """Same host (and port) as the request's Host header, or on the configured allow-list."""
    origin = origin.strip().lower().rstrip("/")
    if origin in allowed:
        return True
    _, sep, netloc = origin.partition("://")
    return bool(sep) and netloc == host.strip().lower()


class OriginGuard:
    """Refuse what a page from another site makes a visitor's browser do here: WebSocket
    upgrades and changing requests (POST, PUT, PATCH, DELETE) whose Origin header names another
    site get 403. Requests with no Origin (scripts, curl, same-origin GETs) pass: browsers always
    send it on cross-site requests of these kinds. `allowed` adds trusted origins
    (NEURONLAB_ALLOWED_ORIGINS)."""

    def __init__(self, app, allowed: list[str] = ()):
        self.app = app
        self.allowed = {a.strip().lower().rstrip("/") for a in allowed}

    def _foreign(self, scope) -> bool:
        headers = dict(scope.get("headers", []))
        origin = headers.get(b"origin")
        if origin is None:
            return False
        return not _origin_allowed(origin.decode("latin-1"), headers.get(b"host", b"").decode("latin-1"), self.allowed)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and self._foreign(scope):
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": "foreign origin"})  # HTTP 403
            return
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS and self._foreign(scope):
            body = json.dumps({"error": "foreign_origin", "message": "Requests that change things must come "
                               "from this server's own pages (the Origin header names another site). A school "
                               "IT person can allow another origin with NEURONLAB_ALLOWED_ORIGINS."}).encode()
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *HEADERS]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
