"""The database under the stores (projects, class sessions), through SQLAlchemy Core: one SQLite
file (WAL mode, foreign keys on, a fresh connection per call, so any thread may use it), or in
district mode (replicas on several machines) a PostgreSQL server that every replica shares. Each
store declares its tables once (SQLAlchemy `Table`s) and reads and writes them with the same SQL
on either. Also what both stores share: the error they refuse a request with, and how they clean
a name."""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import BigInteger, Column, Connection, ForeignKey, Integer, MetaData, RowMapping, Table, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateColumn

from engine.refusal import Refusal

NAME_LENGTH = 40  # longest display name (projects, classes, students)
MODEL_NAME_LENGTH = 60  # longest model name (a made name: network, data, accuracy, date, rate)

# Every integer column: 64-bit on PostgreSQL (ids up to 2**63 - 1, as the API allows; its INTEGER
# is 32-bit); INTEGER on SQLite (64-bit there), which makes an `id` primary key the rowid.
BIGINT = BigInteger().with_variant(Integer, "sqlite")


def row_id() -> Column:
    """A table's id: 64-bit, made by the database, never used again (with sqlite_autoincrement)."""
    return Column("id", BIGINT, primary_key=True, autoincrement=True)


def part_of(name: str, kind, parent: str) -> Column:
    """A column naming the row (`parent`, "table.column") this row belongs to: deleted with it."""
    return Column(name, kind, ForeignKey(parent, ondelete="CASCADE"), nullable=False)


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


UNAVAILABLE = ("The database (PostgreSQL) is not answering, so nothing could be read or saved (what was saved "
               "before is safe). Try again in a minute; if it lasts, tell whoever runs the server.")


class Database:
    """One database and its tables (`metadata`), made if missing, with the columns a newer version
    added to a database an older version made. `query`, `value`, `write` and `insert` each run in
    a transaction of their own; `transaction()` gives one for several statements. SQL is text with
    named parameters (`WHERE id = :id`); rows are read by name (`row["name"]`, `dict(row)`).

    What goes wrong reaches the stores as: sqlalchemy.exc.IntegrityError for a broken constraint
    (on either database), StoreError 503 for a PostgreSQL that does not answer, and SQLite's own
    error (sqlite3.Error: a full disk among them) for the rest on SQLite."""

    def __init__(self, engine, metadata: MetaData):
        self.engine, self.metadata = engine, metadata
        with self._errors():
            self._make_tables()

    # --- making the tables (servers starting together take turns) ---------------------------

    def _schema_transaction(self):
        """A transaction that holds the database's schema lock (a context manager yielding it)."""
        raise NotImplementedError

    def _make_tables(self) -> None:
        with self._schema_transaction() as con:
            self.metadata.create_all(con)
            looked = inspect(con)
            for table in self.metadata.tables.values():
                have = {c["name"] for c in looked.get_columns(table.name)}
                for column in table.columns:
                    if column.name not in have:
                        self._add_column(con, column)

    def _add_column(self, con: Connection, column: Column) -> None:
        """Add a column that a newer version declares to a table an older version made (it must
        allow NULL or have a default). Called in the schema transaction: one server at a time
        looks and adds, so of servers starting together only the first adds it."""
        table = con.dialect.identifier_preparer.format_table(column.table)
        con.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {CreateColumn(column).compile(dialect=con.dialect)}")

    # --- reading and writing -----------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except IntegrityError:
            raise
        except DBAPIError as exc:
            self._failed(exc)
            raise

    def _failed(self, exc: DBAPIError) -> None:
        """Turn a database error into what the callers know (or return: it goes on as it is)."""

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction: committed at the end of the block, rolled back if it raises."""
        with self._errors(), self.engine.connect() as con:
            con.execution_options(write=True)
            with con.begin():
                yield con

    def query(self, sql: str, **params) -> list[RowMapping]:
        with self._errors(), self.engine.connect() as con:
            return list(con.execute(text(sql), params).mappings())

    def value(self, sql: str, **params):
        """The first column of the first row (a COUNT(*), say); None without rows."""
        with self._errors(), self.engine.connect() as con:
            return con.execute(text(sql), params).scalar()

    def write(self, sql: str, **params) -> int:
        """Run one statement in a transaction; the rows it changed."""
        with self.transaction() as con:
            return con.execute(text(sql), params).rowcount

    def insert(self, table: Table, **values) -> int:
        """Add one row in a transaction; its primary key (the new id)."""
        with self.transaction() as con:
            return insert_row(con, table, **values)


def insert_row(con: Connection, table: Table, **values):
    """Add one row in the transaction `con`; its primary key (the new id)."""
    return con.execute(table.insert().values(**values)).inserted_primary_key[0]


# --- SQLite (the default: one file in the data folder) ---------------------------------------

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


class SqliteDatabase(Database):
    """The SQLite file at `path`. A fresh connection per call (NullPool), so any thread may use
    the database; SQLAlchemy leaves transactions to us: a write transaction is BEGIN IMMEDIATE
    (the write lock first, waiting up to 15 s for it), a read runs on its own."""

    def __init__(self, path: Path, metadata: MetaData):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(URL.create("sqlite", database=str(self.path)), poolclass=NullPool, connect_args={"timeout": 15})
        event.listen(engine, "connect", self._on_connect)
        event.listen(engine, "begin", self._on_begin)
        self._wal_done = False
        super().__init__(engine, metadata)
        # Held open for good: while one connection stays, SQLite keeps its -wal and -shm files
        # (the last connection to close removes them), so reads on a full disk do not need room
        # to make them again.
        self._keeper = engine.raw_connection()

    def _on_connect(self, con: sqlite3.Connection, _record) -> None:
        con.isolation_level = None  # no transaction of the driver's own: BEGIN comes from _on_begin
        if not self._wal_done:
            _wal(con)
            self._wal_done = True
        con.execute("PRAGMA foreign_keys=ON")
        con.execute("PRAGMA synchronous=NORMAL")  # with WAL: safe, one fsync per checkpoint, not per write

    @staticmethod
    def _on_begin(con: Connection) -> None:
        if con.get_execution_options().get("write"):
            con.exec_driver_sql("BEGIN IMMEDIATE")

    @contextmanager
    def _schema_transaction(self) -> Iterator[Connection]:
        with self.transaction() as con:  # BEGIN IMMEDIATE: one process at a time looks and makes
            yield con

    def _failed(self, exc: DBAPIError) -> None:
        if isinstance(exc.orig, sqlite3.Error):
            raise exc.orig from None  # SQLite's own words (a full disk: what the app answers 507 to)


# --- PostgreSQL (district mode with replicas on several machines: NEURONLAB_DATABASE_URL) ---------

class PostgresDatabase(Database):
    """The PostgreSQL database at `url`, shared by every replica: the same tables, the same calls;
    connections are pooled (a new one costs milliseconds), each checked before use, so a server
    that restarted is found again."""

    def __init__(self, url: str, metadata: MetaData, pool_size: int = 8):
        self.url, self.path = url, None
        engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"), pool_size=pool_size,
                               pool_pre_ping=True, connect_args={"connect_timeout": 5})
        super().__init__(engine, metadata)

    @contextmanager
    def _schema_transaction(self) -> Iterator[Connection]:
        with self.transaction() as con:  # replicas starting together: one at a time looks and makes
            con.execute(text("SELECT pg_advisory_xact_lock(7224901)"))
            yield con

    def _failed(self, exc: DBAPIError) -> None:
        import psycopg
        if exc.connection_invalidated or isinstance(exc.orig, psycopg.OperationalError):
            raise StoreError(503, "database_unavailable", UNAVAILABLE) from exc


def open_database(path: Path, metadata: MetaData, url: str | None = None) -> Database:
    """The SQLite file at `path`, or with `url` (postgresql://...) the PostgreSQL database there;
    either way with `metadata`'s tables."""
    return PostgresDatabase(url, metadata) if url else SqliteDatabase(path, metadata)
