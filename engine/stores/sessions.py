"""Class sessions: a teacher opens one, students join with a short code and draw; each drawing is
kept with the network's guess and, once the student says it, the true label.

SQLite (`<folder>/sessions.sqlite3`). The teacher's key and each student's key are random tokens
handed out once; only their SHA-256 is stored, and they are compared in constant time. A drawing
is kept as the 28x28 the network read (784 bytes), which is all the gallery and fine-tuning need.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import numpy as np

from engine.stores.db import StoreError, clean_name, open_database

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: easy to read off a projector
CODE_LENGTH = 5

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    code TEXT PRIMARY KEY, teacher_hash TEXT NOT NULL, model_id TEXT NOT NULL, base_model TEXT NOT NULL,
    created REAL NOT NULL, ended REAL, reveal INTEGER NOT NULL DEFAULT 1, finetunes TEXT NOT NULL DEFAULT '[]');
CREATE TABLE IF NOT EXISTS students (
    id INTEGER PRIMARY KEY AUTOINCREMENT, code TEXT NOT NULL REFERENCES sessions(code) ON DELETE CASCADE,
    name TEXT NOT NULL, key_hash TEXT NOT NULL, joined REAL NOT NULL);
CREATE TABLE IF NOT EXISTS drawings (
    id INTEGER PRIMARY KEY AUTOINCREMENT, code TEXT NOT NULL REFERENCES sessions(code) ON DELETE CASCADE,
    student_id INTEGER NOT NULL REFERENCES students(id) ON DELETE CASCADE,
    input BLOB NOT NULL, guess INTEGER NOT NULL, confidence REAL NOT NULL, label INTEGER,
    in_dataset INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS drawings_by_session ON drawings(code);
"""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class SessionStore:
    def __init__(self, folder: Path, max_students: int = 60, max_drawings: int = 2000, database_url: str | None = None):
        self.folder = Path(folder)
        self.db = open_database(self.folder / "sessions.sqlite3", SCHEMA, database_url)
        self.db.add_column("sessions", "owner", "TEXT")  # the teacher's owner-token hash
        self.db.add_column("sessions", "kept", "INTEGER")  # once ended: 1 drawings kept, 0 deleted
        self.max_students, self.max_drawings = max_students, max_drawings
        self._connect, self._query, self._write = self.db.connect, self.db.query, self.db.write

    # --- sessions ---------------------------------------------------------------------------

    def start(self, model_id: str, owner: str | None = None) -> tuple[dict, str]:
        """A new session reading drawings with `model_id`; returns it and the teacher's key."""
        key = secrets.token_urlsafe(24)
        for _ in range(20):
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            try:
                self._write("INSERT INTO sessions (code, teacher_hash, model_id, base_model, created, owner) "
                            "VALUES (?, ?, ?, ?, ?, ?)", code, _hash(key), model_id, model_id, time.time(), owner)
                return self.get(code), key
            except sqlite3.IntegrityError:
                continue
        raise StoreError(503, "no_code", "No free session code was found; try again.")

    def normalise(self, code: str) -> str:
        return "".join(ch for ch in str(code).upper() if ch.isalnum())[:CODE_LENGTH]

    def _row(self, code: str, live: bool = True) -> sqlite3.Row:
        rows = self._query("SELECT * FROM sessions WHERE code = ?", self.normalise(code))
        if not rows:
            raise StoreError(404, "session_not_found", f"There is no class session {code!r}. Check the code "
                               "on the teacher's screen.")
        if live and rows[0]["ended"] is not None:
            raise StoreError(410, "session_ended", "This class session has ended. Ask your teacher for a new code.")
        return rows[0]

    def get(self, code: str, live: bool = False) -> dict:
        row = self._row(code, live)
        students = self._query("SELECT COUNT(*) FROM students WHERE code = ?", row["code"])[0][0]
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
        return [r["code"] for r in self._query("SELECT code FROM sessions WHERE ended IS NULL AND model_id = ?",
                                               model_id)]

    def check_teacher(self, code: str, key: str | None, admin: bool = False) -> dict:
        row = self._row(code, live=False)
        if not admin and (not isinstance(key, str) or not key
                          or not hmac.compare_digest(_hash(key), row["teacher_hash"])):
            raise StoreError(403, "not_teacher", "Only the teacher who started this session can do this "
                               "(the teacher's key is missing or wrong).")
        return self.get(code)

    def set_reveal(self, code: str, reveal: bool) -> None:
        self._write("UPDATE sessions SET reveal = ? WHERE code = ?", int(reveal), self.normalise(code))

    def set_model(self, code: str, model_id: str, finetune: dict) -> None:
        session = self.get(code)
        self._write("UPDATE sessions SET model_id = ?, finetunes = ? WHERE code = ?", model_id,
                    json.dumps(session["finetunes"] + [finetune]), session["code"])

    def end(self, code: str, keep: bool) -> None:
        """End the session; its students' drawings are deleted unless `keep`."""
        code = self.normalise(code)
        with closing(self._connect()) as con, con:
            # ending twice changes nothing: what the first end said about the drawings stays true
            con.execute("UPDATE sessions SET ended = ?, kept = ? WHERE code = ? AND ended IS NULL", (time.time(), int(keep), code))
            con.execute("DELETE FROM drawings WHERE code = ? AND EXISTS (SELECT 1 FROM sessions WHERE code = ? AND kept = 0)",
                        (code, code))

    # --- students and drawings ----------------------------------------------------------------

    def join(self, code: str, name: str) -> tuple[dict, str]:
        row = self._row(code)
        name = clean_name(name, "display")
        if self._query("SELECT COUNT(*) FROM students WHERE code = ?", row["code"])[0][0] >= self.max_students:
            raise StoreError(409, "session_full", f"This session already has {self.max_students} students.")
        name = self._unique_name(row["code"], name)
        key = secrets.token_urlsafe(18)
        student_id = self._write("INSERT INTO students (code, name, key_hash, joined) VALUES (?, ?, ?, ?)",
                                 row["code"], name, _hash(key), time.time())
        return {"id": student_id, "name": name, "code": row["code"]}, key

    def _unique_name(self, code: str, name: str) -> str:
        """The name, or "Bob 2", "Bob 3"... when someone in the session already has it (any case):
        the teacher must tell every student's drawings apart."""
        taken = {r["name"].casefold() for r in self._query("SELECT name FROM students WHERE code = ?", code)}
        candidate, n = name, 1
        while candidate.casefold() in taken:
            n += 1
            candidate = f"{name[:36]} {n}"
        return candidate

    def student(self, code: str, key: str | None, live: bool = True) -> dict:
        """The student holding `key` in the session (which must not have ended, unless not `live`)."""
        row = self._row(code, live)
        # the keys are random tokens: looking one up by its hash reveals nothing about the others
        found = self._query("SELECT * FROM students WHERE code = ? AND key_hash = ?", row["code"], _hash(key)) if key else []
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
            self._write("UPDATE drawings SET input = ?, guess = ?, confidence = ?, label = NULL, updated = ? "
                        "WHERE id = ?", data, guess, confidence, now, drawing_id)
            return drawing_id
        if self._query("SELECT COUNT(*) FROM drawings WHERE code = ?", student["code"])[0][0] >= self.max_drawings:
            raise StoreError(409, "gallery_full", "The class gallery is full; the teacher can clear it.")
        return self._write("INSERT INTO drawings (code, student_id, input, guess, confidence, created, updated) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)", student["code"], student["id"], data, guess,
                           confidence, now, now)

    def _own(self, student: dict, drawing_id: int) -> sqlite3.Row:
        rows = self._query("SELECT * FROM drawings WHERE id = ? AND student_id = ?", drawing_id, student["id"])
        if not rows:
            raise StoreError(404, "drawing_not_found", f"You have no drawing {drawing_id} in this session.")
        return rows[0]

    def label(self, student: dict, drawing_id: int, label: int) -> None:
        self._own(student, drawing_id)
        self._write("UPDATE drawings SET label = ?, updated = ? WHERE id = ?", label, time.time(), drawing_id)

    def mark_for_dataset(self, code: str, drawing_id: int, on: bool) -> dict:
        drawing = self.drawing(code, drawing_id)
        if on and drawing["label"] is None:
            raise StoreError(422, "no_label", "This drawing has no true label yet: its student says what it "
                               "shows first.")
        self._write("UPDATE drawings SET in_dataset = ? WHERE id = ?", int(on), drawing_id)
        return self.drawing(code, drawing_id)

    def regrade(self, code: str, guesses: dict[int, tuple[int, float]]) -> None:
        """New guesses (after fine-tuning) for drawings: {id: (guess, confidence)}."""
        with closing(self._connect()) as con, con:
            con.executemany("UPDATE drawings SET guess = ?, confidence = ? WHERE id = ? AND code = ?",
                            [(g, c, i, self.normalise(code)) for i, (g, c) in guesses.items()])

    def clear(self, code: str) -> None:
        self._write("DELETE FROM drawings WHERE code = ?", self.normalise(code))

    def drawing(self, code: str, drawing_id: int) -> dict:
        found = self.drawings(code, drawing_id)
        if not found:
            raise StoreError(404, "drawing_not_found", f"This session has no drawing {drawing_id}.")
        return found[0]

    def drawings(self, code: str, only: int | None = None) -> list[dict]:
        """Every drawing (or only the one with id `only`), oldest first, with its student's name;
        `input` is the 28x28 bytes."""
        one = "" if only is None else " AND d.id = ?"
        rows = self._query("SELECT d.*, s.name FROM drawings d JOIN students s ON s.id = d.student_id "
                           f"WHERE d.code = ?{one} ORDER BY d.id", self.normalise(code), *([] if only is None else [only]))
        return [{"id": r["id"], "student": r["name"], "student_id": r["student_id"], "input": r["input"],
                 "guess": r["guess"], "confidence": r["confidence"], "label": r["label"],
                 "in_dataset": bool(r["in_dataset"]), "updated": r["updated"]} for r in rows]
