"""Which queue library runs district mode's training jobs: RQ or Dramatiq, both on a real
redis-server, measured for what a training job needs (docs/scaling.md):

- start: seconds from enqueueing a job to its first line running, on an idle worker that has
  torch imported (30 jobs one after the other; p50 and p99);
- a killed job: the process running a job is killed with SIGKILL (a machine's OOM killer, a
  crash); seconds until the server can know: RQ's worker sees its work horse die and calls a
  handler; Dramatiq runs jobs in threads of the worker process, so that process is what dies,
  and a second worker gets the message again once the broker declares the first one dead;
- memory: resident MB of an idle worker process with torch imported.

    .venv/bin/python bench/bench_queue.py [--jobs 30] [--kill-wait 90] [--quick]

Dramatiq is not a NeuronLab dependency: `.venv/bin/pip install dramatiq` to include it (else
only RQ is measured). The baseline is RQ, measured in the same run.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import add_quick  # noqa: E402

QUEUE = "bench-training"


def redis_client(url: str):
    import redis
    return redis.Redis.from_url(url, socket_timeout=None)  # BLPOP waits longer than the default 5 s


# --- the jobs (run inside the workers) ----------------------------------------------------------

def job(enqueued: float, url: str, seconds: float = 0.0) -> None:
    """Records when it started (and its pid), then works for `seconds`."""
    r = redis_client(url)
    r.rpush("bench:started", f"{time.time() - enqueued} {os.getpid()}")
    end = time.time() + seconds
    while time.time() < end:
        time.sleep(0.05)


def rq_worker(url: str) -> None:
    import torch  # noqa: F401  (a training worker has it loaded before any job)
    from rq import Queue, Worker

    r = redis_client(url)

    def horse_killed(job, retpid, ret_val, rusage):
        r.rpush("bench:killed", f"{time.time()} {job.id}")
    Worker([Queue(QUEUE, connection=r)], connection=r, work_horse_killed_handler=horse_killed).work()


def dramatiq_actor(url: str):
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker
    dramatiq.set_broker(RedisBroker(url=url))
    return dramatiq.actor(job, queue_name=QUEUE, max_retries=0, time_limit=3_600_000)


def dramatiq_worker(url: str) -> None:
    import torch  # noqa: F401
    from dramatiq import Worker
    actor = dramatiq_actor(url)
    worker = Worker(actor.broker, worker_threads=1)
    worker.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    worker.stop()


# --- the measurements (run here) -----------------------------------------------------------------

def worker_process(kind: str, url: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, f"{kind}-worker", url], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def enqueue(kind: str, url: str, seconds: float = 0.0) -> None:
    if kind == "rq":
        from rq import Queue
        Queue(QUEUE, connection=redis_client(url)).enqueue("bench.bench_queue.job", time.time(), url, seconds, job_timeout=3600)
    else:
        dramatiq_actor(url).send(time.time(), url, seconds)


def next_start(r, timeout: float) -> tuple[float, int] | None:
    got = r.blpop(["bench:started"], timeout=timeout)
    if got is None:
        return None
    delay, pid = got[1].decode().split()
    return float(delay), int(pid)


def measure(kind: str, jobs: int, kill_wait: float) -> dict:
    from bench.common import start_redis  # the throwaway redis-server the district tests use too
    folder = tempfile.mkdtemp(prefix=f"bench-queue-{kind}-")
    redis_proc, url = start_redis(Path(folder))
    r = redis_client(url)
    first = worker_process(kind, url)
    second = None
    try:
        enqueue(kind, url)  # warm up: the worker is up once it ran one
        assert next_start(r, 60) is not None, f"the {kind} worker did not start"
        time.sleep(1.0)
        memory = rss_mb(first.pid)
        delays = []
        for _ in range(jobs):
            enqueue(kind, url)
            delays.append(next_start(r, 30)[0])
        # a job killed mid-run
        second = worker_process(kind, url) if kind == "dramatiq" else None
        time.sleep(3.0 if second else 0.0)
        enqueue(kind, url, seconds=600)
        _, pid = next_start(r, 30)
        time.sleep(0.5)
        killed_at = time.time()
        os.kill(pid, signal.SIGKILL)
        if kind == "rq":  # the worker's handler is told
            got = r.blpop(["bench:killed"], timeout=kill_wait)
            noticed = float(got[1].split()[0]) - killed_at if got else None
        else:  # the message comes back to the second worker
            again = next_start(r, kill_wait)
            noticed = time.time() - killed_at if again else None
        delays.sort()
        return {"kind": kind, "p50": delays[len(delays) // 2] * 1000, "p99": delays[int(len(delays) * 0.99)] * 1000,
                "noticed": noticed, "memory": memory}
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        redis_proc.terminate()
        redis_proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1].endswith("-worker"):
        return {"rq-worker": rq_worker, "dramatiq-worker": dramatiq_worker}[sys.argv[1]](sys.argv[2])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=30)
    p.add_argument("--kill-wait", type=float, default=90, help="seconds to wait for a killed job to be noticed")
    add_quick(p)
    args = p.parse_args()
    if args.quick:
        args.jobs, args.kill_wait = 2, 20
    kinds = ["rq"]
    try:
        if args.quick:
            raise ImportError  # RQ only
        import dramatiq  # noqa: F401
        kinds.append("dramatiq")
    except ImportError:
        print("dramatiq is not installed: RQ only (.venv/bin/pip install dramatiq to compare)")
    rows = [measure(kind, args.jobs, args.kill_wait) for kind in kinds]
    print(f"\n{'queue':10} {'start p50 ms':>12} {'start p99 ms':>12} {'killed job noticed after s':>27} {'idle worker MB':>14}")
    for row in rows:
        noticed = f"{row['noticed']:.2f}" if row["noticed"] is not None else f"not in {args.kill_wait:g}"
        print(f"{row['kind']:10} {row['p50']:12.1f} {row['p99']:12.1f} {noticed:>27} {row['memory']:14.0f}")
    if len(rows) == 2 and rows[0]["p50"]:
        print(f"start p50 ratio dramatiq / rq: {rows[1]['p50'] / rows[0]['p50']:.2f}")


if __name__ == "__main__":
    main()
