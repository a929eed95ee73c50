"""What the district-mode tests share (tests/test_district*.py; the `district` fixture is in
conftest.py): a throwaway redis-server, a training worker, and clients for a real server's
forms, gallery sockets and training sockets. bench/bench_queue.py starts its Redis here too."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from websockets.sync.client import connect

from app.settings import ROOT
from tests.conftest import free_port
from tests.helpers import draw_digit, encode, http_json

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
ADMIN = "district-admin-key-0123456789"


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
