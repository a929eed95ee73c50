"""One JSON shape for every error: {"error": code, "message": what went wrong and how to fix it,
"fields": {field: problem} for invalid requests}. No error is ever an HTML page or a bare 500.

Whatever refuses a request raises an engine.refusal.Refusal (stores, jobs, images, the model
registry, architectures; ApiError here for the web layer's own refusals): one handler answers
every one over HTTP, and `refusal_message` is the same body on a WebSocket."""
from __future__ import annotations

import logging
import sqlite3

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.serialize import error_body
from engine.refusal import Refusal
from engine.stores.files import is_disk_full

log = logging.getLogger("neuronlab")


class ApiError(Refusal):
    """A refusal of the web layer's own, with any number of wrong fields and extra headers."""

    def __init__(self, status: int, code: str, message: str, fields: dict | None = None,
                 headers: dict | None = None):
        super().__init__(status, code, message)
        self.fields, self.headers = fields, headers

    def body(self) -> dict:
        return error_body(self.code, self.message, self.fields)


def refusal_headers(exc: Refusal) -> dict | None:
    """The response headers a refusal asks for: Retry-After when it says when to try again."""
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.retry_after:
        headers["Retry-After"] = str(exc.retry_after)
    return headers or None


def refusal_message(exc: Refusal) -> dict:
    """A refusal as a WebSocket message: {"type": "error", "error", "message", "fields"?}."""
    return {"type": "error", **exc.body()}


DISK_FULL_MESSAGE = ("The server's disk is full, so nothing new could be saved (what was saved before is "
                     "safe). Ask whoever runs the server to free space; deleting old models, projects or "
                     "photos here frees space too.")



def _field_name(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "form", "header")]
    return ".".join(parts) or "request"


def install(app: FastAPI) -> None:
    @app.exception_handler(Refusal)
    async def refused(_: Request, exc: Refusal):
        return JSONResponse(exc.body(), status_code=exc.status, headers=refusal_headers(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        fields = {_field_name(e["loc"]): e["msg"] for e in exc.errors()}
        message = "Invalid request: " + "; ".join(f"{k}: {v}" for k, v in fields.items())
        return JSONResponse(error_body("invalid_request", message, fields), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404 and message == "Not Found":
            message = "There is nothing at this address. The API is described at /docs."
        return JSONResponse(error_body(f"http_{exc.status_code}", message), status_code=exc.status_code)

    @app.exception_handler(OSError)
    @app.exception_handler(sqlite3.Error)
    async def storage_error(request: Request, exc: Exception):
        if is_disk_full(exc, request.app.state.settings.data_dir):
            log.error("disk full during %s %s: %s", request.method, request.url.path, exc)
            return JSONResponse(error_body("disk_full", DISK_FULL_MESSAGE), status_code=507)
        return await unexpected(request, exc)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception):
        log.exception("unexpected error")
        return JSONResponse(error_body("internal", "Something went wrong on the server; "
                                       "the error was logged. Try again."), status_code=500)
