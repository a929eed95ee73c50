"""Class sessions: the teacher starts one (and gets a key), students join with its code and draw;
the gallery on the teacher's screen follows every drawing live over /ws/sessions/{code}.

Teacher-only requests carry `X-Teacher-Key`, students' requests `X-Student-Key` (both handed out
once, by POST /api/sessions and POST /api/sessions/{code}/students).
"""
from __future__ import annotations

import asyncio
import io
import json
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

import numpy as np
import segno
from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from app.deps import IMAGE_STATUS, FormRowId, RegistryDep, RowId, SettingsDep, blank_image, find_card
from app.errors import ApiError
from app.frames import read_drawing
from app.hub import SHUTDOWN, GalleryHub
from app.owners import CallerDep, is_admin
from app.serialize import image as image_json
from app.sockets import CLOSED, until_closed
from engine import datasets, imageio, store
from engine.finetune import finetune, guesses
from engine.projects import StoreError
from engine.sessions import SessionStore

router = APIRouter(tags=["class sessions"])
TeacherKey = Annotated[str | None, Header(description="the key POST /api/sessions returned")]
AdminKey = Annotated[str | None, Header(description="the server's admin key (may act as any teacher)")]
StudentKey = Annotated[str | None, Header(description="the key joining returned")]


class NewSession(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, description="a model that reads 28x28 drawings (default: digits)")


class Join(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="the name shown in the gallery (1 to 40 characters)")


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: int = Field(ge=0, le=9, description="what the drawing really shows (index into the labels)")


class Reveal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reveal: bool = Field(description="show the network's guesses in the gallery")


class Toggle(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on: bool = True


class End(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keep: bool = Field(False, description="keep the drawings (else they are deleted)")


def sessions(request: Request) -> SessionStore:
    return request.app.state.sessions


def drawing_json(d: dict, labels: list[str]) -> dict:
    return {"id": d["id"], "student": d["student"], "image": image_json(pixels([d])[0] / 255, compact=True),
            "guess": labels[d["guess"]], "confidence": round(d["confidence"], 4),
            "label": None if d["label"] is None else labels[d["label"]],
            "misread": None if d["label"] is None else d["label"] != d["guess"], "in_dataset": d["in_dataset"]}


def session_model(app, session: dict):
    """The card of the model the session reads drawings with; 409 if it is no longer there."""
    try:
        return app.state.registry.card(session["model_id"])
    except KeyError as exc:
        raise ApiError(409, "model_missing", f"The model this session reads drawings with ({session['model_id']}) "
                       "is no longer on the server. The teacher can start a new session.") from exc


def with_labels(app, session: dict) -> dict:
    """The session and the labels of the model it reads drawings with."""
    return {**session, "labels": session_model(app, session).labels}


def snapshot(request_or_ws, code: str) -> dict:
    app = request_or_ws.app
    session = with_labels(app, app.state.sessions.get(code))
    return {"type": "snapshot", **session,
            "drawings": [drawing_json(d, session["labels"]) for d in app.state.sessions.drawings(code)]}


def broadcast(app, code: str, event: dict) -> None:
    app.state.galleries.publish(code, event)


@dataclass
class TeacherAuth:
    key: str | None
    admin: bool

    def check(self, store_: SessionStore, code: str) -> dict:
        """The session, once the caller is its teacher (or holds the admin key)."""
        return store_.check_teacher(code, self.key, admin=self.admin)


def _teacher(request: Request, x_teacher_key: TeacherKey = None, x_admin_key: AdminKey = None) -> TeacherAuth:
    return TeacherAuth(x_teacher_key, is_admin(request.app, x_admin_key))


Teacher = Annotated[TeacherAuth, Depends(_teacher)]


@router.post("/api/sessions", status_code=201)
def start(body: NewSession, request: Request, registry: RegistryDep, settings: SettingsDep, caller: CallerDep) -> dict:
    """Start a class session: a short join code and the teacher's key (keep it: it is shown once)."""
    card = find_card(registry, body.model or settings.default_model)
    if list(card.input_shape) != [1, 28, 28]:
        raise ApiError(422, "invalid_request", "A class session needs a model that reads 28x28 drawings "
                       "(digits or Fashion-MNIST).", {"model": "reads photos, not drawings"})
    made = caller.ensure()
    session, key = sessions(request).start(card.id, caller.owner)
    return {**session, "teacher_key": key, "join_path": f"/join?code={session['code']}", **made}


@router.get("/api/sessions/{code}")
def info(code: str, request: Request) -> dict:
    """What a student needs to join: the code, the model's labels, whether it has ended."""
    return with_labels(request.app, sessions(request).get(code))


@lru_cache(maxsize=64)
def _qr_svg(url: str) -> bytes:
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=8, border=2, dark="#111", light="#fff", xmldecl=False)
    return out.getvalue()


@router.get("/api/qr.svg", response_class=Response, tags=["pages"])
def qr_any(text: Annotated[str, Query(min_length=1, max_length=1000, description="what the code holds, e.g. a lesson link")]) -> Response:
    """A QR code (SVG) of any short text, e.g. a lesson link, drawn on this server."""
    try:
        return Response(_qr_svg(text), media_type="image/svg+xml")
    except segno.DataOverflowError as exc:
        raise ApiError(422, "invalid_request", f"The text is too long for one QR code ({len(text.encode())} bytes "
                       "as UTF-8; about 2,300 fit). Use a shorter text or link.", {"text": "too long for a QR code"}) from exc


@router.get("/api/sessions/{code}/qr.svg", response_class=Response)
def qr(code: str, request: Request) -> Response:
    """A QR code of the join address on this server (drawn here: nothing is fetched from outside)."""
    session = sessions(request).get(code, live=True)
    url = str(request.base_url).rstrip("/") + f"/join?code={session['code']}"
    return Response(_qr_svg(url), media_type="image/svg+xml")


@router.post("/api/sessions/{code}/students", status_code=201)
def join(code: str, body: Join, request: Request) -> dict:
    """Join with a display name; returns the student's key (send it as X-Student-Key)."""
    student, key = sessions(request).join(code, body.name)
    session = info(code, request)
    broadcast(request.app, session["code"], {"type": "students", "count": session["students"]})
    labels = session["labels"]
    return {**student, "student_key": key, "labels": labels}


@router.post("/api/sessions/{code}/drawings", status_code=201)
async def add_drawing(
    code: str, request: Request, settings: SettingsDep,
    image: Annotated[UploadFile, File(description="the drawing, PNG")],
    drawing_id: Annotated[FormRowId | None, Form(description="your drawing still being drawn (replaced), or none for a new one")] = None,
    x_student_key: StudentKey = None,
) -> dict:
    """A student's drawing: read by the session's model, kept, and shown in the gallery."""
    store_ = sessions(request)  # the database is used from a thread: the event loop serves the sockets
    student, session = await run_in_threadpool(lambda: (store_.student(code, x_student_key), store_.get(code)))
    card = session_model(request.app, session)
    data = await image.read(settings.max_upload_bytes + 1)
    try:  # read where the live frames are read (app/frames.py): one queue for every drawing
        seen, probabilities = await request.app.state.frames.run(asyncio.get_running_loop(), read_drawing,
                                                                 data, card.id)
    except imageio.ImageError as exc:
        raise ApiError(IMAGE_STATUS[exc.code], f"image_{exc.code}", str(exc)) from exc
    if probabilities is None:
        raise blank_image()
    guess = int(np.argmax(probabilities))
    confidence = float(probabilities[guess])
    kept = await run_in_threadpool(lambda: store_.drawing(code, store_.save_drawing(student, drawing_id, seen, guess, confidence)))
    drawing = drawing_json(kept, card.labels)
    broadcast(request.app, session["code"], {"type": "drawing", "drawing": drawing})
    return {**drawing, "probabilities": [round(p, 6) for p in probabilities]}


@router.put("/api/sessions/{code}/drawings/{drawing_id}/label")
def label(code: str, drawing_id: RowId, body: Label, request: Request, x_student_key: StudentKey = None) -> dict:
    """The student says what their drawing really shows."""
    store_ = sessions(request)
    student = store_.student(code, x_student_key)
    labels = info(code, request)["labels"]
    if body.label >= len(labels):
        raise ApiError(422, "invalid_request", f"label must be below {len(labels)}", {"label": "no such class"})
    store_.label(student, drawing_id, body.label)
    drawing = drawing_json(store_.drawing(code, drawing_id), labels)
    broadcast(request.app, student["code"], {"type": "drawing", "drawing": drawing})
    return drawing


# --- the teacher ---------------------------------------------------------------------------------

@router.get("/api/sessions/{code}/gallery")
def gallery(code: str, request: Request, teacher: Teacher) -> dict:
    """Every drawing with its student, guess, confidence and true label (teacher only)."""
    teacher.check(sessions(request), code)
    return snapshot(request, code)


@router.patch("/api/sessions/{code}")
def set_reveal(code: str, body: Reveal, request: Request, teacher: Teacher) -> dict:
    """Reveal or hide the guesses in the gallery (teacher only)."""
    return teacher_change(request, code, teacher, lambda s: s.set_reveal(code, body.reveal),
                          {"type": "reveal", "reveal": body.reveal})


def teacher_change(request: Request, code: str, teacher: TeacherAuth, change, event: dict) -> dict:
    """Check the teacher's key, make the change, tell the gallery; the session after it."""
    store_ = sessions(request)
    session = teacher.check(store_, code)
    change(store_)
    broadcast(request.app, session["code"], event)
    return store_.get(code)


@router.post("/api/sessions/{code}/clear")
def clear(code: str, request: Request, teacher: Teacher) -> dict:
    """Delete every drawing of the session (teacher only)."""
    store_ = sessions(request)
    session = teacher.check(store_, code)
    store_.clear(code)
    broadcast(request.app, session["code"], snapshot(request, code))
    return {"cleared": True}


@router.put("/api/sessions/{code}/drawings/{drawing_id}/dataset")
def to_dataset(code: str, drawing_id: RowId, body: Toggle, request: Request, teacher: Teacher) -> dict:
    """Put a labelled drawing into (or take it out of) the class dataset (teacher only)."""
    store_ = sessions(request)
    session = teacher.check(store_, code)
    d = store_.mark_for_dataset(code, drawing_id, body.on)
    drawing = drawing_json(d, info(code, request)["labels"])
    broadcast(request.app, session["code"], {"type": "drawing", "drawing": drawing})
    return drawing


@router.post("/api/sessions/{code}/finetune")
async def fine_tune(code: str, request: Request, teacher: Teacher) -> dict:
    """Fine-tune the session's model on the class dataset (with replayed training images), then
    re-read every drawing with it (teacher only). A few seconds at most."""
    lock: asyncio.Lock = request.app.state.finetune_lock
    if lock.locked():
        raise ApiError(409, "busy", "A fine-tune is already running; wait a few seconds.")
    async with lock:
        report = await run_in_threadpool(_finetune, request.app, code, teacher)
    broadcast(request.app, sessions(request).normalise(code), {**snapshot(request, code), "finetune": report})
    return report


def pixels(drawings: list[dict]) -> np.ndarray:
    """The 28x28 inputs the drawings were read as, (N, 28, 28) uint8."""
    return np.stack([np.frombuffer(d["input"], np.uint8).reshape(28, 28) for d in drawings])


def _finetune(app, code: str, teacher: TeacherAuth) -> dict:
    store_, registry = app.state.sessions, app.state.registry
    session = teacher.check(store_, code)
    drawings = store_.drawings(code)
    chosen = [d for d in drawings if d["in_dataset"]]
    if not chosen:
        raise ApiError(422, "empty_dataset", "The class dataset is empty: put misread drawings with their true "
                       "labels into it first.")
    session_model(app, session)
    base = registry.get(session["model_id"])
    dataset = base.card.dataset if base.card.dataset in datasets.SPECS else "mnist"
    tuned, report = finetune(base.module, pixels(chosen), np.array([d["label"] for d in chosen]), _replay(app, dataset))
    n = len(session["finetunes"]) + 1
    card = store.ModelCard(**{**base.card.to_json(), "id": f"class-{session['code'].lower()}-{n}-{secrets.token_hex(16)}",
                              "name": f"{base.card.name}, tuned by class {session['code']} ({n})",
                              "training": {**report, "from": base.card.id, "command": "POST /api/sessions/{code}/finetune"},
                              "owner": store_.owner(code)})
    store.save(registry.user_folder, card, tuned)
    registry.add(card.id)
    guess, confidence = guesses(tuned, pixels(drawings))
    store_.regrade(session["code"], {d["id"]: (int(g), float(c)) for d, g, c in zip(drawings, guess, confidence)})
    store_.set_model(session["code"], card.id, {**report, "model_id": card.id})
    return {**report, "model_id": card.id}


def _replay(app, name: str) -> datasets.Split:
    cache = app.state.replay
    if name not in cache:
        cache[name] = datasets.load(name, app.state.settings.data_dir).train
    return cache[name]


@router.post("/api/sessions/{code}/end")
def end(code: str, body: End, request: Request, teacher: Teacher) -> dict:
    """End the session: students can no longer draw; their drawings are deleted unless kept."""
    return teacher_change(request, code, teacher, lambda s: s.end(code, body.keep),
                          {"type": "ended", "kept": body.keep})


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
async def gallery_socket(ws: WebSocket, code: str):
    """The teacher's live gallery. Send {"key": teacher key} first; then receive a snapshot and
    every change (drawing, students, reveal, snapshot after a clear or fine-tune, ended)."""
    await ws.accept()
    hub: GalleryHub = ws.app.state.galleries
    try:
        key = await _first_key(ws)
        session = await run_in_threadpool(ws.app.state.sessions.check_teacher, code, key)
        first = await run_in_threadpool(snapshot, ws, session["code"])
    except (StoreError, ApiError) as exc:
        status = getattr(exc, "status", 409)
        await ws.send_json({"type": "error", "error": getattr(exc, "code", "error"), "message": str(exc)})
        await ws.close(code=4403 if status == 403 else 4409 if status == 409 else 4404)
        return
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


def install(app, settings) -> SessionStore:
    app.state.galleries, app.state.replay = GalleryHub(asyncio.get_running_loop()), {}
    app.state.finetune_lock = asyncio.Lock()
    return SessionStore(settings.data_dir / "sessions")
