"""Every bench in bench/ runs: each one's --quick mode (the same code path on tiny sizes) as
docs/benchmarks.md runs the bench, as a subprocess, asserting only that it exits 0 and prints its
table's header. Nothing here depends on speed. The benches run four at a time (most of their time
is spent starting servers and workers); each gets its own temporary folder."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from app.settings import ROOT
from tests.conftest import JOBS_AT_NORMAL_PRIORITY

# bench script: a line of its table's header (compared with runs of spaces as one), longest first
BENCHES = {
    "bench_photos.py": "p50 p99 ratio errors",
    "bench_queue.py": "queue start p50 ms start p99 ms killed job noticed after s idle worker MB",
    "soak.py": "requests by status:",
    "bench_training.py": "trainer time to 99.0% best test acc",
    "bench_classroom.py": "students frames/s server p50 server p99 rtt p99 skipped % errors CPU ms/frame",
    "bench_limits.py": "case seconds extra MB",
    "bench_memory.py": "process RSS MB PSS MB",
    "bench_thick.py": "drawings count accuracy by style",
    "bench_inference.py": "path clients p50 ms p99 ms p50/baseline server CPU ms/req",
    "reading_robustness.py": "MNIST test digits, re-drawn digits mnist-recipe",
    "bench_describe.py": "way first call ms later ms first/later",
    "bench_activations.py": "model path p50 ms p99 ms p50/baseline bytes",
    "bench_projects.py": "held-out accuracy:",
    "bench_reader.py": "stage reader torch ratio",
}
AT_ONCE = 4
LIMIT_S = 300  # a bench that hangs fails rather than stalling the suite


def test_every_bench_is_listed():
    assert sorted(BENCHES) == sorted(p.name for p in (ROOT / "bench").glob("*.py")
                                     if p.name not in ("__init__.py", "common.py"))


def run_quick(script: str, tmp: str) -> subprocess.CompletedProcess:
    # the servers a bench starts train at normal priority, as the tests' do (tests/conftest.py): a
    # SCHED_IDLE job gets no CPU at all beside other work, and then never hears its stop
    return subprocess.run([sys.executable, f"bench/{script}", "--quick"], cwd=ROOT, capture_output=True, text=True,
                          timeout=LIMIT_S, env={**os.environ, "TMPDIR": tmp, **JOBS_AT_NORMAL_PRIORITY})


@pytest.fixture(scope="module")
def quick_runs(request, tmp_path_factory):
    """Every selected bench's quick run, started here, four at a time: script -> its future."""
    wanted = [item.callspec.params["script"] for item in request.session.items
              if item.module is request.module and hasattr(item, "callspec")]
    with ThreadPoolExecutor(AT_ONCE) as pool:
        yield {s: pool.submit(run_quick, s, str(tmp_path_factory.mktemp(s.removesuffix(".py")))) for s in wanted}


@pytest.mark.parametrize("script", BENCHES)
def test_the_quick_mode_runs_and_prints_its_table(script, quick_runs: dict[str, Future]):
    done = quick_runs[script].result()
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    lines = {" ".join(line.split()) for line in done.stdout.splitlines()}
    assert any(BENCHES[script] in line for line in lines), done.stdout[-3000:]
