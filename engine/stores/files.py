"""Files that are whole or absent: every card, record and photo is written to a temporary file
beside its final name, flushed to the disk (fsync) and renamed over it, so a full disk, a crash or
a kill -9 mid-write leaves the old file (or none), never a half-written one.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import time
from contextlib import suppress
from pathlib import Path
from typing import Callable

DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def is_disk_full(exc: BaseException, folder: Path | None = None) -> bool:
    """The error is the disk (or the user's quota) being full, from a file write or from SQLite.
    SQLite reports some writes on a full disk as a plain I/O error: with `folder` given, such an
    error counts as a full disk when that folder's file system has (almost) no room left."""
    if isinstance(exc, OSError):
        return exc.errno in DISK_FULL_ERRNOS
    if isinstance(exc, sqlite3.Error):
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc):
            return True
        return folder is not None and "I/O error" in str(exc) and nearly_full(folder)
    return False


def nearly_full(folder: Path, room: int = 1 << 20) -> bool:
    try:
        return shutil.disk_usage(folder).free < room
    except OSError:
        return False


def _sync_folder(folder: Path) -> None:
    with suppress(OSError):  # some file systems cannot fsync a folder; the rename is still atomic
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_with(path: Path, write: Callable[[Path], None], mode: int = 0o644) -> Path:
    """Let `write(tmp)` write the file's content to a temporary path, then make it `path` in one
    step. On any error the temporary file is removed and the old `path` (if any) is untouched."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path


def write_bytes(path: Path, data: bytes, mode: int = 0o644) -> Path:
    return write_with(path, lambda tmp: tmp.write_bytes(data), mode)


def write_json(path: Path, value) -> Path:
    return write_bytes(path, (json.dumps(value, indent=2) + "\n").encode())


SHARED_PARTIAL_AGE = 3600.0  # seconds: in a folder other servers write to, younger temporary files may be mid-write


def remove_partial(folder: Path, older_than: float = 0.0) -> int:
    """Delete temporary files a crash left in `folder` (only those not written to for `older_than`
    seconds: where other servers share the folder, a young one is another server's write in
    progress); how many there were."""
    found = list(Path(folder).glob(".*.part")) if Path(folder).is_dir() else []
    removed = 0
    for f in found:
        try:
            if older_than and time.time() - f.stat().st_mtime < older_than:
                continue
            f.unlink()
            removed += 1
        except FileNotFoundError:  # its write just ended
            pass
    return removed


def read_json(path: Path):
    return json.loads(Path(path).read_text())
