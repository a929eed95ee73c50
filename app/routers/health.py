"""Liveness, and where this server can be reached."""
from fastapi import APIRouter, Request

from app.deps import SettingsDep
from app.netinfo import is_local, lan_addresses

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    """Liveness check for load balancers and Docker."""
    return {"status": "ok"}


@router.get("/api/server/addresses")
def addresses(request: Request, settings: SettingsDep) -> dict:
    """The addresses students can type to reach this server: NEURONLAB_PUBLIC_URL if set, else this
    machine's network addresses with the port this page was opened on. `local` says that the
    caller opened the page on an address only this machine can reach (localhost, 127.0.0.1)."""
    port = request.url.port
    found = [f"{request.url.scheme}://{ip}" + (f":{port}" if port else "") for ip in lan_addresses()]
    urls = [settings.public_url.rstrip("/")] if settings.public_url else found
    return {"urls": urls, "local": is_local(request.url.hostname or ""), "public_url": settings.public_url}
