"""What the limits of issue 11 save: time and peak memory of a request that one client could use
to exhaust the server, the old way (the baseline, measured in the same run) and the new way.
Each measurement runs in a fresh Python process, so its peak RSS is its own.

    .venv/bin/python bench/bench_limits.py [--dense 12] [--quick]

- describe: an architecture of `--dense` dense layers of 4096 units, built for real (the old
  /api/architectures/describe) or measured on torch's meta device (now);
- a 6300x6300 RGBA PNG: decoded (old) or refused from its header (now);
- a 6000x4000 JPEG photo: decoded whole (old) or decoded reduced by its DCT (now).

--quick: 2 dense layers and a 3000x2000 JPEG (the same cases, in seconds).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import add_quick  # noqa: E402

PROBE = """
import json, sys, time
sys.path.insert(0, {root!r})
import torch  # the server has it loaded already: not part of the cost
from engine import imageio, models
from PIL import Image
def hwm():  # this process's peak RSS in KB (VmHWM: unlike ru_maxrss, not inherited from the parent)
    return int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1])
models.measure("mlp_16"); models.describe(models.build("mlp_16"))  # warm, as a running server is
base = hwm()
t = time.perf_counter()
{body}
took = time.perf_counter() - t
peak = hwm()
print(json.dumps({{"seconds": took, "extra_mb": (peak - base) / 1024}}))
"""

CASES = {
    "describe, built": "net = models.build([{{'type': 'dense', 'units': 4096}}] * {dense}); models.describe(net)",
    "describe, meta device": "models.measure([{{'type': 'dense', 'units': 4096}}] * {dense})",
    "6300x6300 PNG, decoded": "img = Image.open({png!r}); img.load(); img.convert('RGBA')",
    "6300x6300 PNG, refused": ("try:\n    imageio.decode(open({png!r}, 'rb').read(), 40_000_000)\n"
                               "except imageio.ImageError as e:\n    assert e.kind == 'too_large'"),
    "6000x4000 JPEG, whole": "img = Image.open({jpg!r}); img.load()",
    "6000x4000 JPEG, reduced": "img = imageio.decode(open({jpg!r}, 'rb').read(), 40_000_000); assert max(img.size) <= 3000",
}
PAIRS = [("describe, built", "describe, meta device"), ("6300x6300 PNG, decoded", "6300x6300 PNG, refused"),
         ("6000x4000 JPEG, whole", "6000x4000 JPEG, reduced")]


def run(body: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT), body=body)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dense", type=int, default=12, help="dense 4096 layers (the issue's attack had 40)")
    add_quick(p)
    args = p.parse_args()
    if args.quick:
        args.dense = 2
    w, h = (3000, 2000) if args.quick else (6000, 4000)
    import numpy as np
    from PIL import Image
    tmp = Path(tempfile.mkdtemp(prefix="neuronlab-limits-"))
    png, jpg = tmp / "big.png", tmp / "big.jpg"
    try:
        Image.new("RGBA", (6300, 6300)).save(png, compress_level=1)
        rng = np.random.default_rng(0)
        photo = (np.linspace(0, 255, w)[None, :, None] + rng.normal(0, 20, (h, 1, 3))).clip(0, 255)
        Image.fromarray(np.broadcast_to(photo, (h, w, 3)).astype(np.uint8)).save(jpg, quality=85)
        results = {name: run(body.format(dense=args.dense, png=str(png), jpg=str(jpg))) for name, body in CASES.items()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # two large images
    print(f"{'case':28} {'seconds':>9} {'extra MB':>9}")
    for name, r in results.items():
        print(f"{name:28} {r['seconds']:9.3f} {r['extra_mb']:9.0f}")
    for old, new in PAIRS:
        a, b = results[old], results[new]
        print(f"{new} vs {old}: time ratio {b['seconds'] / a['seconds']:.4f}, "
              f"memory {b['extra_mb']:.0f} MB vs {a['extra_mb']:.0f} MB")


if __name__ == "__main__":
    main()
