"""Training jobs against faults (issue 24): a server killed just as a job finishes takes its
training process with it, and a restart reads what the job saved from the disk."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import torch

from app.settings import ROOT
from engine import models
from engine.stores import files, store
from engine.training.jobs import JobManager
from engine.training.worker import JobSpec
from tests.conftest import OWNER, launch, stop
from tests.helpers import alive, descendants, http_json, until

HEADERS = {"X-Owner-Token": OWNER, "Content-Type": "application/json"}
SHORT_JOB = {"architecture": "mnist_recipe", "train_size": 1280, "val_size": 500, "epochs": 1, "start_paused": True}


def call(url: str, method: str = "GET", body: dict | None = None) -> dict:
    return http_json(url, method, body, HEADERS)



def status(url: str, job_id: str) -> dict:
    return call(f"{url}/api/train/{job_id}")


def test_a_server_killed_as_its_job_finishes_takes_the_training_process_along_and_the_restart_says_the_model_was_saved(tmp_path):
    proc, url = launch(tmp_path)
    killed, trainers = False, set()
    try:
        before = descendants(proc.pid)  # the frame reader, multiprocessing's helper
        job = call(f"{url}/api/train", "POST", SHORT_JOB)
        until(lambda: status(url, job["id"])["status"] == "paused", "the job started (paused)", 120)
        trainers = descendants(proc.pid) - before
        assert trainers, "no training process was found"
        call(f"{url}/api/train/{job['id']}/resume", "POST")
        # the server is killed the moment the model is on disk, while the job still sends its last
        # events (results with their images). It is not frozen first: a frozen server reads no events,
        # and on a busy machine a slow job's events fill the pipe before it can save its model.
        cards = until(lambda: [p for p in (tmp_path / "models").glob(f"*-{job['id']}.json")], "the job saved its model", 300)
        proc.kill()
        proc.wait(10)
        killed = True
        until(lambda: not any(alive(pid) for pid in trainers), f"the training process {trainers} ended", 60)
    finally:
        if not killed:
            proc.kill()
            proc.wait(10)
        for pid in trainers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)  # no orphan left behind by a failing test

    model_id = cards[0].stem
    proc, url = launch(tmp_path)
    try:
        after = status(url, job["id"])
        assert after["model_ids"] == [model_id], after
        assert after["status"] == "done", after  # it trained to its end (recorded, or found on disk at the restart)
        assert "nothing had been saved" not in (after["error"] or "")
        assert call(f"{url}/api/models/{model_id}")["training"]["job"] == job["id"]  # and it is served
        results = call(f"{url}/api/train/{job['id']}/results")["results"]
        assert results[0]["model_id"] == model_id and results[0]["test_accuracy"] > 0
    finally:
        stop(proc)


# --- the records a restart finds: reconciled with the models on disk ---------------------------

JOB_ID = "ab" * 16


def saved_model(folder: Path, model_id: str, job_id: str, steps: int, lr: float = 0.01) -> None:
    torch.manual_seed(0)
    module = models.build("mlp_16")
    card = store.new_card(model_id, "Left behind", "mlp_16", "mnist", [str(d) for d in range(10)], module, 0.875,
                          {"learning_rate": lr, "steps": steps, "job": job_id}, owner="owner")
    store.save(folder, card, module)


def a_record(records: Path, status: str = "running", total_steps: int | None = 20, learning_rates=(0.01,)) -> None:
    spec = JobSpec(architecture="mlp_16", learning_rates=list(learning_rates)).public()
    record = {"id": JOB_ID, "spec": spec, "owner": "owner", "address": "local", "created": time.time(),
              "status": status, "latest": {}, "epochs": [], "results": [], "error": None, "finished": None}
    if total_steps is not None:
        record["total_steps"] = total_steps
    records.mkdir(parents=True, exist_ok=True)
    files.write_json(records / f"{JOB_ID}.json", record)


def reopened(tmp_path: Path):
    manager = JobManager(ROOT / "data", tmp_path / "models", records_dir=tmp_path / "jobs")
    try:
        return manager.get(JOB_ID)
    finally:
        manager.close()


def test_a_restart_finds_the_model_a_running_job_saved_and_says_it_is_done(tmp_path):
    a_record(tmp_path / "jobs", total_steps=20)
    saved_model(tmp_path / "models", f"trained-{JOB_ID}", JOB_ID, steps=20)
    job = reopened(tmp_path)
    assert job.status == "done" and job.error is None
    summary = job.summary(None)
    assert summary["model_ids"] == [f"trained-{JOB_ID}"] and summary["test_accuracy"] == [0.875]
    assert job.results[0]["learning_rate"] == 0.01 and job.results[0]["run"] == 0
    # and it is kept so: the next restart reads the same
    assert files.read_json(tmp_path / "jobs" / f"{JOB_ID}.json")["status"] == "done"


def test_a_restart_finds_the_model_a_stopping_job_saved_midway_and_says_it_was_interrupted_with_it(tmp_path):
    a_record(tmp_path / "jobs", total_steps=20)
    saved_model(tmp_path / "models", f"trained-{JOB_ID}", JOB_ID, steps=7)
    job = reopened(tmp_path)
    assert job.status == "interrupted" and "model so far was saved" in job.error
    assert job.summary(None)["model_ids"] == [f"trained-{JOB_ID}"]


def test_a_race_restarted_keeps_the_models_of_each_run_and_ignores_other_jobs_and_half_saved_ones(tmp_path):
    a_record(tmp_path / "jobs", total_steps=20, learning_rates=(0.01, 0.1, 1.0))
    saved_model(tmp_path / "models", f"race-{JOB_ID}-1", JOB_ID, steps=20, lr=0.01)
    saved_model(tmp_path / "models", f"race-{JOB_ID}-2", JOB_ID, steps=20, lr=0.1)
    (tmp_path / "models" / f"race-{JOB_ID}-3.safetensors").write_bytes(b"half")  # killed before its card
    saved_model(tmp_path / "models", f"other-{'cd' * 16}", "cd" * 16, steps=20)
    job = reopened(tmp_path)
    assert job.status == "done"
    assert [(r["run"], r["model_id"], r["learning_rate"]) for r in job.results] == [
        (0, f"race-{JOB_ID}-1", 0.01), (1, f"race-{JOB_ID}-2", 0.1)]


def test_a_restart_with_nothing_saved_still_says_so(tmp_path):
    a_record(tmp_path / "jobs")
    saved_model(tmp_path / "models", f"other-{'cd' * 16}", "cd" * 16, steps=20)
    job = reopened(tmp_path)
    assert job.status == "interrupted" and "nothing had been saved yet" in job.error
    assert job.results == []


# --- the training process dies with its server, whatever starts it --------------------------------

def test_a_job_started_from_a_thread_that_ends_goes_on_training(tmp_path):
    """A dying parent's signal is sent when the thread that started the process ends (Linux): a job
    submitted from a request's worker thread must not die when that thread is retired."""
    manager = JobManager(ROOT / "data", tmp_path, niceness=0)
    try:
        box = {}
        starter = threading.Thread(target=lambda: box.update(job=manager.submit(
            JobSpec(architecture="mlp_16", train_size=640, val_size=500, start_paused=True), "t")))
        starter.start()
        starter.join()
        job = box["job"]
        until(lambda: manager.get(job.id).status == "paused", "the job started", 120)
        manager.command(job.id, "resume")
        until(lambda: manager.get(job.id).status in ("done", "failed"), "the job ended", 120)
        assert manager.get(job.id).status == "done", manager.get(job.id).error
    finally:
        manager.close()


ORPHAN = """
import os, sys, time
from engine.training.jobs import JobManager
from engine.training.worker import JobSpec
manager = JobManager(sys.argv[1], sys.argv[1] + "/models", niceness=0)
job = manager.submit(JobSpec(architecture="mlp_16", train_size=640, val_size=500, start_paused=True), "owner")
while manager.get(job.id).status != "paused":
    time.sleep(0.05)
print(job.process.pid, flush=True)
time.sleep(600)
"""


def test_a_paused_job_dies_with_its_killed_server(tmp_path):
    import subprocess
    import sys
    (tmp_path / "mnist").symlink_to(ROOT / "data" / "mnist", target_is_directory=True)
    server = subprocess.Popen([sys.executable, "-c", ORPHAN, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True)
    try:
        pid = int(server.stdout.readline())
        assert alive(pid)
        server.kill()
        server.wait(10)
        until(lambda: not alive(pid), "the training process ended with its server", 60)
    finally:
        server.kill()
        server.wait(10)
        if "pid" in locals() and alive(pid):
            os.kill(pid, signal.SIGKILL)
