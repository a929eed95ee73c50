"""The embedded database under the stores (projects, class sessions): one SQLite file, WAL mode,
foreign keys on, a fresh connection per call, so any thread may use it; writes are transactions.
Also what both stores share: the error they refuse a request with, and how they clean a name."""
from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

NAME_LENGTH = 40  # longest display name (projects, classes, students)


class StoreError(Exception):
    """A request a store (projects, sessions) refuses: `status` is the HTTP-like code, `field` what was wrong."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.field = status, code, field


def clean_name(value: object, what: str) -> str:
    """A display name: text, trimmed, inner whitespace collapsed, 1..NAME_LENGTH characters,
    no control characters. Markup is allowed here and escaped where it is shown."""
    if not isinstance(value, str):
        raise StoreError(422, "invalid_name", f"The {what} name must be text.", "name")
    name = " ".join(value.split())
    if not name:
        raise StoreError(422, "invalid_name", f"Give the {what} a name (it is empty).", "name")
    if len(name) > NAME_LENGTH:
        raise StoreError(422, "invalid_name", f"The {what} name is {len(name)} characters long; "
                           f"use at most {NAME_LENGTH}.", "name")
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in name):
        raise StoreError(422, "invalid_name", f"The {what} name contains control characters; "
                           "use letters, digits, spaces and punctuation.", "name")
    return name


def _wal(con: sqlite3.Connection, wait: float = 15.0) -> None:
    """Put the file in WAL mode (it stays so). SQLite answers "locked" at once, without waiting,
    while another process is making the same new file (servers starting together on a shared
    folder): try again for up to `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            con.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Database:
    def __init__(self, path: Path, schema: str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self.connect()) as con:
            _wal(con)
            con.executescript(schema)
        # Held open for good: while one connection stays, SQLite keeps its -wal and -shm files
        # (the last connection to close removes them), so reads on a full disk do not need room
        # to make them again.
        self._keeper = self.connect()

    def connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=15)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA foreign_keys=ON")
        con.execute("PRAGMA synchronous=NORMAL")  # with WAL: safe, one fsync per checkpoint, not per write
        return con

    def add_column(self, table: str, column: str, declaration: str) -> None:
        """Add a column that a newer version needs to a database an older version made. The look
        and the change are one write transaction: servers that share the file and start together
        (district mode) take turns, and only the first adds it."""
        with closing(self.connect()) as con:
            con.isolation_level = None  # transactions by hand: BEGIN IMMEDIATE takes the write lock first
            con.execute("BEGIN IMMEDIATE")
            try:
                if column not in [r["name"] for r in con.execute(f"PRAGMA table_info({table})")]:
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def query(self, sql: str, *args) -> list[sqlite3.Row]:
        with closing(self.connect()) as con:
            return con.execute(sql, args).fetchall()

    def write(self, sql: str, *args) -> int:
        """Run one statement in a transaction; the new row's id."""
        with closing(self.connect()) as con, con:
            return con.execute(sql, args).lastrowid
