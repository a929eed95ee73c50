"""Where NeuronLab's own files are: the pages (templates), styles and scripts (static), the shipped
models and the browser libraries from npm.

From a checkout (or an editable install) they are the repository's folders; from an installed
wheel they are data-only subpackages of `neuronlab` (pyproject.toml maps them without moving
anything). Everything else that reads them asks here.
"""
from __future__ import annotations

import os
import sys
from functools import lru_cache
from importlib import resources
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent

# URL under which the pages load it -> (folder in a checkout, subpackage in a wheel)
VENDOR = {
    "/vendor/swagger-ui": ("node_modules/swagger-ui-dist", "vendor/node_modules/swagger-ui-dist"),
    "/vendor/chartjs": ("node_modules/chart.js/dist", "vendor/node_modules/chart.js/dist"),
}


@lru_cache
def from_checkout() -> bool:
    """True when running from the source tree (a clone, or `pip install -e .`), not a wheel."""
    return (SOURCE / "pyproject.toml").is_file() and (SOURCE / "templates").is_dir() and (SOURCE / "app").is_dir()


def _installed(sub: str) -> Path:
    return Path(str(resources.files("neuronlab").joinpath(sub)))


def where(name: str) -> Path:
    """The folder of "templates", "static" or "models"."""
    if name not in ("templates", "static", "models"):
        raise ValueError(f"no such resource folder: {name}")
    return SOURCE / name if from_checkout() else _installed(name)


def vendor_dirs() -> dict[str, Path]:
    """URL prefix -> folder of each browser library that is present."""
    found = {}
    for url, (checkout, installed) in VENDOR.items():
        folder = SOURCE / checkout if from_checkout() else _installed(installed)
        if folder.is_dir():
            found[url] = folder
    return found


def default_data_dir() -> Path:
    """Where datasets and everything users make go unless NEURONLAB_DATA_DIR says otherwise:
    the checkout's data/ folder, or for an installed package the user's data folder
    ($XDG_DATA_HOME/neuronlab, ~/.local/share/neuronlab; ~/Library/Application Support/NeuronLab
    on macOS; %LOCALAPPDATA%\\NeuronLab on Windows)."""
    if from_checkout():
        return SOURCE / "data"
    return user_data_dir()


def user_data_dir() -> Path:
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / "NeuronLab"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "NeuronLab"
    return Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "neuronlab"


DATA_DIR_HELP = ("the checkout's data/ folder when run from the source tree; installed: "
                 "$XDG_DATA_HOME/neuronlab (~/.local/share/neuronlab; macOS ~/Library/Application Support/NeuronLab; "
                 "Windows %LOCALAPPDATA%\\NeuronLab)")
