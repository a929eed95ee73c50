"""Class sessions, the teacher's side: the gallery, revealing guesses, the class dataset,
fine-tuning on it, showing the class a project, clearing and ending (the live gallery socket:
app.routers.gallery).

Teacher-only requests carry `X-Teacher-Key` (handed out once, by POST /api/sessions) or the
server's `X-Admin-Key`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from app.classroom import Classroom
from app.deps import ClassroomDep, ProjectsDep, RegistryDep, RowId
from app.errors import ApiError
from app.owners import CallerDep, is_admin
from app.routers.sessions import shared_view
from engine.drawings_zip import drawings_zip

router = APIRouter(prefix="/api/sessions/{code}", tags=["class sessions"])
TeacherKey = Annotated[str | None, Header(description="the key POST /api/sessions returned")]
AdminKey = Annotated[str | None, Header(description="the server's admin key (may act as any teacher)")]


class Reveal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reveal: bool = Field(description="show the network's guesses in the gallery")


class Toggle(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on: bool = True


class Share(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: str | None = Field(max_length=64, description="the id of one of your projects, or null to stop showing it")


class End(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keep: bool = Field(False, description="keep the drawings (else they are deleted)")


@dataclass
class TeacherAuth:
    key: str | None
    admin: bool

    def check(self, classroom: Classroom, code: str) -> dict:
        """The session, once the caller is its teacher (or holds the admin key)."""
        return classroom.sessions.check_teacher(code, self.key, admin=self.admin)


def _teacher(request: Request, x_teacher_key: TeacherKey = None, x_admin_key: AdminKey = None) -> TeacherAuth:
    return TeacherAuth(x_teacher_key, is_admin(request.app, x_admin_key))


Teacher = Annotated[TeacherAuth, Depends(_teacher)]


def change(classroom: Classroom, code: str, teacher: TeacherAuth, make_change, event) -> dict:
    """Check the teacher's key, make the change, tell the gallery (`event`, or `event(session after)`
    when what it says depends on the result); the session after it."""
    session = teacher.check(classroom, code)
    make_change(classroom.sessions)
    after = classroom.sessions.get(code)
    classroom.publish(session["code"], event(after) if callable(event) else event)
    return after


@router.get("/gallery")
def gallery(code: str, classroom: ClassroomDep, teacher: Teacher) -> dict:
    """Every drawing with its student, guess, confidence and true label (teacher only)."""
    teacher.check(classroom, code)
    return classroom.snapshot(code)


@router.patch("")
def set_reveal(code: str, body: Reveal, classroom: ClassroomDep, teacher: Teacher) -> dict:
    """Reveal or hide the guesses in the gallery (teacher only)."""
    return change(classroom, code, teacher, lambda s: s.set_reveal(code, body.reveal),
                  {"type": "reveal", "reveal": body.reveal})


@router.post("/clear")
def clear(code: str, classroom: ClassroomDep, teacher: Teacher) -> dict:
    """Delete every drawing of the session (teacher only)."""
    session = teacher.check(classroom, code)
    classroom.sessions.clear(code)
    classroom.publish(session["code"], classroom.snapshot(code))
    return {"cleared": True}


@router.put("/drawings/{drawing_id}/dataset")
def to_dataset(code: str, drawing_id: RowId, body: Toggle, classroom: ClassroomDep, teacher: Teacher) -> dict:
    """Put a labelled drawing into (or take it out of) the class dataset (teacher only)."""
    session = teacher.check(classroom, code)
    d = classroom.sessions.mark_for_dataset(code, drawing_id, body.on)
    return classroom.publish_drawing(session["code"], d, classroom.info(code)["labels"])


@router.get("/dataset.zip")
def dataset_zip(code: str, classroom: ClassroomDep, teacher: Teacher, names: bool = False) -> Response:
    """The class's labelled drawings as a zip: a PNG each (28x28, as the network read it) and
    labels.csv (label, guess, confidence, in_dataset: the fine-tune's drawings; `names=true` adds
    each student's name). Teacher only."""
    session = teacher.check(classroom, code)  # the session itself: its model's labels come from it
    body = drawings_zip(classroom.sessions.drawings(code), classroom.model(session).labels, names)
    return Response(body, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="class-{session["code"]}-drawings.zip"'})


@router.post("/finetune")
async def fine_tune(code: str, classroom: ClassroomDep, teacher: Teacher) -> dict:
    """Fine-tune the session's model on the class dataset (with replayed training images), then
    re-read every drawing with it (teacher only). A few seconds at most."""
    if classroom.finetune_lock.locked():
        raise ApiError(409, "busy", "A fine-tune is already running; wait a few seconds.")
    async with classroom.finetune_lock:
        report = await run_in_threadpool(lambda: classroom.finetune(teacher.check(classroom, code)))
    classroom.publish(classroom.sessions.normalise(code), {**classroom.snapshot(code), "finetune": report})
    return report


@router.put("/project")
def share_project(code: str, body: Share, classroom: ClassroomDep, projects: ProjectsDep, registry: RegistryDep,
                  teacher: Teacher, caller: CallerDep) -> dict:
    """Show the class one of your projects, read-only (students see its classes and a few photos,
    classify photos with its model and copy it into a project of their own), or stop (null).
    Teacher only, and the project must be the caller's (X-Owner-Token, as for every change to a
    project): 403 otherwise, 404 for no such project, 410 once the session has ended. Students'
    pages hear it at once. An untrained project may be shown: its classes and photos are there."""
    session = teacher.check(classroom, code)
    shown = None
    if body.project is not None:
        if not caller.owns(projects.owner(body.project)):
            raise ApiError(403, "not_owner", "Only whoever created this project (from the same browser) can show "
                           "it to a class. Your owner token is missing or is not this project's owner's.")
        shown = shared_view(projects.get(body.project), registry)
    classroom.sessions.share(code, body.project)
    classroom.publish(session["code"], {"type": "project", "shared": body.project is not None})
    return {"project": body.project, "shown": shown}


@router.post("/end")
def end(code: str, body: End, classroom: ClassroomDep, teacher: Teacher) -> dict:
    """End the session: students can no longer draw; their drawings are deleted unless kept. The
    galleries and the students' pages hear it at once, with what became of the drawings."""
    return change(classroom, code, teacher, lambda s: s.end(code, body.keep),  # ended twice: the first choice stands
                  lambda after: {"type": "ended", "kept": after["kept"]})
