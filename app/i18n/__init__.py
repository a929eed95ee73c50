"""The interface text, per language `app/i18n/<lang>.json` (key -> text) and any number of parts
beside it, `<lang>.<area>.json` (one per lesson area, so that each area's texts live together), read
as one table; a key is in one file only. English is complete; another language may leave keys out,
and English is used for them."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from fastapi import Request

FOLDER = Path(__file__).parent
LANGUAGES = [("en", "English"), ("es", "Español")]
CODES = [code for code, _ in LANGUAGES]

SHORTCUTS = {  # page -> its keys, in order; what each does is text "keys.<page>.<n>"
    "/draw": ["C, R", "U, Ctrl+Z"], "/classify": ["Space", "C"], "/teach": ["1 … 9 (hold)"],
    "/descent": ["Space", "R", "↑ →  ↓ ←"], "/filters": ["Space", "R"], "/session": ["G", "M"],
    "/train": ["Space", "P", "↑ →  ↓ ←"], "/join": ["U", "C", "N"], "/neuron": ["Space", "R"],
    "common": ["?", "Shift+P", "Page Down, Page Up"],
}


def files(lang: str) -> list[Path]:
    """The language's files: `<lang>.json`, then its parts `<lang>.<area>.json` by name."""
    return [FOLDER / f"{lang}.json", *sorted(FOLDER.glob(f"{lang}.*.json"))]


@lru_cache
def table(lang: str) -> dict[str, str]:
    """The language's own texts, from all its files."""
    merged: dict[str, str] = {}
    for path in files(lang):
        if path.is_file():
            merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


@lru_cache
def strings(lang: str) -> dict[str, str]:
    english = table("en")
    return english if lang == "en" else {**english, **table(lang)}


def choose(request: Request) -> str:
    """?lang=, else the cookie the language menu sets, else the browser's first known language."""
    for asked in (request.query_params.get("lang"), request.cookies.get("neuronlab_lang")):
        if asked in CODES:
            return asked
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in CODES:
            return code
    return "en"


def translator(lang: str):
    table = strings(lang)
    return lambda key, fallback=None: table.get(key, fallback if fallback is not None else key)


def shortcuts(lang: str, path: str) -> list[tuple[str, str]]:
    t = translator(lang)
    return [(keys, t(f"keys.{page}.{i}")) for page in (path, "common")
            for i, keys in enumerate(SHORTCUTS.get(page, []))]
