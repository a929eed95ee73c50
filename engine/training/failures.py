"""Why a training job failed, in words a teacher can act on (the job's record and page show it),
instead of an exception's raw text."""
from __future__ import annotations

from engine.stores.files import is_disk_full

DISK_FULL = ("The server's disk filled up, so this job's model could not be saved (what was saved before "
             "is safe). Ask whoever runs the server to free space, then train again; deleting old "
             "models, projects or photos here frees space too.")
PROJECT_GONE = ("The project was deleted while this job was waiting or training, so its photos are gone "
                "and nothing was saved.")


def failure_reason(exc: BaseException, project: str | None = None) -> str:
    """The reason a job that raised `exc` failed. `project`: the project the job trains, if any."""
    if is_disk_full(exc):
        return DISK_FULL
    if isinstance(exc, FileNotFoundError) and project:
        return PROJECT_GONE
    if isinstance(exc, MemoryError):
        return ("The server ran out of memory while training. Try a smaller network, a smaller batch or "
                "fewer training images, or train when fewer jobs run.")
    return f"{type(exc).__name__}: {exc}"
