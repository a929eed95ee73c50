"""What one live frame costs the frame reader, stage by stage (decode, prepare, forward pass,
whole reply), alone and in a batch of 24, on the classroom bench's growing "7" (112x112 grey, as
/join sends). Baseline in the same run: torch's forward pass of the same network on the same
inputs (engine.inference), which the reader's numpy one replaces.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_reader.py [--model digits] [--repeat 20] [--quick]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from app.reading import Limits, replies_for  # noqa: E402
from app.settings import get_settings  # noqa: E402
from bench.bench_inference import stroke_frames  # noqa: E402
from bench.common import add_quick  # noqa: E402
from engine import imageio, inference, lite  # noqa: E402
from engine.preprocess import prepare  # noqa: E402
from engine.stores.store import ModelRegistry  # noqa: E402


def per_frame(fn, frames: int, repeat: int) -> float:
    """Milliseconds a frame, the best of `repeat` runs of fn over `frames` frames."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best / frames * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="digits")
    p.add_argument("--repeat", type=int, default=20)
    add_quick(p)
    args = p.parse_args()
    if args.quick:
        args.repeat = 1
    torch.set_num_threads(1)  # as the reader: one thread
    settings = get_settings()
    stored = ModelRegistry([settings.models_dir]).get(args.model)
    program, limits = inference.program_of(stored), Limits.of(settings)
    frames = stroke_frames(112)
    decode = lambda data: imageio.decode(data, limits.max_image_pixels, limits.max_decoded_bytes)
    images = [decode(f) for f in frames]
    inputs = np.stack([prepare(img).input for img in images])
    n, r = len(frames), args.repeat
    rows = [
        ("decode (PNG)", per_frame(lambda: [decode(f) for f in frames], n, r), None),
        ("prepare", per_frame(lambda: [prepare(img) for img in images], n, r), None),
        ("forward, alone", per_frame(lambda: [lite.probabilities(program, x[None]) for x in inputs], n, r),
         per_frame(lambda: [inference.probabilities(stored, x[None]) for x in inputs], n, r)),
        (f"forward, batch of {n}", per_frame(lambda: lite.probabilities(program, inputs), n, r),
         per_frame(lambda: inference.probabilities(stored, inputs), n, r)),
        ("whole reply, alone", per_frame(lambda: [replies_for([(f, program, False)], limits) for f in frames], n, r), None),
        (f"whole reply, batch of {n}", per_frame(lambda: replies_for([(f, program, False) for f in frames], limits), n, r), None),
    ]
    print(f"model {args.model}, {n} frames of a growing stroke, best of {r} runs, ms a frame")
    print(f"{'stage':>24} {'reader':>8} {'torch':>8} {'ratio':>6}")
    for name, ours, torch_ms in rows:
        extra = f" {torch_ms:8.3f} {ours / torch_ms:6.2f}" if torch_ms else ""
        print(f"{name:>24} {ours:8.3f}{extra}")


if __name__ == "__main__":
    main()
