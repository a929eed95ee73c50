"""What a school year leaves behind. Clients that never delete leave finished jobs' records and
models nobody named (a name the server made: the card's `made_name`) behind, a few a minute in a
busy class. After `days` they expire: a model only while no class session and no project refers to
it, a job's record only once the job is final. What a person named, shipped models and anything in
use stay. Pure file work: the caller says what is in use (app.services gathers it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.choices import FINAL
from engine.stores import files

DAY = 86400.0


@dataclass
class Swept:
    models: list[str] = field(default_factory=list)   # ids of the models removed
    records: int = 0                                   # job records removed


def expired_models(cards: dict, in_use: set[str], days: float, now: float, folder: Path) -> list[str]:
    """Ids of user models older than `days` (their card file's time) that nobody named and nothing uses."""
    old = []
    for model_id, card in cards.items():
        path = folder / f"{model_id}.json"
        if card.made_name is None or model_id in in_use or not path.exists():
            continue
        if now - path.stat().st_mtime > days * DAY:
            old.append(model_id)
    return sorted(old)


def expire_records(folder: Path, days: float, now: float) -> int:
    """Remove the records of final jobs last written more than `days` ago; how many went."""
    gone = 0
    for path in Path(folder).glob("*.json") if Path(folder).is_dir() else []:
        try:
            if now - path.stat().st_mtime <= days * DAY or files.read_json(path).get("status") not in FINAL:
                continue
            path.unlink()
            gone += 1
        except (OSError, ValueError):  # being written, or gone already: the next sweep sees it
            continue
    return gone


def referenced(texts: list[str | None], ids: set[str]) -> set[str]:
    """The ids among `ids` that a stored row names (a project's model, or one in its results' JSON)."""
    joined = "\n".join(t for t in texts if t)
    return {i for i in ids if i in joined}


def folder_size(folder: Path) -> dict:
    """Bytes and files under `folder`, and per top-level entry (what the admin is shown)."""
    parts, total, count = {}, 0, 0
    for entry in sorted(Path(folder).iterdir()) if Path(folder).is_dir() else []:
        size, n = _size(entry)
        parts[entry.name] = size
        total, count = total + size, count + n
    return {"bytes": total, "files": count, "parts": parts}


def _size(path: Path) -> tuple[int, int]:
    try:
        if path.is_symlink():
            return 0, 0  # a link (the shared MNIST) is not this folder's
        if path.is_file():
            return path.stat().st_size, 1
        sizes = [_size(p) for p in path.iterdir()]
        return sum(s for s, _ in sizes), sum(n for _, n in sizes)
    except OSError:
        return 0, 0
