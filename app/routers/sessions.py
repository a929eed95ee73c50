"""Class sessions, the students' side: the teacher starts one (and gets a key), students join with
its code and draw; each drawing is read, kept and shown in the teacher's gallery (app.routers.teacher).
The project the teacher shows the class (PUT /api/sessions/{code}/project) is read here: anyone
with the code sees it read-only (no id, owner or file path), classifies photos with its model and
copies it into a project of their own, while it is shown.

Students' requests carry `X-Student-Key` (handed out once, by POST /api/sessions/{code}/students).
"""
from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, Header, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from app.classroom import Classroom
from app.deps import (
    ClassroomDep,
    FormRowId,
    FramesDep,
    PhotosDep,
    ProjectsDep,
    RegistryDep,
    RowId,
    SettingsDep,
    blank_image,
    decode_upload,
    on_photo_thread,
)
from app.errors import ApiError
from app.owners import CallerDep
from app.routers.health import addresses as server_addresses
from app.serialize import classification_json, qr_svg
from engine.inference import classify
from engine.stores.db import StoreError
from engine.stores.projects import ProjectStore

router = APIRouter(prefix="/api/sessions", tags=["class sessions"])
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


@router.post("", status_code=201)
def start(body: NewSession, classroom: ClassroomDep, registry: RegistryDep, settings: SettingsDep,
          caller: CallerDep) -> dict:
    """Start a class session: a short join code and the teacher's key (keep it: it is shown once)."""
    card = registry.card(body.model or settings.default_model)
    if list(card.input_shape) != [1, 28, 28]:
        raise ApiError(422, "invalid_request", "A class session needs a model that reads 28x28 drawings "
                       "(digits or Fashion-MNIST).", {"model": "reads photos, not drawings"})
    made = caller.ensure()
    session, key = classroom.sessions.start(card.id, caller.owner)
    return {**session, "teacher_key": key, "join_path": f"/join?code={session['code']}", **made}


@router.get("/{code}")
def info(code: str, classroom: ClassroomDep) -> dict:
    """What a student needs to join: the code, the model's labels, whether it has ended."""
    return classroom.info(code)


def students_origin(request: Request, settings) -> str:
    """The address students reach this server at, as the pages choose it (students-address.js):
    NEURONLAB_PUBLIC_URL, else this machine's network address when the caller opened the page on
    one only this machine can reach (127.0.0.1), else the address the caller used."""
    found = server_addresses(request, settings)
    if (found["public_url"] or found["local"]) and found["urls"]:
        return found["urls"][0]
    return str(request.base_url).rstrip("/")


@router.get("/{code}/qr.svg", response_class=Response)
def qr(code: str, request: Request, classroom: ClassroomDep, settings: SettingsDep) -> Response:
    """A QR code of the join address students can reach (drawn here: nothing is fetched from outside)."""
    session = classroom.sessions.get(code, live=True)
    url = students_origin(request, settings) + f"/join?code={session['code']}"
    return Response(qr_svg(url), media_type="image/svg+xml")


@router.post("/{code}/students", status_code=201)
def join(code: str, body: Join, classroom: ClassroomDep) -> dict:
    """Join with a display name; returns the student's key (send it as X-Student-Key)."""
    student, key = classroom.sessions.join(code, body.name)
    session = classroom.info(code)
    classroom.publish(session["code"], {"type": "students", "count": session["students"]})
    return {**student, "student_key": key, "labels": session["labels"]}


@router.post("/{code}/drawings", status_code=201)
async def add_drawing(
    code: str, classroom: ClassroomDep, frames: FramesDep, settings: SettingsDep,
    image: Annotated[UploadFile, File(description="the drawing, PNG")],
    drawing_id: Annotated[FormRowId | None, Form(description="your drawing still being drawn (replaced), or none for a new one")] = None,
    x_student_key: StudentKey = None,
) -> dict:
    """A student's drawing: read by the session's model, kept, and shown in the gallery."""
    store = classroom.sessions  # the database is used from a thread: the event loop serves the sockets
    student, session = await run_in_threadpool(lambda: (store.student(code, x_student_key), store.get(code)))
    card = classroom.model(session)
    data = await image.read(settings.max_upload_bytes + 1)
    # read where the live frames are read (app/frames.py): one queue for every drawing; a bad
    # image raises imageio.ImageError, answered as its 4xx
    seen, probabilities = await frames.drawing(data, card.id)
    if probabilities is None:
        raise blank_image()
    guess = int(np.argmax(probabilities))
    confidence = float(probabilities[guess])
    kept = await run_in_threadpool(lambda: store.drawing(code, store.save_drawing(student, drawing_id, seen, guess, confidence)))
    drawing = classroom.publish_drawing(session["code"], kept, card.labels)
    return {**drawing, "probabilities": [round(p, 6) for p in probabilities]}


@router.put("/{code}/drawings/{drawing_id}/label")
def label(code: str, drawing_id: RowId, body: Label, classroom: ClassroomDep, x_student_key: StudentKey = None) -> dict:
    """The student says what their drawing really shows."""
    store = classroom.sessions
    student = store.student(code, x_student_key)
    labels = classroom.info(code)["labels"]
    if body.label >= len(labels):
        raise ApiError(422, "invalid_request", f"label must be below {len(labels)}", {"label": "no such class"})
    store.label(student, drawing_id, body.label)
    return classroom.publish_drawing(student["code"], store.drawing(code, drawing_id), labels)


# --- the project the teacher shows the class ----------------------------------------------------

THUMBNAILS = 4  # photos of each class shown to the class


def nothing_shared() -> ApiError:
    return ApiError(404, "nothing_shared", "The teacher is not showing the class a project right now.")


def shared_project(classroom: Classroom, projects: ProjectStore, code: str) -> dict:
    """The project the session shows the class (404 when none, or when it was deleted since; 410
    once the session has ended)."""
    project_id = classroom.sessions.shared(code)
    if project_id is None:
        raise nothing_shared()
    try:
        return projects.get(project_id)
    except StoreError as exc:
        raise nothing_shared() from exc


def shared_view(project: dict, registry) -> dict:
    """What the class sees of a project: its name, each class with its count and a few photo ids,
    whether it is trained and its held-out score. No id, owner, model id or path."""
    result = project["result"] or {}
    trained = project["model_id"] is not None and project["model_id"] in registry
    return {"name": project["name"], "trained": trained,
            "accuracy": result.get("accuracy") if trained else None,
            "method": result.get("method") if trained else None,
            "held_out": len(result.get("held_out") or []) if trained else 0,
            "photos": sum(c["count"] for c in project["classes"]),
            "classes": [{"name": c["name"], "count": c["count"], "samples": c["samples"][:THUMBNAILS]}
                        for c in project["classes"]]}


@router.get("/{code}/project")
def project(code: str, classroom: ClassroomDep, projects: ProjectsDep, registry: RegistryDep) -> dict:
    """The project the teacher shows the class, read-only (anyone with the code, while it is shown):
    its name, classes (a few photo ids each, for /project/samples/{id}), whether it is trained and
    its held-out accuracy. 404 when none is shown, 410 once the session has ended."""
    return shared_view(shared_project(classroom, projects, code), registry)


@router.get("/{code}/project/samples/{sample_id}", response_class=FileResponse)
def project_sample(code: str, sample_id: RowId, classroom: ClassroomDep, projects: ProjectsDep) -> FileResponse:
    """A photo of the project shown to the class (JPEG, at most 320 px); only its photos."""
    shown = shared_project(classroom, projects, code)
    try:
        path = projects.sample_file(shown["id"], sample_id)
    except StoreError as exc:
        raise ApiError(404, "sample_not_found", f"The class project has no photo {sample_id}.") from exc
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})


SHARED_SURE = 0.8  # a project knows only its own few classes: below this, the page says it is not sure


@router.post("/{code}/project/predict", response_class=JSONResponse)
def project_predict(
    code: str, classroom: ClassroomDep, projects: ProjectsDep, registry: RegistryDep, settings: SettingsDep,
    photos: PhotosDep, image: Annotated[UploadFile, File(description="PNG, JPEG, WebP or GIF")],
) -> JSONResponse:
    """Classify a photo with the model of the project shown to the class (as /api/predict, without
    the model's id; `sure` below SHARED_SURE is false: a photo of none of its classes is still given
    one of them); 409 `not_trained` before the teacher has trained it."""
    shown = shared_project(classroom, projects, code)
    if shown["model_id"] is None or shown["model_id"] not in registry:
        raise ApiError(409, "not_trained", "This project has not been trained yet: the teacher trains it first.")
    stored = registry.get(shown["model_id"])
    result = on_photo_thread(photos, stored, classify, stored, decode_upload(image, settings))
    if result.probabilities is None:
        raise blank_image()
    body = classification_json(result, with_steps=False, min_confidence=SHARED_SURE)
    body.pop("model")
    return JSONResponse(body)


@router.post("/{code}/project/copy", status_code=201)
def project_copy(code: str, classroom: ClassroomDep, projects: ProjectsDep, caller: CallerDep) -> dict:
    """Copy the project shown to the class into a new project of the caller's own (X-Owner-Token;
    one is made if none is sent): the same name, classes and photos, untrained (its owner adds
    photos and trains it). 404 when none is shown, 410 once the session has ended."""
    shown = shared_project(classroom, projects, code)
    made = caller.ensure()
    try:
        copied = projects.copy(shown["id"], caller.owner)
    except StoreError as exc:
        if exc.status == 404:  # deleted a moment ago
            raise nothing_shared() from exc
        raise
    return {**copied, **made}
