"""District mode (NEURONLAB_REDIS_URL): several stateless uvicorn replicas sharing one data folder
and a real redis-server (Debian's, started here). Students post to replica A; the teacher's
gallery socket on replica B sees it live, a reconnect gets the snapshot; a model made through A
is usable, renamed and deleted through B."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import ROOT, Settings
from engine import datasets
from tests.conftest import JOBS_AT_NORMAL_PRIORITY, OWNER, free_port, launch, stop
from tests.district import ADMIN, REDIS, drawing_request, gallery, next_event, start_redis
from tests.helpers import ARTIFACTS, http_json, stroke, trained

pytestmark = pytest.mark.skipif(not Path(REDIS).exists(), reason="district mode needs Debian's redis-server")

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
           "NEURONLAB_DATA_DIR": str(tmp_path / "data"), **JOBS_AT_NORMAL_PRIORITY}
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mnist").symlink_to(datasets.locate("mnist", ROOT / "data"), target_is_directory=True)
    env.pop("NEURONLAB_REDIS_URL", None)
    script = subprocess.Popen(["bash", "scripts/district.sh"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=(tmp_path / "district.log").open("wb"), start_new_session=False)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300  # Redis, the replicas, then nginx: on a busy machine, minutes
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
        teacher.wait_for_function("document.querySelectorAll('#gallery .tile').length === 2")
        assert sorted(teacher.locator("#gallery .student").all_text_contents()) == ["Ada", "Bo"]
        teacher.screenshot(path=str(ARTIFACTS / "district-session-projector.png"))
    finally:
        script.terminate()
        script.wait(180)  # every part stops in turn, each worker saving its job: a busy machine takes a while
    deadline = time.time() + 60
    while (left := subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.strip()):
        assert time.time() < deadline, f"processes left running: {left}"
        time.sleep(0.5)


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


@pytest.mark.parametrize("name, value", [("redis_url", "localhost:6379"), ("redis_url", ""),
                                         ("database_url", "mysql://db/neuronlab"), ("database_url", "sqlite:///x")])
def test_a_malformed_district_address_is_refused_at_start_with_its_name(name, value):
    with pytest.raises(ValidationError) as refused:
        Settings(**{name: value})
    assert name in str(refused.value)


def test_garbage_on_a_gallery_channel_is_ignored(district):
    """Whatever else writes to Redis, a message that is not a gallery event is skipped: the
    teacher's gallery stays connected and gets the next real event."""
    import redis
    session = http_json(f"{district['a']}/api/sessions", "POST", {}, {"X-Owner-Token": OWNER})
    with gallery(district["b"], session["code"], session["teacher_key"]) as ws:
        next_event(ws, "snapshot")
        client = redis.Redis.from_url(district["redis"])
        for junk in (b"not json", b"\xff\xfe", b"[1, 2"):
            client.publish(f"neuronlab:gallery:{session['code']}", junk)
        http_json(f"{district['a']}/api/sessions/{session['code']}/students", "POST", {"name": "Ada"})
        assert next_event(ws, "students")["count"] == 1
