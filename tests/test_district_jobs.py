"""District mode's training jobs (engine/training/district.py): a real redis-server, two replicas
and an RQ worker (the `district` fixture, conftest.py). Jobs started through replica A are
followed, paused and stopped through B; workers are killed mid-job; a project's job and a class's
fine-tune go through the queue too."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import OWNER
from tests.district import REDIS, drawing_request, gallery, job_events, next_event, post_form, start_worker, wait_for
from tests.helpers import encode, http_json, object_photo, trained

pytestmark = pytest.mark.skipif(not Path(REDIS).exists(), reason="district mode needs Debian's redis-server")

LONG_JOB = {"architecture": "mnist_recipe", "train_size": 55000, "epochs": 5, "batch_size": 32}  # minutes, unless stopped


def test_a_job_started_through_a_is_followed_paused_and_stopped_through_b(district):
    owner = {"X-Owner-Token": OWNER}
    a, b = district["a"], district["b"]
    job = http_json(f"{a}/api/train", "POST", LONG_JOB, owner)
    with job_events(b, job["id"]) as ws:  # B never saw the request: the job lives in Redis
        wait_for(ws, lambda e: e["type"] == "progress")
        paused = http_json(f"{b}/api/train/{job['id']}/pause", "POST", {}, owner)
        assert paused["id"] == job["id"]
        at = wait_for(ws, lambda e: e["type"] == "status" and e["status"] == "paused")
        assert http_json(f"{a}/api/train/{job['id']}")["status"] == "paused"
        step = http_json(f"{a}/api/train/{job['id']}")["step"]
        time.sleep(1.0)
        assert http_json(f"{b}/api/train/{job['id']}")["step"] == step  # paused means paused
        http_json(f"{b}/api/train/{job['id']}", "PATCH", {"learning_rate": 0.05}, owner)
        assert wait_for(ws, lambda e: e["type"] == "learning_rate")["value"] == 0.05
        http_json(f"{b}/api/train/{job['id']}/resume", "POST", {}, owner)
        wait_for(ws, lambda e: e["type"] == "progress" and e["step"] > step)
        with pytest.raises(urllib.error.HTTPError) as foreign:  # another client's token steers nothing
            http_json(f"{b}/api/train/{job['id']}/stop", "POST", {}, {"X-Owner-Token": "f" * 32})
        assert foreign.value.code == 403
        http_json(f"{b}/api/train/{job['id']}/stop", "POST", {}, owner)
        done = wait_for(ws, lambda e: e["type"] == "done")
    assert done["status"] == "stopped" and done["results"] and at["seq"] < done["seq"]
    model_id = done["results"][0]["model_id"]
    assert http_json(f"{a}/api/models/{model_id}")["id"] == model_id  # the worker saved it in the shared folder
    final = http_json(f"{a}/api/train/{job['id']}")
    assert final["status"] == "stopped" and final["model_ids"] == [model_id]
    with job_events(a, job["id"], since=done["seq"] - 1) as again:  # a reconnect resumes where it left off
        assert json.loads(again.recv(timeout=10))["seq"] == done["seq"]
    import redis
    redis.Redis.from_url(district["redis"]).delete(f"neuronlab:job:{job['id']}:events")  # as an hour later
    with job_events(b, job["id"], since=done["seq"]) as later:  # the page still learns how it ended
        last = json.loads(later.recv(timeout=10))
        assert last["type"] == "done" and last["status"] == "stopped"


def test_a_job_stopped_while_queued_never_runs(district):
    busy = http_json(f"{district['a']}/api/train", "POST", LONG_JOB, {"X-Owner-Token": "1" * 32})
    with pytest.raises(urllib.error.HTTPError) as second:  # one active job per owner, across replicas
        http_json(f"{district['b']}/api/train", "POST", LONG_JOB, {"X-Owner-Token": "1" * 32})
    assert second.value.code == 409 and busy["id"] in json.loads(second.value.read())["message"]
    deadline = time.time() + 120  # the one worker has taken the first job (on a busy machine: when it can)
    while http_json(f"{district['a']}/api/train/{busy['id']}")["status"] != "running":
        assert time.time() < deadline
        time.sleep(0.2)
    waiting = http_json(f"{district['a']}/api/train", "POST", LONG_JOB, {"X-Owner-Token": "2" * 32})
    try:
        state = http_json(f"{district['b']}/api/train/{waiting['id']}")
        assert state["status"] == "queued" and state["position"] == 1  # one worker, busy
        http_json(f"{district['b']}/api/train/{waiting['id']}/stop", "POST", {}, {"X-Owner-Token": "2" * 32})
        assert http_json(f"{district['a']}/api/train/{waiting['id']}")["status"] == "stopped"
    finally:
        http_json(f"{district['a']}/api/train/{busy['id']}/stop", "POST", {}, {"X-Owner-Token": "1" * 32})
    deadline = time.time() + 60
    while http_json(f"{district['a']}/api/train/{busy['id']}")["status"] != "stopped":
        assert time.time() < deadline
        time.sleep(0.2)
    time.sleep(1.0)  # the worker is free: the stopped one must not start
    assert http_json(f"{district['a']}/api/train/{waiting['id']}")["status"] == "stopped"


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.mark.parametrize("victim", ["training process", "queue worker", "SIGTERM"])
def test_a_worker_killed_mid_job_fails_the_job_cleanly(district, victim):
    """kill -9 of the process training a job (its horse), or of the RQ worker above it: the job
    ends as failed with a message, promptly; the next job runs on a fresh worker. A worker told
    to shut down (SIGTERM) stops its job first: interrupted, its model saved."""
    owner = {"X-Owner-Token": "3" * 32}
    worker = district["workers"][-1]
    job = http_json(f"{district['a']}/api/train", "POST", LONG_JOB, owner)
    with job_events(district["b"], job["id"]) as ws:
        wait_for(ws, lambda e: e["type"] == "progress")
        horse = children(worker.pid)
        assert horse, "the worker should be training in a child process"
        os.kill(horse[0] if victim == "training process" else worker.pid,
                signal.SIGTERM if victim == "SIGTERM" else signal.SIGKILL)
        # noticed by the worker at once, not by the heartbeat reaper: the bound is under the heartbeat's
        # 60 s (HEARTBEAT_TTL), and generous for a busy machine
        done = wait_for(ws, lambda e: e["type"] == "done", timeout=55)
    if victim == "SIGTERM":
        assert done["status"] == "interrupted" and done["results"] and "shut down" in done["error"]
        assert worker.wait(120) == 0
    else:
        assert done["status"] == "failed" and ("start it again" in done["error"] or "stopped" in done["error"])
    assert http_json(f"{district['b']}/api/train/{job['id']}")["status"] == done["status"]
    if victim != "training process":
        worker.wait(120)
        for pid in horse:  # the orphaned training process ended by itself
            deadline = time.time() + 120
            while Path(f"/proc/{pid}").exists() and time.time() < deadline:
                time.sleep(0.2)
        district["workers"].append(start_worker(district["redis"], district["data"]))
    quick = trained(district["b"], {"architecture": "mlp_16", "train_size": 640, "val_size": 500}, owner)
    assert quick["status"] == "done"


def test_a_job_past_the_time_limit_stops_and_keeps_its_model(district):
    owner = {"X-Owner-Token": "4" * 32}
    job = http_json(f"{district['a']}/api/train", "POST", LONG_JOB, owner)
    with job_events(district["b"], job["id"]) as ws:
        done = wait_for(ws, lambda e: e["type"] == "done", timeout=90)  # the fixture's limit: 20 s
    assert done["status"] == "stopped" and "time limit" in done["reason"] and done["results"]


@pytest.mark.parametrize("job_id", ["x" * 5000, "..%2F..%2Fetc", "%00", "0" * 31 + "g", "A" * 32])
def test_odd_job_ids_are_refused_not_looked_up(district, job_id):
    with pytest.raises(urllib.error.HTTPError) as refused:
        http_json(f"{district['b']}/api/train/{job_id}")
    assert refused.value.code == 404


def test_a_project_trained_through_a_is_followed_through_b_and_recorded_once(district):
    """A teach-your-own project's job goes through the queue too: B knows it trains, follows it,
    and the project gets its model once, whichever replica heard the end first."""
    owner = {"X-Owner-Token": "5" * 32}
    a, b = district["a"], district["b"]
    p = http_json(f"{a}/api/projects", "POST", {"name": "Ball or box", "classes": ["ball", "box"]}, owner)
    rng = np.random.default_rng(7)
    for kind, c in enumerate(p["classes"]):
        photos = [("images", f"p{i}.jpg", encode(object_photo(kind, rng), "JPEG", quality=88)) for i in range(12)]
        post_form(f"{a}/api/projects/{p['id']}/samples", {"class_id": c["id"]}, photos, owner)
    job = http_json(f"{a}/api/projects/{p['id']}/train", "POST", {"method": "scratch", "epochs": 10}, owner)
    assert http_json(f"{b}/api/projects/{p['id']}", headers=owner)["job"]["id"] == job["id"]
    with job_events(b, job["id"]) as ws:
        done = wait_for(ws, lambda e: e["type"] == "done")
    assert done["status"] == "done"
    deadline = time.time() + 10
    while (project := http_json(f"{b}/api/projects/{p['id']}", headers=owner)).get("result") is None:
        assert time.time() < deadline, project
        time.sleep(0.2)
    result = project["result"]
    assert result["model_id"] == done["results"][0]["model_id"] and result["labels"] == ["ball", "box"]
    assert project["job"] is None and http_json(f"{a}/api/projects/{p['id']}", headers=owner)["model_id"] == result["model_id"]


def test_a_class_fine_tune_asked_on_b_is_done_by_a_worker_and_shown_on_a(district):
    """The teacher fine-tunes through replica B; a training worker tunes (the replicas' cores read
    live frames); the new model reads the class's drawings, and A's gallery gets the snapshot."""
    a, b = district["a"], district["b"]
    session = http_json(f"{a}/api/sessions", "POST", {}, {"X-Owner-Token": OWNER})
    code, teacher = session["code"], {"X-Teacher-Key": session["teacher_key"]}
    for i in range(3):  # the class's "4", drawn like a 9, labelled 4 by its students
        student = http_json(f"{a}/api/sessions/{code}/students", "POST", {"name": f"S{i}"})
        for slant in (-0.3, 0.0, 0.3):
            d = drawing_request(a, code, student["student_key"], "9", slant=slant, width=18 + 4 * i)
            http_json(f"{a}/api/sessions/{code}/drawings/{d['id']}/label", "PUT", {"label": 4},
                      {"X-Student-Key": student["student_key"]})
            http_json(f"{b}/api/sessions/{code}/drawings/{d['id']}/dataset", "PUT", {"on": True}, teacher)
    with gallery(a, code, session["teacher_key"]) as ws:
        next_event(ws, "snapshot")
        report = http_json(f"{b}/api/sessions/{code}/finetune", "POST", {}, teacher, timeout=120)
        tuned = next_event(ws, "snapshot")
    assert report["class_accuracy_after"] >= 0.8 and tuned["finetune"]["model_id"] == report["model_id"]
    assert sum(d["guess"] == "4" for d in tuned["drawings"]) >= 7  # read again with the tuned model
    assert http_json(f"{a}/api/models/{report['model_id']}")["training"]["from"] == "digits"
    import redis
    from rq.registry import FinishedJobRegistry
    done = FinishedJobRegistry("neuronlab-finetune", connection=redis.Redis.from_url(district["redis"]))
    assert done.count >= 1  # a worker did it, not the replica
