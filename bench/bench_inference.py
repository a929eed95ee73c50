"""Single-image inference latency: in-process engine (the baseline), then HTTP POST /api/predict
and WebSocket /ws/draw against a real uvicorn server, alone and with 30 concurrent clients.

    .venv/bin/python bench/bench_inference.py [--requests 300] [--clients 30] [--quick]

Prints p50/p99 in milliseconds and each figure's ratio to the in-process baseline p50.
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from uuid import uuid4

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from bench.common import add_quick, scratch  # noqa: E402
from engine import imageio, inference  # noqa: E402
from engine.stores import store  # noqa: E402


def frame_png(size: int = 280) -> bytes:
    """A canvas with a drawn 7, as the draw page sends it (280x280 colour), or smaller and grey as
    the join page streams its live frames."""
    k = size / 280
    img = Image.new("RGB" if size == 280 else "L", (size, size), "white")
    ImageDraw.Draw(img).line([(70 * k, 56 * k), (210 * k, 56 * k), (126 * k, 238 * k)], fill="black",
                             width=max(1, round(24 * k)), joint="curve")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def stroke_frames(size: int = 112, count: int = 24) -> list[bytes]:
    """A 7 being drawn: `count` frames, each with a little more of the stroke (a real drawer's
    frames differ one from the next, so none is answered from the unchanged-frame shortcut)."""
    k = size / 280
    corners = np.array([(70, 56), (210, 56), (126, 238)], dtype=float) * k
    lengths = np.linalg.norm(np.diff(corners, axis=0), axis=1)
    frames = []
    for i in range(1, count + 1):
        left, points = lengths.sum() * (0.3 + 0.7 * i / count), [tuple(corners[0])]
        for start, end, length in zip(corners[:-1], corners[1:], lengths):
            part = min(1.0, left / length)
            points.append(tuple(start + (end - start) * part))
            left -= length
            if left <= 0:
                break
        img = Image.new("L", (size, size), "white")
        ImageDraw.Draw(img).line(points, fill="black", width=max(1, round(24 * k)), joint="curve")
        buf = io.BytesIO()
        img.save(buf, "PNG")
        frames.append(buf.getvalue())
    return frames


def pct(samples: list[float]) -> tuple[float, float]:
    a = np.array(samples) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def engine_baseline(data: bytes, n: int) -> list[float]:
    torch.set_num_threads(1)
    model = store.ModelRegistry([ROOT / "models"]).get("digits")
    out = []
    for _ in range(n):
        t = time.perf_counter()
        inference.classify(model, imageio.decode(data, 40_000_000))
        out.append(time.perf_counter() - t)
    return out


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"d.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def http_client(port: int, data: bytes, n: int, out: list[float]) -> None:
    body, ctype = multipart(data)
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(n):
        t = time.perf_counter()
        conn.request("POST", "/api/predict", body=body, headers={"Content-Type": ctype})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, resp.status
        out.append(time.perf_counter() - t)
    conn.close()


def http_load(port: int, data: bytes, clients: int, n: int) -> list[float]:
    out: list[float] = []
    threads = [threading.Thread(target=http_client, args=(port, data, n, out)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


async def ws_client(port: int, data: bytes, n: int, out: list[float], interval: float) -> None:
    async with connect(f"ws://127.0.0.1:{port}/ws/draw", max_size=None) as ws:
        await ws.recv()  # ready
        for _ in range(n):
            t = time.perf_counter()
            await ws.send(data)
            await ws.recv()
            out.append(time.perf_counter() - t)
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - t)))


def ws_load(port: int, data: bytes, clients: int, n: int, interval: float = 0.0) -> list[float]:
    """`clients` drawers, each sending its next frame when the last is answered, at most one
    frame per `interval` seconds (0 = as fast as possible)."""
    out: list[float] = []

    async def run():
        await asyncio.gather(*(ws_client(port, data, n, out, interval) for _ in range(clients)))
    asyncio.run(run())
    return out


BENCH_TOKEN = "bench" + "0" * 27  # the benches' owner token (what they start, they may stop)


def api(port: int, method: str, path: str, body: dict | None = None, headers: dict | None = None,
        raw: bytes | None = None, ctype: str = "application/json") -> dict:
    """A JSON request (or `raw` bytes of type `ctype`) to the server; its JSON answer."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=data,
                                     headers={"Content-Type": ctype, "X-Owner-Token": BENCH_TOKEN, **(headers or {})})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"{}")


def start_training(port: int) -> str:
    """A full-size job (the default digit network on all 55,000 images), running once this returns."""
    job = api(port, "POST", "/api/train", {"architecture": "digit_cnn", "train_size": None, "epochs": 20,
                                           "batch_size": 128, "learning_rate": 0.05, "augment": True})["id"]
    for _ in range(300):
        if api(port, "GET", f"/api/train/{job}")["step"] > 0:
            return job
        time.sleep(0.1)
    raise RuntimeError("the training job did not start")


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU time a process (and, with `children`, every process under it: the frame
    reader; in district mode the replicas, their readers, Redis and nginx) has used so far."""
    def own(p) -> tuple[int, float]:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    if not children:
        return own(pid)[1]
    procs = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                procs[int(entry.name)] = own(entry.name)
            except (OSError, IndexError):
                continue
    tree, grew = {pid}, True
    while grew:
        below = {p for p, (parent, _) in procs.items() if parent in tree} - tree
        tree |= below
        grew = bool(below)
    return sum(procs[p][1] for p in tree if p in procs)


def start_server(data_dir: str | None = None, env: dict | None = None) -> tuple[subprocess.Popen, int]:
    """A real server started as scripts/serve.sh starts it, on a free port (its data in
    `data_dir`, by default the temporary folder's neuronlab-bench)."""
    data_dir = data_dir or scratch("neuronlab-bench")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app", "--port", str(port),
                             "--log-level", "warning", "--http", "app.protocol:GuardedH11Protocol",
                             "--timeout-graceful-shutdown", "5"], cwd=ROOT,
                            env={**os.environ, "NEURONLAB_DATA_DIR": data_dir, **(env or {})})
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=300, help="requests per single-client run")
    p.add_argument("--clients", type=int, default=30)
    p.add_argument("--per-client", type=int, default=30, help="requests per client under load")
    p.add_argument("--fps", type=float, default=5, help="frames per second per drawer in the paced run")
    p.add_argument("--during-training", action="store_true",
                   help="measure again while a training job runs in its worker process")
    add_quick(p)
    args = p.parse_args()
    if args.quick:
        args.requests, args.clients, args.per_client, args.fps = 5, 2, 3, 50
    warm = 2 if args.quick else 20
    data = frame_png()
    engine_baseline(data, warm)  # warm up
    base_p50, base_p99 = pct(engine_baseline(data, args.requests))
    proc, port = start_server()
    try:
        http_client(port, data, warm, [])  # warm up
        rows = [("engine in-process (baseline)", 1, base_p50, base_p99, base_p50)]

        def measure(label, clients, fn, *fn_args):
            cpu = cpu_seconds(proc.pid)
            samples = fn(port, data, clients, *fn_args)
            server_ms = (cpu_seconds(proc.pid) - cpu) / len(samples) * 1000
            rows.append((label, clients, *pct(samples), server_ms))

        def measure_all(suffix: str = "") -> None:
            for label, fn in (("HTTP POST /api/predict", http_load), ("WebSocket /ws/draw", ws_load)):
                measure(label + suffix, 1, fn, args.requests)
                measure(label + suffix, args.clients, fn, args.per_client)
            measure(f"WebSocket, {args.fps:g} frames/s each{suffix}", args.clients, ws_load, args.per_client,
                    1 / args.fps)

        measure_all()
        if args.during_training:
            job = start_training(port)
            measure_all(" [training]")
            api(port, "POST", f"/api/train/{job}/stop")
    finally:
        proc.terminate()
        proc.wait()
    print(f"{'path':32} {'clients':>7} {'p50 ms':>8} {'p99 ms':>8} {'p50/baseline':>12} {'server CPU ms/req':>18}")
    for label, clients, p50, p99, server_ms in rows:
        print(f"{label:32} {clients:>7} {p50:8.2f} {p99:8.2f} {p50 / base_p50:12.2f} {server_ms:18.2f}")
    print(f"cpu cores: {os.cpu_count()}, torch {torch.__version__}, median of {args.requests} / "
          f"{args.clients}x{args.per_client} requests; load clients run on the same cores")


if __name__ == "__main__":
    main()
