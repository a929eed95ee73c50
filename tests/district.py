"""What the district-mode tests share (tests/test_district*.py; the `district` fixture is in
conftest.py): a throwaway redis-server, a training worker, and clients for a real server's
forms, gallery sockets and training sockets. bench/bench_queue.py starts its Redis here too."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from websockets.sync.client import connect

from app.settings import ROOT
from bench.common import REDIS, start_redis  # noqa: F401
from tests.conftest import free_port
from tests.helpers import draw_digit, encode, http_json

ADMIN = "district-admin-key-0123456789"


def start_worker(url: str, data: Path) -> subprocess.Popen:
    """A district training worker (RQ), as scripts/district.sh starts it."""
    return subprocess.Popen([sys.executable, "-m", "engine.training.district", "--redis", url, "--data-dir", str(data),
                             "--niceness", "0"],  # normal priority, as the tests' servers' jobs (conftest)
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=(data / "worker.log").open("ab"))


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


def job_events(url: str, job_id: str, since: int = 0):
    ws = connect(url.replace("http", "ws") + f"/ws/train/{job_id}?since={since}", open_timeout=10, legacy=True)
    return ws


def wait_for(ws, predicate, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while True:
        event = json.loads(ws.recv(timeout=max(deadline - time.time(), 0.01)))
        if predicate(event):
            return event


def free_ports(count: int) -> int:
    """A free port with the count - 1 after it free too (the district script's replicas)."""
    while True:
        port = free_port()
        try:
            for p in range(port + 1, port + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue


def start_district(folder: Path, data: Path, workers: int = 2) -> tuple[subprocess.Popen, str, dict]:
    """scripts/district.sh as the README gives it (two replicas, `workers` workers, its own Redis
    and nginx) on free ports, its run folder in folder/run; waits (up to 3 minutes) until nginx
    answers. Returns the script's process, nginx's address and the ports it was given."""
    from tests.conftest import JOBS_AT_NORMAL_PRIORITY
    ports = {"nginx": free_port(), "redis": free_port(), "replica": free_ports(2)}
    env = {**os.environ, "NEURONLAB_PORT": str(ports["nginx"]), "NEURONLAB_DISTRICT_DIR": str(folder / "run"),
           "NEURONLAB_REDIS_PORT": str(ports["redis"]), "NEURONLAB_REPLICA_PORT": str(ports["replica"]),
           "NEURONLAB_DATA_DIR": str(data), "NEURONLAB_WORKERS": str(workers), **JOBS_AT_NORMAL_PRIORITY}
    env.pop("NEURONLAB_REDIS_URL", None)
    log = folder / "district.log"
    script = subprocess.Popen(["bash", "scripts/district.sh"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=log.open("wb"))
    base = f"http://127.0.0.1:{ports['nginx']}"
    deadline = time.time() + 180
    while True:
        try:
            http_json(f"{base}/healthz", timeout=1)
            return script, base, ports
        except OSError:
            if script.poll() is not None or time.time() > deadline:
                script.terminate()
                raise RuntimeError(log.read_text())
            time.sleep(0.3)


def supervisorctl(run: Path, *args: str) -> str:
    """The district's supervisor, asked through its control program (run: the district's run folder)."""
    ctl = Path(sys.executable).parent / "supervisorctl"
    return subprocess.run([str(ctl), "-c", str(run / "supervisord.conf"), *args], capture_output=True, text=True,
                          timeout=120).stdout.strip()
