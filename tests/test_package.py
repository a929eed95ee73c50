"""`pip install .` gives a package that serves on its own: a wheel built from the checkout,
installed into a fresh virtual environment, serves the pages, static files, browser libraries and
shipped models from its installed files, with the source tree nowhere on its path."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

from app.settings import ROOT

from .conftest import free_port, stop

SOURCES = ["pyproject.toml", "README.md", "app", "engine", "neuronlab", "templates", "static", "models",
           "node_modules/chart.js", "node_modules/swagger-ui-dist"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed; its dependencies are the project's .venv's (a .pth file),
    nothing is fetched."""
    work = tmp_path_factory.mktemp("package")
    src = work / "src"  # built from a copy: the build's own folders stay out of the checkout
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.map"))
        elif (ROOT / name).exists():
            src.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    wheels = work / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(src)], check=True, timeout=300, cwd=work)
    (wheel,) = wheels.glob("neuronlab-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "neuronlab-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch, FastAPI... from .venv
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", "--no-index",
                    str(wheel)], check=True, timeout=300, cwd=work)
    return venv


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEURONLAB_", "PYTHON"))}
    return {**env, "NEURONLAB_INFERENCE_PROCESSES": "0", **extra}


def test_the_installed_package_uses_its_own_files(installed, tmp_path):
    probe = ("import app, neuronlab, app.resources as r; "
             "print(app.__file__); print(r.from_checkout()); print(r.where('templates')); print(r.default_data_dir())")
    done = subprocess.run([str(installed / "bin" / "python"), "-c", probe], cwd=tmp_path, env=clean_env(HOME=str(tmp_path)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    app_file, checkout, templates, data = done.stdout.split("\n")[:4]
    assert app_file.startswith(str(installed)) and checkout == "False"
    assert templates.startswith(str(installed)) and (Path(templates) / "base.html").is_file()
    assert data == str(tmp_path / ".local" / "share" / "neuronlab")  # writable, never inside the package
    version = subprocess.run([str(installed / "bin" / "neuronlab"), "--version"], cwd=tmp_path, env=clean_env(),
                             capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("neuronlab ")


def test_the_installed_package_serves(installed, tmp_path):
    port = free_port()
    home = tmp_path / "home"  # the default data folder (no --data): under the user's data folder
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen([str(installed / "bin" / "neuronlab"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=tmp_path, env=clean_env(HOME=str(home), XDG_DATA_HOME=str(home / "share")),
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "server.log").read_text()
                time.sleep(0.2)
        else:
            pytest.fail("the installed server did not start: " + (tmp_path / "server.log").read_text())
        for path, what in [("/", b"NeuronLab"), ("/draw", b"<canvas"), ("/static/favicon.svg", b"<svg"),
                           ("/vendor/chartjs/chart.umd.min.js", b"Chart"), ("/vendor/swagger-ui/swagger-ui-bundle.js", b"")]:
            with urllib.request.urlopen(url + path, timeout=20) as r:
                assert r.status == 200 and what in r.read(), path
        with urllib.request.urlopen(url + "/api/models", timeout=20) as r:
            models = {m["id"] for m in json.loads(r.read())["models"]}
        assert {"digits", "fashion"} <= models
        assert (home / "share" / "neuronlab").is_dir()
        assert f"Data folder:    {home / 'share' / 'neuronlab'}" in (tmp_path / "server.log").read_text()
    finally:
        stop(proc)
        log.close()
