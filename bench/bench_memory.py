"""Memory of an idle server: a real server started as scripts/serve.sh starts it (with its frame
reader and Python's resource tracker), after one page load, RSS and PSS of every process of it.
The baseline, in the same run, is one bare Python process that imports torch: the floor of any
process that trains or runs a network with torch.

    .venv/bin/python bench/bench_memory.py [--quick]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_inference import api, start_server  # noqa: E402
from bench.common import add_quick, scratch  # noqa: E402


def tree(pid: int) -> list[int]:
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in (task / "children").read_text().split():
            found += tree(int(child))
    return found


def memory(pid: int) -> dict[str, float]:
    """RSS and PSS in MB (PSS shares each page among the processes that map it)."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, *value = line.split()
        if key in ("Rss:", "Pss:"):
            out[key[:-1]] = int(value[0]) / 1024
    return out


def name(pid: int) -> str:
    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ("server" if "uvicorn" in command else "resource tracker" if "resource_tracker" in command
            else "frame reader" if "spawn_main" in command else command[:40])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_quick(p)
    args = p.parse_args()
    floor = subprocess.Popen([sys.executable, "-c", "import torch, time; time.sleep(30)"])
    proc, port = start_server(scratch("neuronlab-bench-memory"))
    try:
        time.sleep(1 if args.quick else 6)  # the frame reader is up (quick: maybe not yet)
        api(port, "GET", "/api/models")
        time.sleep(1)
        rows = [(name(p), memory(p)) for p in tree(proc.pid)]
        base = memory(floor.pid)
    finally:
        proc.terminate()
        proc.wait()
        floor.kill()
    print(f"{'process':>18} {'RSS MB':>8} {'PSS MB':>8}")
    for label, m in rows:
        print(f"{label:>18} {m['Rss']:8.0f} {m['Pss']:8.0f}")
    rss, pss = sum(m["Rss"] for _, m in rows), sum(m["Pss"] for _, m in rows)
    print(f"{'idle server, total':>18} {rss:8.0f} {pss:8.0f}   (goals: <= 400 RSS, <= 300 PSS)")
    print(f"{'baseline: import torch':>18} {base['Rss']:8.0f} {base['Pss']:8.0f}   "
          f"ratio total / baseline: RSS {rss / base['Rss']:.2f}, PSS {pss / base['Pss']:.2f}")


if __name__ == "__main__":
    main()
