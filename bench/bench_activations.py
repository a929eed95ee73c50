"""All feature maps of one input: engine time and POST /api/activations through a real server,
against the plain prediction of the same image as the baseline (goal: well under 100 ms).

    .venv/bin/python bench/bench_activations.py [--requests 100] [--quick]
"""
from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from app.serialize import layers_json  # noqa: E402
from bench.bench_inference import frame_png, multipart, pct, start_server  # noqa: E402
from bench.common import add_quick  # noqa: E402
from engine import activations, imageio, inference, preprocess  # noqa: E402
from engine.stores import store  # noqa: E402


def timed(fn, n: int) -> list[float]:
    fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def http_post(port: int, path: str, data: bytes, model: str, n: int) -> tuple[list[float], int]:
    body, ctype = multipart(data)
    extra = f'--{ctype.split("=")[1]}\r\nContent-Disposition: form-data; name="model"\r\n\r\n{model}\r\n'.encode()
    body = extra + body
    conn = http.client.HTTPConnection("127.0.0.1", port)
    out, size = [], 0
    for _ in range(n + 1):
        t = time.perf_counter()
        conn.request("POST", path, body=body, headers={"Content-Type": ctype})
        resp = conn.getresponse()
        payload = resp.read()
        assert resp.status == 200, payload[:200]
        out.append(time.perf_counter() - t)
        size = len(payload)
    return out[1:], size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=100)
    add_quick(p)
    args = p.parse_args()
    if args.quick:
        args.requests = 3
    torch.set_num_threads(1)
    data = frame_png()
    registry = store.ModelRegistry([ROOT / "models"])
    rows = []
    proc, port = start_server()
    try:
        for model_id in ("digits", "mnist-recipe"):
            model = registry.get(model_id)
            img = imageio.decode(data, 10**8)
            x = preprocess.prepare(img).input
            base = pct(timed(lambda: inference.classify(model, img), args.requests))
            engine = pct(timed(lambda: json.dumps(layers_json(activations.activations(model, x))), args.requests))
            predict, _ = http_post(port, "/api/predict", data, model_id, args.requests)
            http, size = http_post(port, "/api/activations", data, model_id, args.requests)
            rows.append((model_id, "engine classify (baseline)", *base, base[0], None))
            rows.append((model_id, "engine activations + JSON", *engine, base[0], None))
            rows.append((model_id, "HTTP /api/predict", *pct(predict), base[0], None))
            rows.append((model_id, "HTTP /api/activations", *pct(http), base[0], size))
    finally:
        proc.terminate()
        proc.wait()
    print(f"{'model':13} {'path':28} {'p50 ms':>8} {'p99 ms':>8} {'p50/baseline':>12} {'bytes':>8}")
    for model_id, label, p50, p99, b, size in rows:
        print(f"{model_id:13} {label:28} {p50:8.2f} {p99:8.2f} {p50 / b:12.2f} {size or '':>8}")
    print(f"torch threads 1, {args.requests} requests each, one client")


if __name__ == "__main__":
    main()
