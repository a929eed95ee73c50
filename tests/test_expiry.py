"""What a school year leaves behind expires (issue 24, item 7): trained models nobody named and
finished jobs' records, after NEURONLAB_EXPIRE_DAYS, unless a class session or project uses them;
the admin sees the data folder's size."""
from __future__ import annotations

import os
import time
from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from engine import models
from engine.stores import expiry, files, store

OLD = time.time() - 40 * expiry.DAY  # past the 30 days by default
ADMIN = "an-admin-key-for-these-tests-0123456789"


def trained(folder: Path, model_id: str, made: bool, age: float = OLD) -> None:
    """A model as a job leaves it: card and weights, named by the server (`made`) or by a person."""
    module = models.build("mlp_16")
    parts = {"network": "MLP 784-16-10", "layers": 0, "data": "MNIST", "accuracy": 0.9, "trained": age, "lr": None}
    card = store.new_card(model_id, "MLP 784-16-10 · MNIST · 90.0%" if made else "Our digits", "mlp_16", "mnist",
                          [str(d) for d in range(10)], module, 0.9, {}, owner="f" * 64, made_name=parts if made else None)
    store.save(folder, card, module)
    for path in folder.glob(f"{model_id}*"):
        os.utime(path, (age, age))


def record(folder: Path, job_id: str, status: str, age: float = OLD) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    files.write_json(folder / f"{job_id}.json", {"id": job_id, "status": status})
    os.utime(folder / f"{job_id}.json", (age, age))


def test_old_unnamed_unused_models_and_final_records_expire_the_rest_stays(settings):
    models_dir, jobs = settings.data_dir / "models", settings.data_dir / "jobs"
    trained(models_dir, "nobody-named-me", made=True)
    trained(models_dir, "a-person-named-me", made=False)
    trained(models_dir, "used-by-a-session", made=True)
    trained(models_dir, "used-by-a-project", made=True)
    trained(models_dir, "made-yesterday", made=True, age=time.time() - expiry.DAY)
    record(jobs, "a" * 32, "done")
    record(jobs, "b" * 32, "running")  # not final: a restart reconciles it, never the sweep
    record(jobs, "c" * 32, "failed", age=time.time() - expiry.DAY)
    settings = settings.model_copy(update={"admin_key": ADMIN})
    quiet = settings.model_copy(update={"expire_days": 0})  # no sweep at start: this test sweeps when ready
    with TestClient(create_app(quiet), headers={"X-Admin-Key": ADMIN}) as client:
        services = client.app.state.services
        session = client.post("/api/sessions", json={"model": "used-by-a-session"})
        assert session.status_code == 201, session.text
        project = services.projects.create("Santa or not", ["santa", "not santa"])
        services.projects.set_model(project["id"], "used-by-a-project", {"accuracy": 0.9})

        swept = services.sweep(settings)
        assert swept.models == ["nobody-named-me"] and swept.records == 1
        kept = set(services.registry.user_ids)
        assert {"a-person-named-me", "used-by-a-session", "used-by-a-project", "made-yesterday"} <= kept
        assert "nobody-named-me" not in kept and not list(models_dir.glob("nobody-named-me*"))
        assert sorted(p.stem for p in jobs.glob("*.json")) == ["b" * 32, "c" * 32]
        assert client.get("/api/models/nobody-named-me").status_code == 404
        assert client.get("/api/models/used-by-a-session").status_code == 200

        # the admin sees what the data folder holds; nobody else does
        seen = client.get("/api/admin/storage").json()
        assert seen["bytes"] > 0 and seen["parts"]["models"] > 0 and seen["expire_days"] == 0
        assert "mnist" not in seen["parts"] or seen["parts"]["mnist"] == 0  # a link to the shared data is not ours
        refused = client.get("/api/admin/storage", headers={"X-Admin-Key": ""})
        assert refused.status_code == 403 and refused.json()["error"] == "not_admin"


def test_expiry_can_be_turned_off_and_the_server_sweeps_at_start(settings):
    trained(settings.data_dir / "models", "nobody-named-me", made=True)
    with TestClient(create_app(settings.model_copy(update={"expire_days": 0}))) as client:
        assert client.app.state.services.sweep(client.app.state.settings).models == []
        assert "nobody-named-me" in client.app.state.services.registry.user_ids
    with TestClient(create_app(settings)) as client:  # the sweep at start, off the event loop
        deadline = time.time() + 60
        while "nobody-named-me" in client.app.state.services.registry.user_ids:
            assert time.time() < deadline, "the sweep at start did not run"
            time.sleep(0.1)
