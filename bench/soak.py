"""A classroom soak: a real server (started as scripts/serve.sh starts it) under a mixed load for
--minutes, then checked for what a long day would pile up.

Load, all at once and all bounded in time: drawers streaming /ws/draw frames at 5 a second; a
class session (students joining, drawings posted and labelled, the teacher's gallery socket,
clears, a new session every few minutes); a teachable project (photo batches added and deleted,
the project replaced every few minutes); three owners training small networks back to back
(queued behind each other, every other job stopped early, some started paused and resumed) whose
models are then deleted.

Measured: the server's RSS after a warm-up minute (the baseline, same run) and at the end (after
the load stops and finished jobs are forgotten), every HTTP status (5xx must be 0), socket
errors, jobs still active, worker processes left, and files left in the data folder.

    .venv/bin/python bench/soak.py [--minutes 10] [--quick]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from bench.bench_inference import BENCH_TOKEN, frame_png, start_server  # noqa: E402
from bench.common import add_quick, draw_digit, encode, object_photo  # noqa: E402
from engine import datasets  # noqa: E402

GRACE_S = 20  # finished jobs are forgotten this long after they end (the server's default is 600)


class Soak:
    def __init__(self, port: int, seconds: float):
        self.port, self.end = port, time.monotonic() + seconds
        self.codes: Counter = Counter()
        self.errors: list[str] = []
        self.job_ids: list[tuple[str, dict]] = []
        self.lock = threading.Lock()

    @property
    def running(self) -> bool:
        return time.monotonic() < self.end

    def call(self, method: str, path: str, body=None, headers=None, raw=None, ctype="application/json"):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method, data=data,
                                         headers={"Content-Type": ctype, "X-Owner-Token": BENCH_TOKEN,
                                                  **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, text = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read()
        with self.lock:
            self.codes[status] += 1
            if status >= 500:
                self.errors.append(f"{method} {path}: {status} {text[:200]!r}")
        return status, (json.loads(text) if text else {})

    def form(self, path: str, fields: dict, files: list[tuple[str, str, bytes, str]], headers=None):
        boundary = "soakboundary7d1"
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                 for k, v in fields.items()]
        for name, filename, data, ctype in files:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                         f"Content-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.call("POST", path, raw=body, ctype=f"multipart/form-data; boundary={boundary}", headers=headers)

    # --- the loads ------------------------------------------------------------------------------

    async def drawer(self, frame: bytes) -> None:
        while self.running:
            try:
                async with connect(f"ws://127.0.0.1:{self.port}/ws/draw?steps=false", max_size=None) as ws:
                    await ws.recv()
                    until = min(self.end, time.monotonic() + 60)  # reconnect each minute, as reloads do
                    while time.monotonic() < until:
                        await ws.send(frame)
                        reply = json.loads(await ws.recv())
                        if reply["type"] not in ("prediction", "empty"):
                            self.errors.append(f"draw: {reply}")
                        await asyncio.sleep(0.2)
            except Exception as exc:  # counted, and the drawer carries on
                self.errors.append(f"draw socket: {exc!r}")
                await asyncio.sleep(1)

    async def gallery(self, code: str, key: str, stop: asyncio.Event) -> None:
        async with connect(f"ws://127.0.0.1:{self.port}/ws/sessions/{code}", max_size=None) as ws:
            await ws.send(json.dumps({"key": key}))
            while not stop.is_set():
                try:
                    event = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                except asyncio.TimeoutError:
                    continue
                if event.get("type") in ("error", "ended"):
                    return

    async def session(self) -> None:
        digits = [encode(draw_digit(str(d))) for d in range(10)]
        rng = np.random.default_rng(1)
        while self.running:
            status, session = await asyncio.to_thread(self.call, "POST", "/api/sessions", {})
            code, teacher = session["code"], {"X-Teacher-Key": session["teacher_key"]}
            stop = asyncio.Event()
            watcher = asyncio.create_task(self.gallery(code, session["teacher_key"], stop))
            students = []
            until = min(self.end, time.monotonic() + 180)
            while time.monotonic() < until:
                if len(students) < 10:
                    _, s = await asyncio.to_thread(self.call, "POST", f"/api/sessions/{code}/students",
                                                   {"name": f"Student {len(students) + 1}"})
                    students.append({"X-Student-Key": s["student_key"]})
                who = students[int(rng.integers(len(students)))]
                d = int(rng.integers(10))
                status, drawing = await asyncio.to_thread(
                    self.form, f"/api/sessions/{code}/drawings", {}, [("image", "d.png", digits[d], "image/png")], who)
                if status == 201:
                    await asyncio.to_thread(self.call, "PUT", f"/api/sessions/{code}/drawings/{drawing['id']}/label",
                                            {"label": d}, who)
                if rng.random() < 0.02:
                    await asyncio.to_thread(self.call, "POST", f"/api/sessions/{code}/clear", None, teacher)
                await asyncio.sleep(0.5)
            await asyncio.to_thread(self.call, "POST", f"/api/sessions/{code}/end", {"keep": False}, teacher)
            stop.set()
            await watcher

    def photos(self) -> None:
        rng = np.random.default_rng(2)
        shots = [[encode(object_photo(k, rng), "JPEG", quality=85) for _ in range(6)] for k in (0, 1)]
        while self.running:
            _, project = self.call("POST", "/api/projects", {"name": "Soak", "classes": ["ball", "box"]})
            pid, classes = project["id"], [c["id"] for c in project["classes"]]
            until = min(self.end, time.monotonic() + 150)
            while time.monotonic() < until:
                k = int(rng.integers(2))
                status, added = self.form(f"/api/projects/{pid}/samples", {"class_id": classes[k]},
                                          [("images", f"{i}.jpg", data, "image/jpeg") for i, data in enumerate(shots[k])])
                if status == 201 and rng.random() < 0.5:
                    self.call("DELETE", f"/api/projects/{pid}/samples/{added['samples'][0]['id']}")
                time.sleep(3)
            self.call("DELETE", f"/api/projects/{pid}")

    def trainer(self, n: int) -> None:
        owner = {"X-Owner-Token": f"soak-trainer-{n}".ljust(24, "0")}
        rng = np.random.default_rng(10 + n)
        i = 0
        while self.running:
            i += 1
            paused = i % 3 == 0
            status, job = self.call("POST", "/api/train", {
                "architecture": ["mlp_16", "digit_cnn", "lenet"][i % 3], "train_size": 3000, "val_size": 1000,
                "epochs": 1, "name": f"soak {n}-{i}", "start_paused": paused}, owner)
            if status != 201:
                time.sleep(2)
                continue
            self.job_ids.append((job["id"], owner))
            cancel_at = time.monotonic() + rng.uniform(3, 8) if i % 2 == 0 else None
            resumed = False
            while True:
                _, state = self.call("GET", f"/api/train/{job['id']}")
                if state["status"] in ("done", "stopped", "diverged", "failed", "interrupted"):
                    break
                if paused and not resumed and state["status"] == "paused":
                    self.call("POST", f"/api/train/{job['id']}/resume", None, owner)
                    resumed = True
                if (cancel_at and time.monotonic() > cancel_at) or not self.running:
                    self.call("POST", f"/api/train/{job['id']}/stop", None, owner)
                    cancel_at = None
                time.sleep(0.5)
            for model_id in state.get("model_ids") or []:
                self.call("DELETE", f"/api/models/{model_id}", None, owner)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in (task / "children").read_text().split():
            found += [int(child), *descendants(int(child))]
    return found


def data_files(folder: Path) -> list[str]:
    """Files users' work left, not counting the server's own databases, job records and the log."""
    skip = {"server.log"}
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and p.name not in skip and "sqlite3" not in p.name
                  and p.parent.name != "jobs" and not str(p.relative_to(folder)).startswith("mnist"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--drawers", type=int, default=6)
    p.add_argument("--trainers", type=int, default=3, help="owners training small networks back to back")
    add_quick(p)
    args = p.parse_args()
    grace = GRACE_S
    if args.quick:  # every load for a few seconds; finished jobs forgotten after 2 s
        args.minutes, args.drawers, args.trainers, grace = 0.1, 2, 1, 2
    data = Path(tempfile.mkdtemp(prefix="neuronlab-soak-"))
    (data / "mnist").symlink_to(datasets.locate("mnist", ROOT / "data"), target_is_directory=True)
    proc, port = start_server(str(data), {"NEURONLAB_JOB_GRACE": str(grace), "NEURONLAB_MAX_QUEUE": "12"})
    soak = Soak(port, args.minutes * 60)
    samples: list[tuple[float, float]] = []
    t0 = time.monotonic()

    def sample_rss() -> None:
        while soak.running:
            samples.append((time.monotonic() - t0, rss_mb(proc.pid)))
            time.sleep(5)

    async def sockets() -> None:
        frame = frame_png()
        await asyncio.gather(*[soak.drawer(frame) for _ in range(args.drawers)], soak.session())

    threads = [threading.Thread(target=fn, args=a) for fn, a in
               [(sample_rss, ()), (soak.photos, ()), *[(soak.trainer, (n,)) for n in range(args.trainers)],
                (lambda: asyncio.run(sockets()), ())]]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(grace + 5)  # finished jobs are forgotten; their worker processes are gone
        active = [j for j, owner in soak.job_ids if soak.call("GET", f"/api/train/{j}")[1]["status"]
                  in ("queued", "running", "paused")]
        workers = [Path(f"/proc/{c}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:90]
                   for c in descendants(proc.pid)]
        end_rss = rss_mb(proc.pid)
        left = data_files(data)
    finally:
        proc.terminate()
        proc.wait(30)
    warm = [r for t, r in samples if t >= 60] or [r for _, r in samples]
    base = warm[0]
    print(f"soak: {args.minutes:g} min, {args.drawers} drawers, 1 class session (10 students), 1 project, "
          f"{args.trainers} trainers ({len(soak.job_ids)} jobs)")
    print(f"requests by status: {dict(sorted(soak.codes.items()))}")
    print(f"5xx: {sum(v for k, v in soak.codes.items() if k >= 500)}; socket/other errors: {len(soak.errors)}")
    for e in soak.errors[:10]:
        print("  ", e)
    print(f"server RSS: after the warm-up minute {base:.0f} MB (baseline), peak {max(r for _, r in samples):.0f} MB, "
          f"at the end {end_rss:.0f} MB: ratio {end_rss / base:.3f} (growth {100 * (end_rss / base - 1):+.1f}%)")
    print(f"jobs still active: {len(active)}; child processes left: {len(workers)} (expected 2: the frame "
          "reader and multiprocessing's resource tracker)")
    for w in workers:
        print("  ", w)
    print(f"files left in the data folder: {len(left)} {left[:10]}")
    shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
