"""Trust: no fault loses data or stops the server from starting (issue 11).

A full disk is a real one: a small tmpfs mounted for the test (the tests run as root, as CI does),
filled up by a file; the app under test keeps its data there.
"""
from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import ROOT, Settings
from engine import datasets, models
from engine.stores import files, store
from tests.conftest import OWNER
from tests.helpers import encode, object_photo


@pytest.fixture
def small_disk(tmp_path):
    """A 6 MiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True)
    assert done.returncode == 0, f"these tests mount a small tmpfs as root: {done.stderr.decode()}"
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full; returns it (delete it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for chunk in (1 << 20, 1 << 12, 1):  # big pieces, then ever smaller ones for the last bytes
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def app_on(disk: Path) -> TestClient:
    data = disk / "data"
    data.mkdir(exist_ok=True)
    link = data / "mnist"
    if not link.exists():
        link.symlink_to(datasets.locate("mnist", ROOT / "data"), target_is_directory=True)
    settings = Settings(data_dir=data, models_dir=ROOT / "models", inference_processes=0)
    return TestClient(create_app(settings), headers={"X-Owner-Token": OWNER})


def tiny_card(model_id: str, owner: str | None = None) -> store.ModelCard:
    return store.ModelCard(id=model_id, name="Tiny", task="digits", dataset="mnist", labels=list("0123456789"),
                           architecture="mlp_16", preprocess="digit", owner=owner)


def jpeg(img) -> bytes:
    return encode(img, "JPEG", quality=90)


def test_a_model_saved_on_a_full_disk_leaves_no_file_behind(small_disk):
    folder = small_disk / "models"
    folder.mkdir()
    filler = fill(small_disk)
    with pytest.raises(OSError) as raised:
        store.save(folder, tiny_card("tiny"), models.build("mlp_16"))
    assert files.is_disk_full(raised.value)
    assert list(folder.iterdir()) == []  # neither a 0-byte card nor half the weights
    filler.unlink()
    store.save(folder, tiny_card("tiny"), models.build("mlp_16"))
    assert store.ModelRegistry([folder]).card("tiny").name == "Tiny"


def test_empty_half_written_and_foreign_cards_are_skipped_at_start(settings, caplog):
    folder = settings.data_dir / "models"
    store.save(folder, tiny_card("good"), models.build("mlp_16"))
    for name, text in [("empty", ""), ("half", '{"id": "half", "name": "Ha'), ("list", "[1, 2]"),
                       ("other", '{"id": "somebody-else", "name": "x"}')]:
        (folder / f"{name}.safetensors").write_bytes((folder / "good.safetensors").read_bytes())
        (folder / f"{name}.json").write_text(text)
    (folder / ".good.json.part").write_text("{")  # what a kill -9 mid-write leaves
    with caplog.at_level(logging.WARNING, logger="neuronlab"), TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        ids = {m["id"] for m in client.get("/api/models").json()["models"]}
    assert "good" in ids and not ids & {"empty", "half", "list", "other", "somebody-else"}
    skipped = " ".join(r.getMessage() for r in caplog.records)
    assert all(f"{name}.json" in skipped for name in ("empty", "half", "list", "other"))
    assert not (folder / ".good.json.part").exists()


def test_writes_replace_whole_files_or_nothing(tmp_path, monkeypatch):
    path = tmp_path / "card.json"
    files.write_json(path, {"v": 1})

    def no_space(*_):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", no_space)  # the disk fills while the new version is flushed
    with pytest.raises(OSError):
        files.write_json(path, {"v": 2})
    assert files.read_json(path) == {"v": 1} and [p.name for p in tmp_path.iterdir()] == ["card.json"]


def test_a_full_disk_answers_507_keeps_what_was_saved_and_deletes_still_free_space(small_disk):
    rng = np.random.default_rng(0)
    with app_on(small_disk) as client:
        project = client.post("/api/projects", json={"name": "Balls", "classes": ["ball", "box"]}).json()
        pid, ball = project["id"], project["classes"][0]["id"]
        photos = [("images", (f"{i}.jpg", jpeg(object_photo(0, rng)), "image/jpeg")) for i in range(3)]
        assert client.post(f"/api/projects/{pid}/samples", data={"class_id": ball}, files=photos).status_code == 201
        code = client.post("/api/sessions", json={}).json()["code"]
        filler = fill(small_disk)

        batch = [("images", (f"{i}.jpg", jpeg(object_photo(1, rng)), "image/jpeg")) for i in range(6)]
        full = client.post(f"/api/projects/{pid}/samples", data={"class_id": ball}, files=batch)
        assert full.status_code == 507 and full.json()["error"] == "disk_full", full.text
        assert "disk is full" in full.json()["message"]
        kept = client.get(f"/api/projects/{pid}").json()
        assert kept["classes"][0]["count"] == 3  # the batch kept none of itself
        on_disk = sorted(p.name for p in (small_disk / "data" / "projects" / pid).iterdir())
        samples = kept["classes"][0]["samples"]
        assert on_disk == sorted([f"{i}.jpg" for i in samples] + [f"{i}.imagenet.f32" for i in samples])  # no orphan, no .part
        assert client.get(f"/api/projects/{pid}/samples/{kept['classes'][0]['samples'][0]}.jpg").status_code == 200

        for _ in range(3):  # the database may still find room in its log for a row or two
            joined = client.post(f"/api/sessions/{code}/students", json={"name": "Ada " + uuid.uuid4().hex[:6]})
            assert joined.status_code in (201, 507), joined.text
        assert client.get("/api/models").status_code == 200  # reads still work

        sample = kept["classes"][0]["samples"][0]
        assert client.delete(f"/api/projects/{pid}/samples/{sample}").status_code == 204
        assert client.delete(f"/api/projects/{pid}").status_code == 204  # deletes work on a full disk
        assert not (small_disk / "data" / "projects" / pid).exists()
        filler.unlink()
        again = client.post("/api/projects", json={"name": "Again", "classes": ["a", "b"]})
        assert again.status_code == 201


def test_a_disk_error_that_is_not_a_full_disk_stays_a_logged_500(client, monkeypatch):
    from engine.stores import projects

    def broken(*_args, **_kwargs):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(projects.ProjectStore, "create", broken)
    response = client.post("/api/projects", json={"name": "x"})
    assert response.status_code == 500 and response.json()["error"] == "internal"


SAVER = """
import sys
sys.path.insert(0, {root!r})
from engine import models
from engine.stores import store
card = store.ModelCard(id="busy", name="Busy", task="digits", dataset="mnist", labels=list("0123456789"),
                       architecture="custom", preprocess="digit", layers=[{{"type": "dense", "units": 2048}}])
net = models.build(card.layers)
print("ready", flush=True)
while True:  # saved again and again, as a busy server saves models, until killed mid-write
    store.save({folder!r}, card, net)
"""


def test_kill_9_in_the_middle_of_saving_a_model_leaves_a_whole_model(tmp_path):
    folder = tmp_path / "models"
    saver = subprocess.Popen([sys.executable, "-c", SAVER.format(root=str(ROOT), folder=str(folder))],
                             stdout=subprocess.PIPE)
    assert saver.stdout.readline().strip() == b"ready"
    deadline = time.time() + 20
    while not (folder / "busy.json").exists() and time.time() < deadline:  # one whole save first
        time.sleep(0.001)
    while not list(folder.glob(".*.part")) and time.time() < deadline:  # then catch it mid-write
        time.sleep(0.001)
    saver.send_signal(signal.SIGKILL)
    saver.wait()
    registry = store.ModelRegistry([folder])  # what a restart does
    model = registry.get("busy")  # whole: the card reads and the weights load into the network
    assert model.card.name == "Busy" and model.module[-1].out_features == 10
    assert not list(folder.glob(".*.part"))
