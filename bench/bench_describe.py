"""The first layer table of a fresh server (issue 23, item 11): POST /api/architectures/describe of
a large network, its first call and later calls, in a fresh Python process each time (as a server
just started), the old way (a forward pass on torch's meta device: the baseline, measured in the
same run) and the new way (shapes counted, engine.models.out_shape).

    .venv/bin/python bench/bench_describe.py [--dense 12] [--repeats 20] [--processes 3] [--quick]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import add_quick  # noqa: E402

# One fresh process: torch and the engine imported first (a started server has them), then the
# first call timed alone, then later calls timed by bench_activations' helper.
PROBE = """
import json, sys, time
sys.path.insert(0, {root!r})
import torch
from torch import nn
from engine import models
from bench.bench_activations import timed
ARCH = [{{"type": "conv", "filters": 32, "kernel": 3, "activation": "relu"}}, {{"type": "pool", "size": 2}}] + \\
       [{{"type": "dense", "units": 4096, "activation": "relu"}}] * {dense}

def old():  # what measure() did before: the network built on the meta device and run forward there
    with torch.device("meta"):
        net = models.build(ARCH)
        x = torch.zeros(1, 1, 28, 28)
        for m in net:
            x = m.eval()(x)
    return models.count_parameters(net)

new = lambda: models.measure(ARCH)
fn = {{"old": old, "new": new}}[{way!r}]
t = time.perf_counter()
fn()
first = time.perf_counter() - t
later = timed(fn, {repeats})
print(json.dumps({{"first": first, "later": sorted(later)[len(later) // 2]}}))
"""


def probe(way: str, dense: int, repeats: int) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT), way=way, dense=dense, repeats=repeats)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dense", type=int, default=12, help="dense layers of 4096 units after a conv and a pool")
    p.add_argument("--repeats", type=int, default=20, help="later calls timed per process")
    p.add_argument("--processes", type=int, default=3, help="fresh processes per way (medians shown)")
    add_quick(p)
    args = p.parse_args()
    if args.quick:
        args.dense, args.repeats, args.processes = 2, 2, 1
    print(f"{'way':34} {'first call ms':>14} {'later ms':>9} {'first/later':>12}")
    firsts = {}
    for way, title in (("old", "meta forward (before, baseline)"), ("new", "counted shapes (now)")):
        runs = [probe(way, args.dense, args.repeats) for _ in range(args.processes)]
        first = statistics.median(r["first"] for r in runs)
        later = statistics.median(r["later"] for r in runs)
        firsts[way] = first
        print(f"{title:34} {first * 1000:14.1f} {later * 1000:9.2f} {first / later:12.1f}")
    print(f"first call now / before: {firsts['new'] / firsts['old']:.4f}")


if __name__ == "__main__":
    main()
