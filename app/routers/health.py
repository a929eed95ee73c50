"""Liveness, where this server can be reached, and QR codes of its links (lesson links, join links)."""
from typing import Annotated

import segno
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.deps import SettingsDep
from app.errors import ApiError
from app.netinfo import answers, is_local, lan_addresses
from app.owners import CallerDep
from app.serialize import qr_svg
from engine.stores import expiry

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    """Liveness check for load balancers and Docker."""
    return {"status": "ok"}


@router.get("/api/server/addresses")
def addresses(request: Request, settings: SettingsDep) -> dict:
    """The addresses students can type to reach this server: NEURONLAB_PUBLIC_URL if set, else this
    machine's network addresses with the port this page was opened on. `local` says that the
    caller opened the page on an address only this machine can reach (localhost, 127.0.0.1).
    Only addresses this server answers on are given: one started on 127.0.0.1 alone lists none
    (`listening_elsewhere` false), which the pages turn into a warning."""
    port = request.url.port
    listening = [ip for ip in lan_addresses() if answers(ip, port or (443 if request.url.scheme == "https" else 80))]
    found = [f"{request.url.scheme}://{ip}" + (f":{port}" if port else "") for ip in listening]
    urls = [settings.public_url.rstrip("/")] if settings.public_url else found
    return {"urls": urls, "local": is_local(request.url.hostname or ""), "public_url": settings.public_url,
            "listening_elsewhere": bool(listening)}


@router.get("/api/qr.svg", response_class=Response, tags=["pages"])
def qr(text: Annotated[str, Query(min_length=1, max_length=1000, description="what the code holds, e.g. a lesson link")]) -> Response:
    """A QR code (SVG) of any short text, e.g. a lesson link, drawn on this server."""
    try:
        return Response(qr_svg(text), media_type="image/svg+xml")
    except segno.DataOverflowError as exc:
        raise ApiError(422, "invalid_request", f"The text is too long for one QR code ({len(text.encode())} bytes "
                       "as UTF-8; about 2,300 fit). Use a shorter text or link.", {"text": "too long for a QR code"}) from exc


@router.get("/api/admin/storage")
def storage(settings: SettingsDep, caller: CallerDep) -> dict:
    """The admin's view of what this server keeps: the data folder's size, in all and per part
    (models, projects, sessions, jobs...), and after how many days what nobody uses expires."""
    if not caller.admin:
        raise ApiError(403, "not_admin", "Only the server's admin (X-Admin-Key, printed when the server starts "
                       "or set as NEURONLAB_ADMIN_KEY) can see the data folder.")
    return {"data_dir": str(settings.data_dir), **expiry.folder_size(settings.data_dir),
            "expire_days": settings.expire_days}
