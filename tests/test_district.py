"""District mode (NEURONLAB_REDIS_URL): several stateless uvicorn replicas sharing one data folder
and a real redis-server (Debian's, started here). Students post to replica A; the teacher's
gallery socket on replica B sees it live, a reconnect gets the snapshot; a model made through A
is usable, renamed and deleted through B."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from websockets.sync.client import connect

from app.settings import ROOT
from engine import datasets
from tests.conftest import OWNER, free_port, launch, stop
from tests.helpers import ARTIFACTS, draw_digit, encode, http_json, object_photo, stroke, trained

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
ADMIN = "district-admin-key-0123456789"
pytestmark = pytest.mark.skipif(not Path(REDIS).exists(), reason="district mode needs Debian's redis-server")


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    """A throwaway redis-server on a free port (no persistence); waits until it answers PING."""
    port = free_port()
    proc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            return proc, f"redis://127.0.0.1:{port}/0"
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def start_worker(url: str, data: Path) -> subprocess.Popen:
    """A district training worker (RQ), as scripts/district.sh starts it."""
    return subprocess.Popen([sys.executable, "-m", "engine.training.district", "--redis", url, "--data-dir", str(data)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=(data / "worker.log").open("ab"))


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    """Redis, two replicas, A and B, on one shared data folder, and a training worker."""
    shared = tmp_path_factory.mktemp("shared")
    redis_proc, url = start_redis(shared)
    env = {"NEURONLAB_REDIS_URL": url, "NEURONLAB_ADMIN_KEY": ADMIN, "NEURONLAB_TRAINING_TIME_LIMIT": "20"}
    a, url_a = launch(shared, env)
    b, url_b = launch(shared, env)
    workers = [start_worker(url, shared)]
    yield {"a": url_a, "b": url_b, "redis": url, "data": shared, "workers": workers}
    for proc in (a, b, *workers):
        stop(proc)
    redis_proc.terminate()
    redis_proc.wait(10)


def two_free_ports() -> int:
    """A port that is free with the one after it (the district script's two replicas)."""
    while True:
        port = free_port()
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


def post_form(url: str, fields: dict, files: list[tuple[str, str, bytes]], headers: dict | None = None) -> dict:
    """A multipart POST to a real server (fields, then files as (field, file name, JPEG or PNG bytes))."""
    boundary = "districtboundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    for field, name, data in files:
        kind = "image/png" if name.endswith(".png") else "image/jpeg"
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
                     f"Content-Type: {kind}\r\n\r\n".encode() + data + b"\r\n")
    return http_json(url, "POST", raw=b"".join(parts) + f"--{boundary}--\r\n".encode(),
                     ctype=f"multipart/form-data; boundary={boundary}", headers=headers)


def drawing_request(url: str, code: str, key: str, digit: str, **style) -> dict:
    return post_form(f"{url}/api/sessions/{code}/drawings", {}, [("image", "d.png", encode(draw_digit(digit, **style)))],
                     {"X-Student-Key": key})


def gallery(url: str, code: str, key: str):
    ws = connect(url.replace("http", "ws") + f"/ws/sessions/{code}", open_timeout=10, legacy=True)
    ws.send(json.dumps({"key": key}))
    return ws


def next_event(ws, kind: str, timeout: float = 10) -> dict:
    deadline = time.time() + timeout
    while True:
        event = json.loads(ws.recv(timeout=max(deadline - time.time(), 0.01)))
        if event["type"] == kind:
            return event


def test_students_on_replica_a_are_seen_live_by_the_teacher_on_replica_b(district):
    owner = {"X-Owner-Token": OWNER}
    session = http_json(f"{district['a']}/api/sessions", "POST", {}, owner)
    code, teacher_key = session["code"], session["teacher_key"]
    assert http_json(f"{district['b']}/api/sessions/{code}")["code"] == code  # one shared store
    with gallery(district["b"], code, teacher_key) as ws:
        assert next_event(ws, "snapshot")["drawings"] == []
        ada = http_json(f"{district['a']}/api/sessions/{code}/students", "POST", {"name": "Ada"})
        assert next_event(ws, "students")["count"] == 1
        drawn = drawing_request(district["a"], code, ada["student_key"], "7")
        event = next_event(ws, "drawing")
        assert event["drawing"]["id"] == drawn["id"] and event["drawing"]["student"] == "Ada"
        # the teacher's switch, made on B, reaches a gallery on A as well
        with gallery(district["a"], code, teacher_key) as on_a:
            next_event(on_a, "snapshot")
            http_json(f"{district['b']}/api/sessions/{code}", "PATCH", {"reveal": False}, {"X-Teacher-Key": teacher_key})
            assert next_event(on_a, "reveal")["reveal"] is False
            assert next_event(ws, "reveal")["reveal"] is False
    with gallery(district["b"], code, teacher_key) as again:  # a reconnect gets the snapshot, from any replica
        snapshot = next_event(again, "snapshot")
        assert [d["id"] for d in snapshot["drawings"]] == [drawn["id"]] and snapshot["reveal"] is False


def test_a_gallery_is_told_to_reconnect_when_redis_goes_away(tmp_path):
    """Events published while a replica's Redis link is down would be lost: its galleries are closed
    with 1012 (the page reconnects and gets a snapshot) rather than left silently stale."""
    redis_proc, url = start_redis(tmp_path)
    server, base = launch(tmp_path, {"NEURONLAB_REDIS_URL": url, "NEURONLAB_ADMIN_KEY": ADMIN})
    try:
        session = http_json(f"{base}/api/sessions", "POST", {}, {"X-Owner-Token": OWNER})
        with gallery(base, session["code"], session["teacher_key"]) as ws:
            next_event(ws, "snapshot")
            redis_proc.kill()
            redis_proc.wait()
            from websockets.exceptions import ConnectionClosed
            with pytest.raises(ConnectionClosed) as closed:
                next_event(ws, "never", timeout=10)
            assert closed.value.rcvd.code == 1012
        # without Redis the session itself still answers (it lives in the shared database)
        assert http_json(f"{base}/api/sessions/{session['code']}")["code"] == session["code"]
        for method, path, body in (("POST", "/api/train", {"architecture": "mlp_16"}), ("GET", "/api/train/" + "a" * 32, None)):
            with pytest.raises(urllib.error.HTTPError) as refused:  # the queue is in Redis: 503, try again
                http_json(base + path, method, body, {"X-Owner-Token": OWNER})
            assert refused.value.code == 503 and "Redis" in json.loads(refused.value.read())["message"]
    finally:
        stop(server)
        redis_proc.kill()


def test_a_model_made_through_a_is_used_renamed_and_deleted_through_b(district):
    owner = {"X-Owner-Token": OWNER}
    model_id = trained(district["a"], {"architecture": "mlp_16", "train_size": 640, "val_size": 500}, owner)["model_ids"][0]
    a, b = district["a"], district["b"]
    assert http_json(f"{b}/api/models/{model_id}")["id"] == model_id  # B finds it in the shared folder
    assert model_id in [m["id"] for m in http_json(f"{b}/api/models", headers=owner)["models"]]
    http_json(f"{b}/api/models/{model_id}", "PATCH", {"name": "renamed on B"}, owner)
    assert http_json(f"{a}/api/models/{model_id}")["name"] == "renamed on B"  # A sees the new card
    http_json(f"{b}/api/models/{model_id}", "DELETE", headers=owner)
    for url in (a, b):
        with pytest.raises(urllib.error.HTTPError) as gone:
            http_json(f"{url}/api/models/{model_id}")
        assert gone.value.code == 404
        assert model_id not in [m["id"] for m in http_json(f"{url}/api/models", headers=owner)["models"]]


@pytest.mark.parametrize("model_id", ["../sessions/sessions", "..%2F..%2Fetc%2Fpasswd", "a" * 300, "digits.json", "%00"])
def test_odd_model_ids_find_nothing_in_the_shared_folder(district, model_id):
    with pytest.raises(urllib.error.HTTPError) as refused:
        http_json(f"{district['b']}/api/models/{model_id}")
    assert refused.value.code in (404, 422)


def test_the_district_command_serves_a_class_through_nginx_and_stops_cleanly(tmp_path, browser):
    """scripts/district.sh as the README gives it: Redis, two replicas, two workers and nginx; a
    student's drawing posted through the proxy reaches the teacher's gallery socket through the
    proxy; in chromium, the teacher's page through nginx shows two students who draw on one replica
    each; a training job through the proxy; SIGTERM stops every process it started."""
    port = free_port()
    env = {**os.environ, "NEURONLAB_PORT": str(port), "NEURONLAB_DISTRICT_DIR": str(tmp_path / "run"),
           "NEURONLAB_REDIS_PORT": str(free_port()), "NEURONLAB_REPLICA_PORT": str(two_free_ports()),
           "NEURONLAB_DATA_DIR": str(tmp_path / "data")}
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mnist").symlink_to(datasets.locate("mnist", ROOT / "data"), target_is_directory=True)
    env.pop("NEURONLAB_REDIS_URL", None)
    script = subprocess.Popen(["bash", "scripts/district.sh"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=(tmp_path / "district.log").open("wb"), start_new_session=False)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                http_json(f"{base}/healthz", timeout=1)
                break
            except OSError:
                assert script.poll() is None and time.time() < deadline, (tmp_path / "district.log").read_text()
                time.sleep(0.3)
        session = http_json(f"{base}/api/sessions", "POST", {}, {"X-Owner-Token": OWNER})
        code = session["code"]
        with gallery(base, code, session["teacher_key"]) as ws:
            next_event(ws, "snapshot")
            for name in ("Ada", "Bo", "Cy"):
                student = http_json(f"{base}/api/sessions/{code}/students", "POST", {"name": name})
                drawn = drawing_request(base, code, student["student_key"], "3")
                assert next_event(ws, "drawing")["drawing"]["id"] == drawn["id"]
        with pytest.raises(urllib.error.HTTPError) as foreign:  # a foreign page, through the proxy
            http_json(f"{base}/api/sessions", "POST", {}, {"X-Owner-Token": OWNER, "Origin": "http://evil.example"})
        assert foreign.value.code == 403
        # a training job through the proxy, followed request after request, whichever replica answers
        state = trained(base, {"architecture": "mlp_16", "train_size": 640, "val_size": 500}, {"X-Owner-Token": OWNER})
        assert state["status"] == "done"
        # bypass_csp: Playwright's wait_for_function evaluates its text (the CSP itself is tested elsewhere)
        teacher = browser.new_context(viewport={"width": 1280, "height": 720}, bypass_csp=True).new_page()
        teacher.goto(base + "/session")  # through nginx: its gallery socket is on one of the replicas
        teacher.click("#start")
        teacher.wait_for_function("document.getElementById('code').textContent.length === 5")
        code = teacher.locator("#code").text_content()
        first = int(env["NEURONLAB_REPLICA_PORT"])
        for i, name in enumerate(("Ada", "Bo")):  # one student on each replica: one of them is on the other
            student = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True).new_page()
            student.goto(f"http://127.0.0.1:{first + i}/join?code={code}")
            student.fill("#join-name", name)
            student.click("#join-form button[type=submit]")
            student.wait_for_selector("#student-panel:not([hidden])")
            stroke(student, [(0.5, 0.1), (0.5, 0.9)])  # a 1
            student.wait_for_selector("#label-box:not([hidden])")
        teacher.wait_for_function("document.querySelectorAll('#gallery .tile').length === 2", timeout=15000)
        assert sorted(teacher.locator("#gallery .student").all_text_contents()) == ["Ada", "Bo"]
        teacher.screenshot(path=str(ARTIFACTS / "district-session-projector.png"))
    finally:
        script.terminate()
        script.wait(30)
    time.sleep(1)
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout
    assert not left.strip(), f"processes left running: {left}"


def test_replicas_starting_together_on_a_new_shared_folder_all_start(tmp_path):
    """Several replicas opening a fresh shared database at once (found by the 4-replica bench: two
    saw the `owner` column missing, both added it, and the second replica failed to start)."""
    script = ("import sys, time\nfrom engine.stores.sessions import SessionStore\nfrom engine.stores.projects import ProjectStore\n"
              "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
              "SessionStore(sys.argv[1] + '/sessions'); ProjectStore(sys.argv[1] + '/projects')\n")
    for attempt in range(3):
        folder = tmp_path / str(attempt)
        at = time.time() + 1.5  # all open the database in the same instant
        procs = [subprocess.Popen([sys.executable, "-c", script, str(folder), str(at)], cwd=ROOT,
                                  stderr=subprocess.PIPE, text=True) for _ in range(6)]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err


def test_a_replica_starting_leaves_another_replicas_write_in_progress_alone(tmp_path):
    """At start a server removes the temporary files a crash left; on a shared folder a young one
    is another replica's model or photo being written, so only old ones go."""
    from engine.stores.projects import ProjectStore
    from engine.stores.store import ModelRegistry
    models_dir, projects_dir = tmp_path / "models", tmp_path / "projects"
    (projects_dir / "p1").mkdir(parents=True)
    models_dir.mkdir()
    for folder in (models_dir, projects_dir / "p1"):
        (folder / ".writing.part").write_text("{")
        (folder / ".crashed.part").write_text("{")
        os.utime(folder / ".crashed.part", (time.time() - 7200, time.time() - 7200))
    ModelRegistry([ROOT / "models", models_dir], shared=True)
    ProjectStore(projects_dir, shared=True)
    for folder in (models_dir, projects_dir / "p1"):
        assert (folder / ".writing.part").exists() and not (folder / ".crashed.part").exists()
    ModelRegistry([ROOT / "models", models_dir])  # one server alone: every leftover is a crash's
    ProjectStore(projects_dir)
    assert not list(models_dir.glob(".*.part")) and not list((projects_dir / "p1").glob(".*.part"))


def test_a_quiet_gallery_stays_connected(district):
    """Nothing happens in a class for a while (the Redis client's read timeout is 5 s): the
    teacher's gallery must neither be closed nor miss the next drawing."""
    session = http_json(f"{district['a']}/api/sessions", "POST", {}, {"X-Owner-Token": OWNER})
    with gallery(district["b"], session["code"], session["teacher_key"]) as ws:
        next_event(ws, "snapshot")
        time.sleep(12)
        http_json(f"{district['a']}/api/sessions/{session['code']}/students", "POST", {"name": "Late"})
        assert next_event(ws, "students", timeout=5)["count"] == 1



LONG_JOB = {"architecture": "mnist_recipe", "train_size": 55000, "epochs": 5, "batch_size": 32}  # minutes, unless stopped


def job_events(url: str, job_id: str, since: int = 0):
    ws = connect(url.replace("http", "ws") + f"/ws/train/{job_id}?since={since}", open_timeout=10, legacy=True)
    return ws


def wait_for(ws, predicate, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while True:
        event = json.loads(ws.recv(timeout=max(deadline - time.time(), 0.01)))
        if predicate(event):
            return event


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
        killed_at = time.time()
        os.kill(horse[0] if victim == "training process" else worker.pid,
                signal.SIGTERM if victim == "SIGTERM" else signal.SIGKILL)
        done = wait_for(ws, lambda e: e["type"] == "done", timeout=30)
    if victim == "SIGTERM":
        assert done["status"] == "interrupted" and done["results"] and "shut down" in done["error"]
        assert worker.wait(15) == 0
    else:
        assert done["status"] == "failed" and ("start it again" in done["error"] or "stopped" in done["error"])
    assert time.time() - killed_at < 15
    assert http_json(f"{district['b']}/api/train/{job['id']}")["status"] == done["status"]
    if victim != "training process":
        worker.wait(10)
        for pid in horse:  # the orphaned training process ended by itself
            deadline = time.time() + 15
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
    job = http_json(f"{a}/api/projects/{p['id']}/train", "POST", {"epochs": 10}, owner)
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
