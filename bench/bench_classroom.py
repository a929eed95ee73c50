"""Thirty students drawing at once against one 2-core server, as in a class session: each student
joins the session, streams frames over /ws/draw while drawing (at most one frame in flight and
at most --fps a second, as the join page does), and at the end of each stroke sends the drawing
to the class gallery and says what it shows; the teacher's gallery socket counts every update.
The baseline is one student alone, measured in the same run.

    .venv/bin/python bench/bench_classroom.py [--students 30] [--seconds 20] [--fps 10] [--training]
        [--district 4] [--quick]

With --district N the class draws once more through scripts/district.sh (N replicas behind nginx,
galleries over Redis; docs/scaling.md), the teacher's gallery socket and the students on the one
address nginx serves, after the one server (the baseline) in the same run.

Server time is what the server reports in each reply (`server_ms`: from receiving the frame to
the reply being ready, queueing included); round trip is what the student's socket sees.
"Skipped" is the share of the frames a student wanted to send at --fps while drawing that it
could not, because the reply to the one before had not come back yet (the page keeps one frame
in flight). With --training the class draws once more while a full-size training job runs.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from bench.bench_inference import api, cpu_seconds, frame_png, multipart, start_server, start_training, stroke_frames  # noqa: E402
from bench.common import add_quick  # noqa: E402

STUDENT_FRAME = 112  # the join page streams its live frames at this size, in grey (see static/js/join.js)

STROKE_S, PAUSE_S = 1.5, 1.0  # a stroke streams frames for this long, then the student pauses


async def student(port: int, code: str, name: str, frame: bytes, strokes: list[bytes], seconds: float, fps: float,
                  out: dict) -> None:
    me = await asyncio.to_thread(api, port, "POST", f"/api/sessions/{code}/students", {"name": name})
    key = {"X-Student-Key": me["student_key"]}
    body, ctype = multipart(frame)
    end = time.perf_counter() + seconds
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    async with connect(f"ws://127.0.0.1:{port}/ws/draw?steps=false&model=digits", max_size=None) as ws:
        await ws.recv()  # ready
        await asyncio.sleep(rng.uniform(0, STROKE_S + PAUSE_S))  # students do not start in step
        while time.perf_counter() < end:
            stroke_start = time.perf_counter()
            stroke_end = stroke_start + STROKE_S * rng.uniform(0.6, 1.4)
            sent = 0
            while time.perf_counter() < stroke_end:
                t = time.perf_counter()
                await ws.send(strokes[sent % len(strokes)])  # each frame differs from the one before
                reply = json.loads(await ws.recv())
                sent += 1
                out["rtt"].append(time.perf_counter() - t)
                out["server"].append(reply["server_ms"] / 1000)
                out["errors"] += reply["type"] == "error"
                await asyncio.sleep(max(0.0, 1 / fps - (time.perf_counter() - t)))
            out["due"] += max(sent, int((time.perf_counter() - stroke_start) * fps + 0.5))
            out["frames"] += sent
            t = time.perf_counter()
            drawing = await asyncio.to_thread(api, port, "POST", f"/api/sessions/{code}/drawings",
                                              raw=body, ctype=ctype, headers=key)
            out["posts"].append(time.perf_counter() - t)
            out["sent"][drawing["id"]] = t
            await asyncio.sleep(PAUSE_S * rng.uniform(0.5, 1.5))


async def gallery(port: int, code: str, key: str, out: dict, stop: asyncio.Event) -> None:
    async with connect(f"ws://127.0.0.1:{port}/ws/sessions/{code}", max_size=None) as ws:
        await ws.send(json.dumps({"key": key}))  # the key travels in the first message, not the address
        await ws.recv()  # snapshot
        while not stop.is_set():
            try:
                event = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
            except asyncio.TimeoutError:
                continue
            if event["type"] == "drawing":
                out["seen"][event["drawing"]["id"]] = time.perf_counter()


def run(port: int, students: int, seconds: float, fps: float) -> dict:
    session = api(port, "POST", "/api/sessions", {})
    out = {"rtt": [], "server": [], "posts": [], "sent": {}, "seen": {}, "due": 0, "frames": 0, "errors": 0}
    frame = frame_png(STUDENT_FRAME)
    strokes = stroke_frames(STUDENT_FRAME)

    async def main():
        stop = asyncio.Event()
        watcher = asyncio.create_task(gallery(port, session["code"], session["teacher_key"], out, stop))
        await asyncio.sleep(0.3)
        await asyncio.gather(*(student(port, session["code"], f"S{i}", frame, strokes, seconds, fps, out)
                               for i in range(students)))
        await asyncio.sleep(1.0)
        stop.set()
        await watcher
    asyncio.run(main())
    api(port, "POST", f"/api/sessions/{session['code']}/end", {"keep": False},
         headers={"X-Teacher-Key": session["teacher_key"]})
    return out


def ms(values, q) -> float:
    return float(np.percentile(np.array(values) * 1000, q)) if values else float("nan")


def measure(proc, port: int, students: int, seconds: float, fps: float, label: str) -> tuple:
    cpu = cpu_seconds(proc.pid, children=True)
    t = time.perf_counter()
    out = run(port, students, seconds, fps)
    wall = time.perf_counter() - t
    frames = len(out["server"])
    delays = [out["seen"][i] - out["sent"][i] for i in out["sent"] if i in out["seen"]]
    return (label, frames / wall, ms(out["server"], 50), ms(out["server"], 99), ms(out["rtt"], 99),
            100 * (1 - out["frames"] / max(out["due"], 1)), out["errors"],
            (cpu_seconds(proc.pid, children=True) - cpu) / max(frames, 1) * 1000,
            len(out["sent"]), sum(i in out["seen"] for i in out["sent"]), ms(delays, 99))


def start_district(replicas: int) -> tuple[subprocess.Popen, int]:
    """scripts/district.sh with `replicas` replicas (access logs off, as the one server's); its nginx port."""
    from bench.common import free_port
    port, folder = free_port(), Path(tempfile.mkdtemp(prefix="neuronlab-district-"))
    env = {**os.environ, "NEURONLAB_PORT": str(port), "NEURONLAB_REPLICAS": str(replicas),
           "NEURONLAB_REPLICA_PORT": str(18100 + port % 1000 * 10), "NEURONLAB_REDIS_PORT": str(free_port()),
           "NEURONLAB_DISTRICT_DIR": str(folder / "run"), "NEURONLAB_DATA_DIR": str(folder / "data")}
    env.pop("NEURONLAB_REDIS_URL", None)
    proc = subprocess.Popen(["bash", "scripts/district.sh", "--log-level", "warning"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            api(port, "GET", "/healthz")
            return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the district did not start")


def sweep(started: tuple, args, labels: list[str], job_label: str) -> list[tuple]:
    """On a started server (process, port): a warm-up, then one row per label ("1 alone": one
    student, else the class), then with --training the class once more while a job trains; the
    server is stopped at the end."""
    proc, port = started
    try:
        if not args.quick:
            run(port, 1, 2, args.fps)  # warm up
        rows = [measure(proc, port, 1 if label == "1 alone" else args.students, args.seconds, args.fps, label)
                for label in labels]
        if args.training:
            job = start_training(port)
            rows.append(measure(proc, port, args.students, args.seconds, args.fps, job_label))
            api(port, "POST", f"/api/train/{job}/stop")
        return rows
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=30)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--fps", type=float, default=10, help="frames a second per drawing student (the join page's cap)")
    p.add_argument("--training", action="store_true", help="and once more while a training job runs")
    p.add_argument("--district", type=int, default=0, metavar="N", help="and once more through N replicas behind nginx")
    add_quick(p)
    args = p.parse_args()
    if args.quick:  # two students for two seconds, no warm-up (a district or a training job only if asked for)
        args.students, args.seconds = 2, 2
    rows = sweep(start_server(), args, ["1 alone", f"{args.students}"], f"{args.students} + job")
    if args.district:  # a job there goes to one of the district's workers
        rows += sweep(start_district(args.district), args, [f"{args.students}, {args.district} repl."],
                      f"{args.students}, repl. + job")
    print(f"{args.fps:g} frames/s a drawing student, {args.seconds:g} s a run")
    print(f"{'students':>16} {'frames/s':>8} {'server p50':>10} {'server p99':>10} {'rtt p99':>8} {'skipped %':>9} "
          f"{'errors':>6} {'CPU ms/frame':>12} {'drawings':>8} {'in gallery':>10} {'gallery p99 ms':>14}")
    for r in rows:
        print(f"{r[0]:>16} {r[1]:8.1f} {r[2]:10.2f} {r[3]:10.2f} {r[4]:8.2f} {r[5]:9.1f} {r[6]:>6} {r[7]:12.2f} "
              f"{r[8]:>8} {r[9]:>10} {r[10]:14.1f}")
    base, load = rows[0], rows[1]
    print(f"server p99 with {args.students} students: {load[3]:.2f} ms vs {base[3]:.2f} ms alone "
          f"(ratio {load[3] / base[3]:.2f}); cpu cores: {os.cpu_count()}; the simulated students run on the same cores")
    if args.training:
        print(f"while training: p99 {rows[2][3]:.2f} ms vs {load[3]:.2f} ms without (ratio {rows[2][3] / load[3]:.2f})")
    if args.district:
        district = rows[3 if args.training else 2]
        print(f"through {args.district} replicas behind nginx: p99 {district[3]:.2f} ms vs {load[3]:.2f} ms on one server "
              f"(ratio {district[3] / load[3]:.2f}); CPU per frame {district[7]:.2f} vs {load[7]:.2f} ms")
        if args.training:
            print(f"district while a worker trains: p99 {rows[-1][3]:.2f} ms vs {district[3]:.2f} ms without "
                  f"(ratio {rows[-1][3] / district[3]:.2f})")


if __name__ == "__main__":
    main()
