"""The embedded database under the stores (projects, class sessions): one SQLite file, WAL mode,
foreign keys on, a fresh connection per call, so any thread may use it; writes are transactions.
Also what both stores share: the error they refuse a request with, and how they clean a name."""
from __future__ import annotations

import re
import sqlite3
import threading
import time
from contextlib import closing, contextmanager, suppress
from pathlib import Path

from engine.refusal import Refusal

NAME_LENGTH = 40  # longest display name (projects, classes, students)
MODEL_NAME_LENGTH = 60  # longest model name (a made name: network, data, accuracy, date, rate)


class StoreError(Refusal):
    """A request a store (projects, sessions) refuses: `status` is the HTTP-like code, `field` what was wrong."""


# Characters that change how the text around them is shown without being seen themselves: the
# bidirectional controls (a right-to-left override turns "gnp.exe" into "exe.png").
DIRECTION_MARKS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_name(value: object, what: str, limit: int = NAME_LENGTH) -> str:
    """The one rule for every name a person gives (models, training jobs, projects, classes,
    students): text, trimmed, inner whitespace (line breaks included) collapsed to one space,
    1..`limit` characters, no control characters (NUL and the like), no direction controls and no
    broken Unicode. Markup is allowed here and escaped where it is shown."""
    if not isinstance(value, str):
        raise StoreError(422, "invalid_name", f"The {what} name must be text.", "name")
    name = " ".join(value.split())
    if not name:
        raise StoreError(422, "invalid_name", f"Give the {what} a name (it is empty).", "name")
    if len(name) > limit:
        raise StoreError(422, "invalid_name", f"The {what} name is {len(name)} characters long; "
                           f"use at most {limit}.", "name")
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 or ch in DIRECTION_MARKS or 0xD800 <= ord(ch) < 0xE000 for ch in name):
        raise StoreError(422, "invalid_name", f"The {what} name contains control or text-direction characters; "
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


# --- PostgreSQL (district mode with replicas on several machines: NEURONLAB_DATABASE_URL) ---------

def postgres_schema(schema: str) -> str:
    """The stores' SQLite schema in PostgreSQL's words: 64-bit integers (ids up to 2**63 - 1, as
    the API allows), identity ids, doubles, bytea."""
    schema = schema.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
    for sqlite_type, pg_type in (("INTEGER", "BIGINT"), ("REAL", "DOUBLE PRECISION"), ("BLOB", "BYTEA")):
        schema = re.sub(rf"\b{sqlite_type}\b", pg_type, schema)
    return schema


class _PgRow(tuple):
    """A row read by name or by place, as sqlite3.Row is."""
    names: tuple = ()

    def __getitem__(self, key):
        return tuple.__getitem__(self, self.names.index(key) if isinstance(key, str) else key)

    def keys(self) -> list[str]:
        return list(self.names)


def _rows(cursor):
    names = tuple(c.name for c in cursor.description or ())
    row_type = type("Row", (_PgRow,), {"names": names})
    return lambda values: row_type(values)


class _PgCursor:
    def __init__(self, cursor, lastrowid=None):
        self.cursor, self.lastrowid = cursor, lastrowid

    def fetchall(self) -> list:
        return self.cursor.fetchall() if self.cursor.description else []


UNAVAILABLE = ("The database (PostgreSQL) is not answering, so nothing could be read or saved (what was saved "
               "before is safe). Try again in a minute; if it lasts, tell whoever runs the server.")


@contextmanager
def _pg_errors():
    """PostgreSQL's errors as the stores know them: a broken constraint is sqlite3's IntegrityError
    (what they catch), a lost server a 503 (not a crash)."""
    import psycopg
    try:
        yield
    except psycopg.errors.IntegrityError as exc:
        raise sqlite3.IntegrityError(str(exc)) from exc
    except psycopg.OperationalError as exc:
        raise StoreError(503, "database_unavailable", UNAVAILABLE) from exc


class _PgConnection:
    """A pooled PostgreSQL connection that the stores use as they use sqlite3's: execute with ?
    placeholders, `with con:` for a transaction, close() (back to the pool), lastrowid of an
    INSERT, sqlite3.IntegrityError for a broken constraint."""

    def __init__(self, raw, pool: "PostgresDatabase"):
        self.raw, self.pool = raw, pool

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def execute(self, sql: str, args=()) -> _PgCursor:
        table = re.match(r"\s*INSERT INTO (\w+)", sql)
        returning = table is not None and table[1] in self.pool.id_tables
        cursor = self.raw.cursor(row_factory=_rows)
        with _pg_errors():
            cursor.execute(self._sql(sql) + (" RETURNING id" if returning else ""), tuple(args))
            return _PgCursor(cursor, cursor.fetchone()[0] if returning else None)

    def executemany(self, sql: str, rows) -> None:
        with _pg_errors():
            self.raw.cursor().executemany(self._sql(sql), [tuple(r) for r in rows])

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            with _pg_errors():
                self.raw.commit()
        else:
            with suppress(Exception):  # the error on its way out says more than a failed rollback
                self.raw.rollback()

    def close(self) -> None:
        self.pool._give_back(self.raw)


class PostgresDatabase(Database):
    """Database's interface on a PostgreSQL server shared by every replica: the same schema
    (translated), the same calls; connections are pooled (a new one costs milliseconds)."""

    def __init__(self, url: str, schema: str, pool_size: int = 8):
        import psycopg
        self.url, self.pool_size, self.path = url, pool_size, None
        self._idle: list = []
        self._lock = threading.Lock()
        self.id_tables = set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \(\s*id INTEGER PRIMARY KEY AUTOINCREMENT", schema))
        with psycopg.connect(url) as con:  # replicas starting together: one at a time makes the tables
            con.execute("SELECT pg_advisory_xact_lock(7224901)")
            for statement in filter(str.strip, postgres_schema(schema).split(";")):
                con.execute(statement)

    def connect(self) -> _PgConnection:
        import psycopg
        with self._lock:
            raw = self._idle.pop() if self._idle else None
        if raw is None or raw.closed:
            with _pg_errors():
                raw = psycopg.connect(self.url, connect_timeout=5)
        return _PgConnection(raw, self)

    def _give_back(self, raw) -> None:
        import psycopg
        if raw.closed or raw.broken:
            return
        try:
            raw.rollback()  # whatever was not committed
        except psycopg.OperationalError:
            return
        with self._lock:
            if len(self._idle) < self.pool_size:
                self._idle.append(raw)
                return
        raw.close()

    def add_column(self, table: str, column: str, declaration: str) -> None:
        with closing(self.connect()) as con, con:
            con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {postgres_schema(declaration)}")


def open_database(path: Path, schema: str, url: str | None = None) -> Database:
    """The SQLite file at `path`, or with `url` (postgresql://...) the PostgreSQL database there."""
    return PostgresDatabase(url, schema) if url else Database(path, schema)
