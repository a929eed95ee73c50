"""The one way the engine refuses a request: a `Refusal` says what was wrong and how to fix it, in
terms the web layer turns into a response without knowing which part refused (app/errors.py for
HTTP, the same body on a socket). Every store, the job lifecycle, image decoding and the
architecture checks raise it (or a subclass that names the part)."""
from __future__ import annotations


class Refusal(Exception):
    """A request the engine will not carry out.

    status: the HTTP-like code (404 not found, 409 conflict, 413/415 image, 422 invalid, 429, 503);
    code: a short stable word pages and scripts can test ("project_not_found", "image_corrupt");
    message: what was wrong and how to fix it, said to a person;
    field: the request field that was wrong, when one was;
    retry_after: seconds after which the same request may succeed (429, 503)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 retry_after: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.field, self.retry_after = field, retry_after

    def body(self) -> dict:
        """The JSON every client gets: {"error": code, "message": ..., "fields"?: {field: message}}."""
        body = {"error": self.code, "message": self.message}
        if self.field:
            body["fields"] = {self.field: self.message}
        return body
