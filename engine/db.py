"""The embedded database under the stores (projects, class sessions): one SQLite file, WAL mode,
foreign keys on, a fresh connection per call, so any thread may use it; writes are transactions."""
from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path


class Database:
    def __init__(self, path: Path, schema: str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self.connect()) as con:
            con.execute("PRAGMA journal_mode=WAL")
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
        """Add a column that a newer version needs to a database an older version made."""
        with closing(self.connect()) as con, con:
            if column not in [r["name"] for r in con.execute(f"PRAGMA table_info({table})")]:
                con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def query(self, sql: str, *args) -> list[sqlite3.Row]:
        with closing(self.connect()) as con:
            return con.execute(sql, args).fetchall()

    def write(self, sql: str, *args) -> int:
        """Run one statement in a transaction; the new row's id."""
        with closing(self.connect()) as con, con:
            return con.execute(sql, args).lastrowid
