"""Who may change what, with no accounts.

Every browser keeps an owner token (128 random bits or more, made by the page and kept in
localStorage) and sends it as `X-Owner-Token` on every request. Whatever a request creates (a
trained model, a project, a training job, a class session) records the SHA-256 of that token as
its owner; renaming, deleting, stopping or steering it later needs the same token. A client that
sends no token when it creates something gets one made for it, in the reply's `owner_token`.

The server's admin key (`X-Admin-Key`; NEURONLAB_ADMIN_KEY, or made at start and printed in the
log) may do everything. Shipped models are read-only for everybody.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from app.errors import ApiError

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22,128}$")  # 22 base64url or 32 hex characters: 128 bits


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_hex(16)


@dataclass
class Caller:
    """The client behind one request: its owner hash (None without a token), whether it holds the
    admin key, and its network address (limits per address cannot be dodged by new tokens)."""
    owner: str | None
    admin: bool
    address: str
    token: str | None = None   # made for this request when it brought none (see `ensure`)

    def owns(self, owner: str | None) -> bool:
        return self.admin or (owner is not None and self.owner is not None and hmac.compare_digest(owner, self.owner))

    def require(self, owner: str | None, what: str) -> None:
        """403 unless this caller owns the thing (or is the admin)."""
        if not self.owns(owner):
            raise ApiError(403, "not_owner", f"Only whoever created this {what} can change or delete it "
                           "(from the same browser), or the server's admin. Your owner token is missing or "
                           "is not this one's owner.")

    def ensure(self) -> dict:
        """Make sure the caller has an owner; returns {"owner_token": ...} when one was made now."""
        if self.owner is not None:
            return {}
        self.token = new_token()
        self.owner = token_hash(self.token)
        return {"owner_token": self.token}


def caller(
    request: Request,
    x_owner_token: Annotated[str | None, Header(description="this browser's owner token (>= 128 random bits)")] = None,
    x_admin_key: Annotated[str | None, Header(description="the server's admin key")] = None,
) -> Caller:
    if x_owner_token is not None and not TOKEN_PATTERN.match(x_owner_token):
        raise ApiError(422, "invalid_request", "X-Owner-Token must be 22 to 128 letters, digits, '-' or '_' "
                       "(at least 128 random bits, e.g. 32 hex digits).", {"X-Owner-Token": "malformed"})
    return Caller(owner=token_hash(x_owner_token) if x_owner_token else None,
                  admin=is_admin(request.app, x_admin_key),
                  address=request.client.host if request.client else "unknown")


def is_admin(app, key: str | None) -> bool:
    return bool(key) and hmac.compare_digest(token_hash(key), app.state.services.admin_key_hash)


CallerDep = Annotated[Caller, Depends(caller)]


def admin_key(settings) -> str:
    """The configured admin key, or a new random one for this run."""
    return settings.admin_key or secrets.token_urlsafe(18)


def admin_key_notice(key: str) -> str:
    """The admin key made for this run, and how to keep one (printed once, at start)."""
    return (f"NeuronLab admin key for this run (X-Admin-Key; may change and delete everything): {key}\n"
            "  set NEURONLAB_ADMIN_KEY to keep one across restarts")
