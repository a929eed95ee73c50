"""The teacher's live gallery of a class session: a WebSocket that gets a snapshot, then every
change as it happens (drawings come from students through app.routers.sessions; app.hub fans
them out). Students follow the session on a socket of their own, which tells them only what is
theirs to know: that the teacher shows the class a project or stops, that it has ended, and whether
the drawings were kept."""
from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from app.deps import ClassroomDep
from app.errors import refusal_message
from app.hub import SHUTDOWN
from app.sockets import CLOSED, until_closed
from engine.refusal import Refusal

router = APIRouter(tags=["class sessions"])

KEY_WAIT = 10.0  # seconds a gallery socket has to send its key


async def _first_key(ws: WebSocket) -> str | None:
    """The teacher's key from the socket's first message, {"key": "..."} (never in the address:
    addresses end up in access logs)."""
    try:
        message = await asyncio.wait_for(ws.receive_text(), KEY_WAIT)
        key = json.loads(message).get("key")
        return key if isinstance(key, str) else None
    except (asyncio.TimeoutError, ValueError, AttributeError, KeyError, RuntimeError, WebSocketDisconnect):
        return None


@router.websocket("/ws/sessions/{code}")
async def gallery_socket(ws: WebSocket, code: str, classroom: ClassroomDep):
    """The teacher's live gallery. Send {"key": teacher key} first; then receive a snapshot and
    every change (drawing, students, reveal, snapshot after a clear or fine-tune, ended)."""
    await ws.accept()
    try:
        key = await _first_key(ws)
        session = await run_in_threadpool(classroom.sessions.check_teacher, code, key)
        first = await run_in_threadpool(classroom.snapshot, session["code"])
    except Refusal as exc:
        await ws.send_json(refusal_message(exc))
        await ws.close(code=4403 if exc.status == 403 else 4409 if exc.status == 409 else 4404)
        return
    hub = classroom.galleries
    queue = hub.subscribe(first["code"])
    try:
        await ws.send_json(first)
        while True:
            event = await until_closed(ws, queue.get())
            if event is CLOSED:
                return  # the teacher's page went away
            if event is SHUTDOWN:
                await ws.close(code=1012)  # service restart: the page reconnects
                return
            await ws.send_json(event)
    except (WebSocketDisconnect, RuntimeError):  # the teacher's page went away mid-send
        pass
    finally:
        hub.unsubscribe(first["code"], queue)


def _ended(session: dict) -> dict:
    return {"type": "ended", "kept": session["kept"]}


@router.websocket("/ws/sessions/{code}/student")
async def student_socket(ws: WebSocket, code: str, classroom: ClassroomDep):
    """A student's page follows the session. Send {"key": student key} first; then receive
    {"type": "session", "ended": false, "kept": null}, {"type": "project", "shared": true|false}
    at once and whenever the teacher shows the class a project or stops (read it at GET
    /api/sessions/{code}/project) and, the moment the teacher ends it, {"type": "ended", "kept":
    true|false} (at once if it already has). Nobody's drawings are sent."""
    await ws.accept()
    store = classroom.sessions
    try:
        key = await _first_key(ws)
        # subscribe before reading the session: an end between the two is then still heard
        found = await run_in_threadpool(store.student, code, key, False)
        queue = classroom.galleries.subscribe(found["code"])
    except Refusal as exc:
        await ws.send_json(refusal_message(exc))
        await ws.close(code=4403 if exc.status == 403 else 4404)
        return
    try:
        session = await run_in_threadpool(store.get, found["code"])
        if session["ended"] is not None:
            await ws.send_json(_ended(session))
            await ws.close()
            return
        await ws.send_json({"type": "session", "ended": False, "kept": None})
        shown = await run_in_threadpool(store.shared, found["code"], False)
        await ws.send_json({"type": "project", "shared": shown is not None})  # what the class is shown now
        while True:
            event = await until_closed(ws, queue.get())
            if event is CLOSED:
                return
            if event is SHUTDOWN:
                await ws.close(code=1012)  # service restart: the page reconnects
                return
            if event.get("type") == "project":
                await ws.send_json({"type": "project", "shared": bool(event.get("shared"))})
            if event.get("type") == "ended" or (event.get("type") == "snapshot" and event.get("ended")):
                await ws.send_json({"type": "ended", "kept": event.get("kept")})
                await ws.close()
                return
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        classroom.galleries.unsubscribe(found["code"], queue)
