"""A district loses only the part that fails (scripts/district.sh runs each part under supervisord):
a replica killed with SIGKILL -> nginx keeps answering through the other replica and the killed one
comes back; a worker told to stop (SIGTERM) -> the others go on, it is started again and jobs still
train; Redis stopped and started again -> a job submitted afterwards trains (the workers reconnect);
a job queued while no worker is alive says so. Every wait is bounded by a condition, generously."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from app.settings import ROOT
from engine import datasets
from tests.conftest import OWNER, launch, stop
from tests.district import ADMIN, REDIS, gallery, next_event, start_district, start_redis, start_worker, supervisorctl
from tests.helpers import http_json, trained, until

pytestmark = pytest.mark.skipif(not Path(REDIS).exists(), reason="district mode needs Debian's redis-server")

QUICK = {"architecture": "mlp_16", "train_size": 640, "val_size": 500}
LIMIT = 120  # seconds any recovery may take here (measured: a few seconds; the machine may be loaded)


def answers(url: str) -> bool:
    try:
        http_json(url, timeout=2)
        return True
    except OSError:
        return False


def pid(run: Path, name: str) -> int:
    """The program's pid as supervisord knows it (0 while it is not running)."""
    out = supervisorctl(run, "pid", name)
    return int(out) if out.isdigit() else 0


def alive(p: int) -> bool:
    try:
        os.kill(p, 0)
        return True
    except OSError:
        return False


def log_has(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text(errors="replace")


def test_a_district_loses_only_the_part_that_fails(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "mnist").symlink_to(datasets.locate("mnist", ROOT / "data"), target_is_directory=True)
    script, base, ports = start_district(tmp_path, data)
    run, owner = tmp_path / "run", {"X-Owner-Token": OWNER}
    measured = {}
    try:
        # 1. kill -9 of a replica: every request through nginx still answers, WebSockets too
        session = http_json(f"{base}/api/sessions", "POST", {}, owner)
        killed = pid(run, "replicas:replica-1")
        assert killed and pid(run, "replicas:replica-2")
        os.kill(killed, signal.SIGKILL)
        at = time.time()
        for _ in range(30):
            assert http_json(f"{base}/api/sessions/{session['code']}")["code"] == session["code"]
        with gallery(base, session["code"], session["teacher_key"]) as ws:  # through nginx, to the replica up
            assert next_event(ws, "snapshot")["drawings"] == []
        student = http_json(f"{base}/api/sessions/{session['code']}/students", "POST", {"name": "Ada"})
        assert student["student_key"]
        # ... and the killed replica is started again (a new process, answering on its port)
        until(lambda: pid(run, "replicas:replica-1") not in (0, killed), "the killed replica restarted")
        until(lambda: answers(f"http://127.0.0.1:{ports['replica']}/healthz"), "the restarted replica answers")
        measured["replica back"] = time.time() - at
        assert script.poll() is None, "the district command stopped"

        # 2. SIGTERM of a worker: the other goes on, it is started again, and a new job trains
        stopped, other = pid(run, "workers:worker-1"), pid(run, "workers:worker-2")
        os.kill(stopped, signal.SIGTERM)
        at = time.time()
        until(lambda: not alive(stopped), "the worker stopped on SIGTERM")
        until(lambda: pid(run, "workers:worker-1") not in (0, stopped), "the stopped worker restarted")
        measured["worker back"] = time.time() - at
        assert pid(run, "workers:worker-2") == other and alive(other)
        assert pid(run, "replicas:replica-2") and script.poll() is None
        assert trained(base, QUICK, owner, timeout=LIMIT)["status"] == "done"

        # 3. Redis stopped (the workers see it gone) and started again: a new job trains
        assert "stopped" in supervisorctl(run, "stop", "redis")
        until(lambda: log_has(run / "logs" / "worker-2.log", "Connection refused"), "a worker noticed Redis was gone")
        assert "started" in supervisorctl(run, "start", "redis")
        at = time.time()
        assert trained(base, QUICK, owner, timeout=LIMIT)["status"] == "done"
        measured["a job trained after Redis restarted"] = time.time() - at

        # 4. no worker alive: a queued job says so, with its place; a worker started takes it
        supervisorctl(run, "stop", "workers:*")
        assert not pid(run, "workers:worker-1") and not pid(run, "workers:worker-2")
        job = http_json(f"{base}/api/train", "POST", QUICK, owner)
        state = http_json(f"{base}/api/train/{job['id']}")
        assert state["status"] == "queued" and state["position"] == 1 and job["position"] == 1
        assert state["no_worker"] is True and "No training worker is running" in state["message"]
        supervisorctl(run, "start", "workers:*")
        final = until(lambda: (s := http_json(f"{base}/api/train/{job['id']}"))["status"] in ("done", "failed") and s,
                      "the waiting job trained")
        assert final["status"] == "done" and "no_worker" not in final
        assert script.poll() is None
    finally:
        script.terminate()
        script.wait(180)  # every part stops in turn: a busy machine takes a while
    until(lambda: not subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True).stdout, "every process stopped", 30)
    print("measured (s):", {k: round(v, 1) for k, v in measured.items()})


def test_a_worker_outlives_its_redis_and_a_job_queued_without_workers_says_so(tmp_path):
    """The processes as tests/district.py starts them: a replica and Redis but no worker (a queued
    job says so); a worker started takes it; Redis killed and started again empty, on its port: the
    same worker process registers again and trains the next job."""
    redis_proc, url = start_redis(tmp_path)
    server, base = launch(tmp_path, {"NEURONLAB_REDIS_URL": url, "NEURONLAB_ADMIN_KEY": ADMIN})
    worker = None
    owner = {"X-Owner-Token": OWNER}
    try:
        job = http_json(f"{base}/api/train", "POST", QUICK, owner)
        state = http_json(f"{base}/api/train/{job['id']}")
        assert state["status"] == "queued" and state["position"] == 1
        assert state["no_worker"] is True and "No training worker is running" in state["message"]
        worker = start_worker(url, tmp_path)
        final = until(lambda: (s := http_json(f"{base}/api/train/{job['id']}"))["status"] in ("done", "failed") and s,
                      "the waiting job trained")
        assert final["status"] == "done"

        import redis
        from rq import Worker
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        redis_proc.kill()
        redis_proc.wait()
        time.sleep(1.0)  # the worker finds Redis gone (it would, sooner or later, in any case)
        redis_proc, _ = start_redis(tmp_path, port)
        at = time.time()
        client = redis.Redis.from_url(url)
        until(lambda: Worker.all(connection=client), "the worker registered again with the new Redis")
        waiting = http_json(f"{base}/api/train", "POST", QUICK, owner)
        assert "no_worker" not in http_json(f"{base}/api/train/{waiting['id']}")
        assert trained(base, QUICK, {"X-Owner-Token": "9" * 32}, timeout=LIMIT)["status"] == "done"
        print(f"measured: the worker was back {time.time() - at:.1f} s after Redis")
        assert worker.poll() is None, "the worker reconnected; it did not exit"
    finally:
        if worker is not None:
            stop(worker)
        stop(server)
        redis_proc.kill()
