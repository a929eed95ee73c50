"""Headers on every response: a Content-Security-Policy that lets pages load and connect only to
this server (so nothing leaves the school network and no outside script can run), and a few
standard hardening headers. The Host guard and the Origin guard below keep other sites' pages
from using a visitor's browser against this server."""
from __future__ import annotations

import ipaddress
import json
import socket
from functools import lru_cache
from urllib.parse import urlsplit

from app.serialize import error_body

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


async def refuse(send, status: int, code: str, message: str) -> None:
    """A refusal from a guard below the app, as JSON as every other error."""
    body = json.dumps(error_body(code, message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *HEADERS]})
    await send({"type": "http.response.body", "body": body})


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
            await refuse(send, 403, "foreign_origin", "Requests that change things must come from this server's own "
                         "pages (the Origin header names another site). A school IT person can allow another "
                         "origin with NEURONLAB_ALLOWED_ORIGINS.")
            return
        await self.app(scope, receive, send)


def host_name(host: str) -> str:
    """The name or address in a Host header, lowercased, without port, brackets or final dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


@lru_cache(maxsize=1)
def own_names() -> frozenset[str]:
    """This machine's own names: its host name, short and fully qualified, and name.local (mDNS).
    Found once, when a name is first asked about (the fully qualified name may ask the DNS)."""
    names = {"localhost"}
    for name in (socket.gethostname(), socket.getfqdn()):
        name = name.lower().rstrip(".")
        if name:
            short = name.split(".")[0]
            names |= {name, short, f"{short}.local"}
    return frozenset(names)


class HostGuard:
    """Refuse requests whose Host header names a site other than this server (DNS rebinding: a
    page of evil.example whose name is made to point at this server's address would otherwise be
    "same-origin" with it, pass the Origin guard and read and change everything): HTTP gets a JSON
    400, a WebSocket is closed before it is accepted. Allowed: any IP address (a browser sends one
    only when it connected to that very address, as with Docker's port mapping or a NAT; rebinding
    needs a name), localhost and *.localhost, this machine's own names, NEURONLAB_PUBLIC_URL's host
    and `allowed` (NEURONLAB_ALLOWED_HOSTS; "*" allows any). Requests without a Host header
    (HTTP/1.0 scripts) pass: browsers always send one."""

    def __init__(self, app, allowed: list[str] = (), public_url: str | None = None):
        self.app = app
        self.any = "*" in allowed
        self.names = {host_name(a) for a in allowed if a.strip() and a.strip() != "*"}
        if public_url:
            self.names.add(host_name(urlsplit(public_url).netloc.rpartition("@")[2]))

    def allows(self, host: str) -> bool:
        name = host_name(host)
        if self.any or name in self.names or is_ip_address(name) or name == "localhost" or name.endswith(".localhost"):
            return True
        return bool(name) and name in own_names()

    def _foreign(self, scope) -> bool:
        host = dict(scope.get("headers", [])).get(b"host")
        return host is not None and not self.allows(host.decode("latin-1"))

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and self._foreign(scope):
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": "host not allowed"})  # HTTP 403
            return
        if scope["type"] == "http" and self._foreign(scope):
            await refuse(send, 400, "host_not_allowed", "This server does not answer to the name this request was "
                         "sent to (its Host header): open it by its own address (its IP address, localhost or "
                         "NEURONLAB_PUBLIC_URL). A school IT person can allow another name with "
                         "NEURONLAB_ALLOWED_HOSTS (comma-separated; \"*\" allows any).")
            return
        await self.app(scope, receive, send)
