"""Class sessions: the teacher starts one (and gets a key), students join with its code and draw;
the gallery on the teacher's screen follows every drawing live over /ws/sessions/{code}.

Teacher-only requests carry `X-Teacher-Key`, students' requests `X-Student-Key` (both handed out
once, by POST /api/sessions and POST /api/sessions/{code}/students).
"""
from __future__ import annotations

import asyncio
import io
from functools import lru_cache
from typing import Annotated

import numpy as np
import segno
from fastapi import APIRouter, File, Form, Header, Query, Request, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from app.deps import IMAGE_STATUS, RegistryDep, SettingsDep, blank_image, find_model
from app.frames import read_drawing
from app.errors import ApiError
from app.serialize import image as image_json
from engine import datasets, imageio, store
from engine.finetune import finetune, guesses
from engine.projects import StoreError
from engine.sessions import SessionStore

router = APIRouter(tags=["class sessions"])
TeacherKey = Annotated[str | None, Header(description="the key POST /api/sessions returned")]
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


def with_labels(app, session: dict) -> dict:
    """The session and the labels of the model it reads drawings with."""
    return {**session, "labels": app.state.registry.get(session["model_id"]).card.labels}


def snapshot(request_or_ws, code: str) -> dict:
    app = request_or_ws.app
    session = with_labels(app, app.state.sessions.get(code))
    return {"type": "snapshot", **session,
            "drawings": [drawing_json(d, session["labels"]) for d in app.state.sessions.drawings(code)]}


def broadcast(app, code: str, event: dict) -> None:
    for queue in list(app.state.galleries.get(code, ())):
        queue.put_nowait(event)


@router.post("/api/sessions", status_code=201)
def start(body: NewSession, request: Request, registry: RegistryDep, settings: SettingsDep) -> dict:
    """Start a class session: a short join code and the teacher's key (keep it: it is shown once)."""
    stored = find_model(registry, body.model or settings.default_model)
    if list(stored.card.input_shape) != [1, 28, 28]:
        raise ApiError(422, "invalid_request", "A class session needs a model that reads 28x28 drawings "
                       "(digits or Fashion-MNIST).", {"model": "reads photos, not drawings"})
    session, key = sessions(request).start(stored.card.id)
    return {**session, "teacher_key": key, "join_path": f"/join?code={session['code']}"}


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
    return Response(_qr_svg(text), media_type="image/svg+xml")


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
    drawing_id: Annotated[int | None, Form(description="your drawing still being drawn (replaced), or none for a new one")] = None,
    x_student_key: StudentKey = None,
) -> dict:
    """A student's drawing: read by the session's model, kept, and shown in the gallery."""
    store_ = sessions(request)  # the database is used from a thread: the event loop serves the sockets
    student, session = await run_in_threadpool(lambda: (store_.student(code, x_student_key), store_.get(code)))
    stored = request.app.state.registry.get(session["model_id"])
    data = await image.read(settings.max_upload_bytes + 1)
    try:  # read where the live frames are read (app/frames.py): one queue for every drawing
        seen, probabilities = await request.app.state.frames.run(asyncio.get_running_loop(), read_drawing,
                                                                 data, stored.card.id)
    except imageio.ImageError as exc:
        raise ApiError(IMAGE_STATUS[exc.code], f"image_{exc.code}", str(exc)) from exc
    if probabilities is None:
        raise blank_image()
    guess = int(np.argmax(probabilities))
    confidence = float(probabilities[guess])
    kept = await run_in_threadpool(lambda: store_.drawing(code, store_.save_drawing(student, drawing_id, seen, guess, confidence)))
    drawing = drawing_json(kept, stored.card.labels)
    broadcast(request.app, session["code"], {"type": "drawing", "drawing": drawing})
    return {**drawing, "probabilities": [round(p, 6) for p in probabilities]}


@router.put("/api/sessions/{code}/drawings/{drawing_id}/label")
def label(code: str, drawing_id: int, body: Label, request: Request, x_student_key: StudentKey = None) -> dict:
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
def gallery(code: str, request: Request, x_teacher_key: TeacherKey = None) -> dict:
    """Every drawing with its student, guess, confidence and true label (teacher only)."""
    sessions(request).check_teacher(code, x_teacher_key)
    return snapshot(request, code)


@router.patch("/api/sessions/{code}")
def set_reveal(code: str, body: Reveal, request: Request, x_teacher_key: TeacherKey = None) -> dict:
    """Reveal or hide the guesses in the gallery (teacher only)."""
    return teacher_change(request, code, x_teacher_key, lambda s: s.set_reveal(code, body.reveal),
                          {"type": "reveal", "reveal": body.reveal})


def teacher_change(request: Request, code: str, key: str | None, change, event: dict) -> dict:
    """Check the teacher's key, make the change, tell the gallery; the session after it."""
    store_ = sessions(request)
    session = store_.check_teacher(code, key)
    change(store_)
    broadcast(request.app, session["code"], event)
    return store_.get(code)


@router.post("/api/sessions/{code}/clear")
def clear(code: str, request: Request, x_teacher_key: TeacherKey = None) -> dict:
    """Delete every drawing of the session (teacher only)."""
    store_ = sessions(request)
    session = store_.check_teacher(code, x_teacher_key)
    store_.clear(code)
    broadcast(request.app, session["code"], snapshot(request, code))
    return {"cleared": True}


@router.put("/api/sessions/{code}/drawings/{drawing_id}/dataset")
def to_dataset(code: str, drawing_id: int, body: Toggle, request: Request, x_teacher_key: TeacherKey = None) -> dict:
    """Put a labelled drawing into (or take it out of) the class dataset (teacher only)."""
    store_ = sessions(request)
    session = store_.check_teacher(code, x_teacher_key)
    d = store_.mark_for_dataset(code, drawing_id, body.on)
    drawing = drawing_json(d, info(code, request)["labels"])
    broadcast(request.app, session["code"], {"type": "drawing", "drawing": drawing})
    return drawing


@router.post("/api/sessions/{code}/finetune")
async def fine_tune(code: str, request: Request, x_teacher_key: TeacherKey = None) -> dict:
    """Fine-tune the session's model on the class dataset (with replayed training images), then
    re-read every drawing with it (teacher only). A few seconds at most."""
    lock: asyncio.Lock = request.app.state.finetune_lock
    if lock.locked():
        raise ApiError(409, "busy", "A fine-tune is already running; wait a few seconds.")
    async with lock:
        report = await run_in_threadpool(_finetune, request.app, code, x_teacher_key)
    broadcast(request.app, sessions(request).normalise(code), {**snapshot(request, code), "finetune": report})
    return report


def pixels(drawings: list[dict]) -> np.ndarray:
    """The 28x28 inputs the drawings were read as, (N, 28, 28) uint8."""
    return np.stack([np.frombuffer(d["input"], np.uint8).reshape(28, 28) for d in drawings])


def _finetune(app, code: str, key: str | None) -> dict:
    store_, registry = app.state.sessions, app.state.registry
    session = store_.check_teacher(code, key)
    drawings = store_.drawings(code)
    chosen = [d for d in drawings if d["in_dataset"]]
    if not chosen:
        raise ApiError(422, "empty_dataset", "The class dataset is empty: put misread drawings with their true "
                       "labels into it first.")
    base = registry.get(session["model_id"])
    dataset = base.card.dataset if base.card.dataset in datasets.SPECS else "mnist"
    tuned, report = finetune(base.module, pixels(chosen), np.array([d["label"] for d in chosen]), _replay(app, dataset))
    n = len(session["finetunes"]) + 1
    card = store.ModelCard(**{**base.card.to_json(), "id": f"class-{session['code'].lower()}-{n}",
                              "name": f"{base.card.name}, tuned by class {session['code']} ({n})",
                              "training": {**report, "from": base.card.id, "command": "POST /api/sessions/{code}/finetune"}})
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
def end(code: str, body: End, request: Request, x_teacher_key: TeacherKey = None) -> dict:
    """End the session: students can no longer draw; their drawings are deleted unless kept."""
    return teacher_change(request, code, x_teacher_key, lambda s: s.end(code, body.keep),
                          {"type": "ended", "kept": body.keep})


@router.websocket("/ws/sessions/{code}")
async def gallery_socket(ws: WebSocket, code: str, key: str | None = None):
    """The teacher's live gallery: a snapshot, then every change (drawing, students, reveal,
    snapshot after a clear or fine-tune, ended)."""
    await ws.accept()
    try:
        ws.app.state.sessions.check_teacher(code, key)
        first = snapshot(ws, code)
    except StoreError as exc:
        await ws.send_json({"type": "error", "error": exc.code, "message": str(exc)})
        await ws.close(code=4403 if exc.status == 403 else 4404)
        return
    queue: asyncio.Queue = asyncio.Queue()
    galleries = ws.app.state.galleries.setdefault(first["code"], set())
    galleries.add(queue)
    try:
        await ws.send_json(first)
        while True:
            await ws.send_json(await queue.get())
    except (WebSocketDisconnect, RuntimeError):  # the teacher's page went away
        pass
    finally:
        galleries.discard(queue)


def install(app, settings) -> SessionStore:
    app.state.galleries, app.state.replay = {}, {}
    app.state.finetune_lock = asyncio.Lock()
    return SessionStore(settings.data_dir / "sessions")
