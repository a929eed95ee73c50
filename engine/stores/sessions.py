"""Class sessions: a teacher opens one, students join with a short code and draw; each drawing is
kept with the network's guess and, once the student says it, the true label.

SQLite (`<folder>/sessions.sqlite3`), or PostgreSQL in district mode. The teacher's key and each
student's key are random tokens handed out once; only their SHA-256 is stored, and they are
compared in constant time. A drawing is kept as the 28x28 the network read (784 bytes), which is
all the gallery and fine-tuning need.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path

import numpy as np
from sqlalchemy import Column, Index, LargeBinary, MetaData, RowMapping, Table, Text, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import Double

from engine.stores.db import BIGINT, StoreError, clean_name, open_database, part_of, row_id

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: easy to read off a projector
CODE_LENGTH = 5

METADATA = MetaData()
SESSIONS = Table(
    "sessions", METADATA,
    Column("code", Text, primary_key=True), Column("teacher_hash", Text, nullable=False),
    Column("model_id", Text, nullable=False), Column("base_model", Text, nullable=False),
    Column("created", Double, nullable=False), Column("ended", Double),
    Column("reveal", BIGINT, nullable=False, server_default=text("1")),
    Column("finetunes", Text, nullable=False, server_default="[]"),
    # added to older databases, as every later column is
    Column("owner", Text),  # the teacher's owner-token hash
    Column("kept", BIGINT),  # once ended: 1 drawings kept, 0 deleted
    Column("project", Text))  # the project the teacher shows the class (read-only), if any
STUDENTS = Table(
    "students", METADATA,
    row_id(),
    part_of("code", Text, "sessions.code"),
    Column("name", Text, nullable=False), Column("key_hash", Text, nullable=False),
    Column("joined", Double, nullable=False), sqlite_autoincrement=True)
DRAWINGS = Table(
    "drawings", METADATA,
    row_id(),
    part_of("code", Text, "sessions.code"),
    part_of("student_id", BIGINT, "students.id"),
    Column("input", LargeBinary, nullable=False), Column("guess", BIGINT, nullable=False),
    Column("confidence", Double, nullable=False), Column("label", BIGINT),
    Column("in_dataset", BIGINT, nullable=False, server_default=text("0")),
    Column("created", Double, nullable=False), Column("updated", Double, nullable=False),
    Index("drawings_by_session", "code"), sqlite_autoincrement=True)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class SessionStore:
    def __init__(self, folder: Path, max_students: int = 60, max_drawings: int = 2000, database_url: str | None = None):
        self.folder = Path(folder)
        self.db = open_database(self.folder / "sessions.sqlite3", METADATA, database_url)
        self.max_students, self.max_drawings = max_students, max_drawings
        self._query, self._value, self._write = self.db.query, self.db.value, self.db.write

    # --- sessions ---------------------------------------------------------------------------

    def start(self, model_id: str, owner: str | None = None) -> tuple[dict, str]:
        """A new session reading drawings with `model_id`; returns it and the teacher's key."""
        key = secrets.token_urlsafe(24)
        for _ in range(20):
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            try:
                self.db.insert(SESSIONS, code=code, teacher_hash=_hash(key), model_id=model_id, base_model=model_id,
                               created=time.time(), owner=owner)
                return self.get(code), key
            except IntegrityError:
                continue
        raise StoreError(503, "no_code", "No free session code was found; try again.")

    def normalise(self, code: str) -> str:
        return "".join(ch for ch in str(code).upper() if ch.isalnum())[:CODE_LENGTH]

    def _row(self, code: str, live: bool = True) -> RowMapping:
        rows = self._query("SELECT * FROM sessions WHERE code = :code", code=self.normalise(code))
        if not rows:
            raise StoreError(404, "session_not_found", f"There is no class session {code!r}. Check the code "
                               "on the teacher's screen.")
        if live and rows[0]["ended"] is not None:
            raise StoreError(410, "session_ended", "This class session has ended. Ask your teacher for a new code.")
        return rows[0]

    def get(self, code: str, live: bool = False) -> dict:
        row = self._row(code, live)
        students = self._value("SELECT COUNT(*) FROM students WHERE code = :code", code=row["code"])
        return {"code": row["code"], "model_id": row["model_id"], "base_model": row["base_model"],
                "created": row["created"], "ended": row["ended"], "reveal": bool(row["reveal"]),
                "kept": None if row["ended"] is None or row["kept"] is None else bool(row["kept"]),
                "students": students, "finetunes": json.loads(row["finetunes"])}

    def owner(self, code: str) -> str | None:
        """The owner-token hash of whoever started the session (models it fine-tunes are theirs)."""
        return self._row(code, live=False)["owner"]

    def model_texts(self) -> list[str]:
        """Every model a session (ended or not) reads with, began with or fine-tuned into, as stored."""
        return [f"{r['model_id']} {r['base_model']} {r['finetunes']}"
                for r in self._query("SELECT model_id, base_model, finetunes FROM sessions")]

    def live_using(self, model_id: str) -> list[str]:
        """Codes of the sessions that have not ended and read drawings with this model."""
        return [r["code"] for r in self._query("SELECT code FROM sessions WHERE ended IS NULL AND model_id = :model",
                                               model=model_id)]

    def check_teacher(self, code: str, key: str | None, admin: bool = False) -> dict:
        row = self._row(code, live=False)
        if not admin and (not isinstance(key, str) or not key
                          or not hmac.compare_digest(_hash(key), row["teacher_hash"])):
            raise StoreError(403, "not_teacher", "Only the teacher who started this session can do this "
                               "(the teacher's key is missing or wrong).")
        return self.get(code)

    def set_reveal(self, code: str, reveal: bool) -> None:
        self._write("UPDATE sessions SET reveal = :reveal WHERE code = :code", reveal=int(reveal), code=self.normalise(code))

    def set_model(self, code: str, model_id: str, finetune: dict) -> None:
        session = self.get(code)
        self._write("UPDATE sessions SET model_id = :model, finetunes = :finetunes WHERE code = :code", model=model_id,
                    finetunes=json.dumps(session["finetunes"] + [finetune]), code=session["code"])

    def share(self, code: str, project_id: str | None) -> None:
        """Show a project to the class (read-only), or stop (None). Sharing needs a live session."""
        row = self._row(code, live=project_id is not None)
        self._write("UPDATE sessions SET project = :project WHERE code = :code", project=project_id, code=row["code"])

    def shared(self, code: str, live: bool = True) -> str | None:
        """The id of the project the class is shown, or None; 410 once the session has ended."""
        return self._row(code, live)["project"]

    def end(self, code: str, keep: bool) -> None:
        """End the session (a project shown to the class is no longer shown); its students'
        drawings are deleted unless `keep`."""
        code = self.normalise(code)
        with self.db.transaction() as con:
            # ending twice changes nothing: what the first end said about the drawings stays true
            con.execute(text("UPDATE sessions SET ended = :now, kept = :keep, project = NULL WHERE code = :code "
                             "AND ended IS NULL"), {"now": time.time(), "keep": int(keep), "code": code})
            con.execute(text("DELETE FROM drawings WHERE code = :code AND EXISTS (SELECT 1 FROM sessions WHERE code = :code "
                             "AND kept = 0)"), {"code": code})

    # --- students and drawings ----------------------------------------------------------------

    def join(self, code: str, name: str) -> tuple[dict, str]:
        row = self._row(code)
        name = clean_name(name, "display")
        if self._value("SELECT COUNT(*) FROM students WHERE code = :code", code=row["code"]) >= self.max_students:
            raise StoreError(409, "session_full", f"This session already has {self.max_students} students.")
        name = self._unique_name(row["code"], name)
        key = secrets.token_urlsafe(18)
        student_id = self.db.insert(STUDENTS, code=row["code"], name=name, key_hash=_hash(key), joined=time.time())
        return {"id": student_id, "name": name, "code": row["code"]}, key

    def _unique_name(self, code: str, name: str) -> str:
        """The name, or "Bob 2", "Bob 3"... when someone in the session already has it (any case):
        the teacher must tell every student's drawings apart."""
        taken = {r["name"].casefold() for r in self._query("SELECT name FROM students WHERE code = :code", code=code)}
        candidate, n = name, 1
        while candidate.casefold() in taken:
            n += 1
            candidate = f"{name[:36]} {n}"
        return candidate

    def student(self, code: str, key: str | None, live: bool = True) -> dict:
        """The student holding `key` in the session (which must not have ended, unless not `live`)."""
        row = self._row(code, live)
        # the keys are random tokens: looking one up by its hash reveals nothing about the others
        found = self._query("SELECT * FROM students WHERE code = :code AND key_hash = :key", code=row["code"],
                            key=_hash(key)) if key else []
        if not found:
            raise StoreError(403, "not_a_student", "Join the session first (your student key is missing or "
                               "not from this session).")
        return {"id": found[0]["id"], "name": found[0]["name"], "code": row["code"]}

    def save_drawing(self, student: dict, drawing_id: int | None, image: np.ndarray, guess: int,
                     confidence: float) -> int:
        """Add a drawing (or replace the student's own drawing `drawing_id`: the one still being drawn)."""
        data, now = np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8).tobytes(), time.time()
        if drawing_id is not None:
            self._own(student, drawing_id)
            self._write("UPDATE drawings SET input = :input, guess = :guess, confidence = :confidence, label = NULL, "
                        "updated = :now WHERE id = :id", input=data, guess=guess, confidence=confidence, now=now, id=drawing_id)
            return drawing_id
        if self._value("SELECT COUNT(*) FROM drawings WHERE code = :code", code=student["code"]) >= self.max_drawings:
            raise StoreError(409, "gallery_full", "The class gallery is full; the teacher can clear it.")
        return self.db.insert(DRAWINGS, code=student["code"], student_id=student["id"], input=data, guess=guess,
                              confidence=confidence, created=now, updated=now)

    def _own(self, student: dict, drawing_id: int) -> RowMapping:
        rows = self._query("SELECT * FROM drawings WHERE id = :id AND student_id = :student", id=drawing_id,
                           student=student["id"])
        if not rows:
            raise StoreError(404, "drawing_not_found", f"You have no drawing {drawing_id} in this session.")
        return rows[0]

    def label(self, student: dict, drawing_id: int, label: int) -> None:
        self._own(student, drawing_id)
        self._write("UPDATE drawings SET label = :label, updated = :now WHERE id = :id", label=label, now=time.time(),
                    id=drawing_id)

    def mark_for_dataset(self, code: str, drawing_id: int, on: bool) -> dict:
        drawing = self.drawing(code, drawing_id)
        if on and drawing["label"] is None:
            raise StoreError(422, "no_label", "This drawing has no true label yet: its student says what it "
                               "shows first.")
        self._write("UPDATE drawings SET in_dataset = :on WHERE id = :id", on=int(on), id=drawing_id)
        return self.drawing(code, drawing_id)

    def regrade(self, code: str, guesses: dict[int, tuple[int, float]]) -> None:
        """New guesses (after fine-tuning) for drawings: {id: (guess, confidence)}."""
        if not guesses:
            return
        with self.db.transaction() as con:
            con.execute(text("UPDATE drawings SET guess = :guess, confidence = :confidence WHERE id = :id AND code = :code"),
                        [{"guess": g, "confidence": c, "id": i, "code": self.normalise(code)} for i, (g, c) in guesses.items()])

    def clear(self, code: str) -> None:
        self._write("DELETE FROM drawings WHERE code = :code", code=self.normalise(code))

    def drawing(self, code: str, drawing_id: int) -> dict:
        found = self.drawings(code, drawing_id)
        if not found:
            raise StoreError(404, "drawing_not_found", f"This session has no drawing {drawing_id}.")
        return found[0]

    def drawings(self, code: str, only: int | None = None) -> list[dict]:
        """Every drawing (or only the one with id `only`), oldest first, with its student's name;
        `input` is the 28x28 bytes."""
        one = "" if only is None else " AND d.id = :id"
        rows = self._query("SELECT d.*, s.name FROM drawings d JOIN students s ON s.id = d.student_id "
                           f"WHERE d.code = :code{one} ORDER BY d.id", code=self.normalise(code), id=only)
        return [{"id": r["id"], "student": r["name"], "student_id": r["student_id"], "input": r["input"],
                 "guess": r["guess"], "confidence": r["confidence"], "label": r["label"],
                 "in_dataset": bool(r["in_dataset"]), "updated": r["updated"]} for r in rows]
