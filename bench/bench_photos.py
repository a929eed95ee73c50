"""The ImageNet photo network: speed and memory, each against a baseline measured in the same run.

    .venv/bin/python bench/bench_photos.py [--requests 60] [--students 30] [--seconds 20] [--quick]

1. forward pass in-process (1 torch thread): our module vs the plain functional forward of the
   checkpoint (bench.common.functional_forward, tests/test_photonet.py's oracle), per 224x224 photo;
2. a real server (as scripts/serve.sh starts it): POST /api/predict of a 640x480 JPEG, p50/p99
   (baseline: the same request to the digit model), Grad-CAM (POST /api/saliency), and webcam
   frames a second for one user (320x240 JPEGs one after the other, as the page sends them);
3. teaching 40 photos (20 a class) by transfer learning, wall time of POST /train including the
   features (baseline: the small CNN from scratch on the same photos, as a job);
4. memory: the idle server's RSS and PSS before and after the photo network is first used
   (baseline: a bare Python process that imports torch);
5. 30 students drawing at 10 frames a second, alone and while 5 photos a second are classified:
   the drawing frames' server p99 and its ratio.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.bench_activations import timed  # noqa: E402
from bench.bench_classroom import ms, run  # noqa: E402
from bench.bench_inference import api, frame_png, multipart, pct, start_server  # noqa: E402
from bench.bench_memory import memory, tree  # noqa: E402
from bench.common import add_quick, crops, encode, functional_forward, photo, scratch  # noqa: E402
from engine import imagenet  # noqa: E402
from engine.preprocess import prepare  # noqa: E402
from engine.stores.store import ModelRegistry  # noqa: E402

DATA = Path(scratch("neuronlab-bench-photos"))
SETTLE_S = 6  # after a server starts: its frame reader is up (--quick: 1)
WEBCAM_S = 10  # seconds of webcam frames (--quick: 1)


def forward_pass(n: int) -> None:
    torch.set_num_threads(1)
    net = ModelRegistry([ROOT / "models"]).get(imagenet.MODEL_ID).module
    original = torch.load(imagenet._package_file(imagenet.WEIGHTS_PACKAGE, "efficientnet-lite0-57934424.pth"),
                          weights_only=True)
    x = torch.from_numpy(prepare(photo("coffee.png"), "imagenet").input)[None]
    with torch.inference_mode():
        for _ in range(3):
            net(x), functional_forward(original, x)
        ours, base = [], []
        for _ in range(n):  # interleaved, so a noisy moment hits both
            ours += timed(lambda: net(x), 1)
            base += timed(lambda: functional_forward(original, x), 1)
    (o50, o99), (b50, b99) = pct(ours), pct(base)
    print("\n1. forward pass, one 224x224 photo, 1 thread (ms)")
    print(f"{'':>22} {'p50':>7} {'p99':>7} {'ratio':>6}")
    print(f"{'functional (baseline)':>22} {b50:7.1f} {b99:7.1f} {1:6.2f}")
    print(f"{'engine.photonet':>22} {o50:7.1f} {o99:7.1f} {o50 / b50:6.2f}")


def post_photo(port: int, data: bytes, model: str, path: str = "/api/predict") -> dict:
    body, ctype = multipart(data)
    boundary = ctype.split("boundary=")[1]
    extra = f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n{model}\r\n".encode()
    return api(port, "POST", path, raw=extra + body, ctype=ctype)


def server_photos(port: int, n: int) -> None:
    big = encode(photo("coffee.png").resize((640, 480)), "JPEG", quality=85)
    webcam = encode(photo("coffee.png").resize((320, 240)), "JPEG", quality=85)
    digit = frame_png()
    for _ in range(3):
        post_photo(port, big, "imagenet"), post_photo(port, digit, "digits")
    photos = timed(lambda: post_photo(port, big, "imagenet"), n)
    digits = timed(lambda: post_photo(port, digit, "digits"), n)
    cams = timed(lambda: post_photo(port, big, "imagenet", "/api/saliency"), max(min(10, n), n // 3))
    start, frames = time.perf_counter(), 0
    while time.perf_counter() - start < WEBCAM_S:
        post_photo(port, webcam, "imagenet")
        frames += 1
    fps = frames / (time.perf_counter() - start)
    (p50, p99), (d50, d99), (c50, c99) = pct(photos), pct(digits), pct(cams)
    print("\n2. a real server, HTTP on loopback (ms)")
    print(f"{'':>34} {'p50':>7} {'p99':>7} {'ratio':>6}")
    print(f"{'digit model, a drawing (baseline)':>34} {d50:7.1f} {d99:7.1f} {1:6.2f}")
    print(f"{'photo network, 640x480 JPEG':>34} {p50:7.1f} {p99:7.1f} {p50 / d50:6.2f}")
    print(f"{'where it looked (Grad-CAM)':>34} {c50:7.1f} {c99:7.1f} {c50 / d50:6.2f}")
    print(f"webcam, one user, 320x240 JPEGs one after another: {fps:.1f} frames/s")


def teach(port: int, per_class: int = 20) -> None:
    def project():
        p = api(port, "POST", "/api/projects", {"name": "Cat or coffee?", "classes": ["cat", "coffee"]})
        for c, name in zip(p["classes"], ("chelsea.png", "coffee.png")):
            images = crops(name, per_class, seed=len(name))
            body, ctype = b"", None
            for img in images:  # one request a photo keeps the bench's client simple
                body, ctype = multipart(encode(img, "JPEG", quality=88))
                boundary = ctype.split("boundary=")[1]
                body = f"--{boundary}\r\nContent-Disposition: form-data; name=\"class_id\"\r\n\r\n{c['id']}\r\n".encode() + \
                    body.replace(b'name="image"', b'name="images"')
                api(port, "POST", f"/api/projects/{p['id']}/samples", raw=body, ctype=ctype)
        return p["id"]
    t = time.perf_counter()
    first = project()
    upload = time.perf_counter() - t
    second = project()
    for f in (DATA / "projects" / first).glob("*.f32"):
        f.unlink()  # as if the photos had been added without the photo network: computed at training
    t = time.perf_counter()
    result = api(port, "POST", f"/api/projects/{first}/train", {})["project"]["result"]
    transfer_wall = time.perf_counter() - t
    t = time.perf_counter()
    again = api(port, "POST", f"/api/projects/{first}/train", {"seed": 1})["project"]["result"]
    cached_wall = time.perf_counter() - t
    t = time.perf_counter()
    job = api(port, "POST", f"/api/projects/{second}/train", {"method": "scratch"})["id"]
    while api(port, "GET", f"/api/train/{job}")["status"] not in ("done", "failed", "stopped"):
        time.sleep(0.05)
    scratch_wall = time.perf_counter() - t
    scratch = api(port, "GET", f"/api/projects/{second}")["result"]
    print(f"\n3. teaching {2 * per_class} photos ({per_class} a class), wall time of POST /train (s)")
    print(f"{'':>40} {'wall':>6} {'ratio':>6} {'held-out':>9}")
    print(f"{'CNN from scratch, 40 epochs (baseline)':>40} {scratch_wall:6.2f} {1:6.2f} {scratch['accuracy']:9.3f}")
    print(f"{'transfer, features computed at training':>40} {transfer_wall:6.2f} {transfer_wall / scratch_wall:6.2f} "
          f"{result['accuracy']:9.3f}   (features {result['features_seconds']} s)")
    print(f"{'transfer, features kept from the upload':>40} {cached_wall:6.2f} {cached_wall / scratch_wall:6.2f} "
          f"{again['accuracy']:9.3f}")
    print(f"adding the {2 * per_class} photos one request each, their features computed then: {upload:.2f} s "
          f"({upload / (2 * per_class) * 1000:.0f} ms a photo)")


def memory_rows(proc, label: str) -> tuple[str, float, float]:
    rows = [memory(p) for p in tree(proc.pid)]
    return label, sum(r["Rss"] for r in rows), sum(r["Pss"] for r in rows)


def classroom(port: int, students: int, seconds: float) -> None:
    quiet = run(port, students, seconds, 10.0)
    stop, posted = threading.Event(), []
    shot = encode(photo("coffee.png").resize((320, 240)), "JPEG", quality=85)

    def photos():
        while not stop.is_set():
            t = time.perf_counter()
            post_photo(port, shot, "imagenet")
            posted.append(time.perf_counter() - t)
            stop.wait(max(0.0, 0.2 - (time.perf_counter() - t)))  # 5 a second
    poster = threading.Thread(target=photos)
    poster.start()
    busy = run(port, students, seconds, 10.0)
    stop.set()
    poster.join()
    q, b = ms(quiet["server"], 99), ms(busy["server"], 99)
    print(f"\n5. {students} students drawing at 10 frames/s for {seconds:g} s (drawing frames' server ms)")
    print(f"{'':>26} {'p50':>7} {'p99':>7} {'ratio':>6} {'errors':>6}")
    print(f"{'drawing alone (baseline)':>26} {ms(quiet['server'], 50):7.2f} {q:7.2f} {1:6.2f} {quiet['errors']:6d}")
    print(f"{'with 5 photos a second':>26} {ms(busy['server'], 50):7.2f} {b:7.2f} {b / q:6.2f} {busy['errors']:6d}"
          f"   (photos: {len(posted) / seconds:.1f}/s, p50 {statistics.median(posted) * 1000:.0f} ms)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=60)
    p.add_argument("--students", type=int, default=30)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--teach-only", action="store_true", help="only 3.")
    p.add_argument("--classroom-only", action="store_true",
                   help="only 5., on a server whose photo thread runs at normal priority and on one at the default")
    add_quick(p)
    args = p.parse_args()
    per_class = 20
    if args.quick:
        global SETTLE_S, WEBCAM_S
        args.requests, args.students, args.seconds, per_class, SETTLE_S, WEBCAM_S = 2, 2, 2, 4, 1, 1
    if args.teach_only:
        shutil.rmtree(DATA, ignore_errors=True)
        proc, port = start_server(str(DATA))
        try:
            time.sleep(SETTLE_S)
            post_photo(port, encode(photo("coffee.png")), "imagenet")  # the network loaded
            teach(port, per_class)
        finally:
            proc.terminate()
            proc.wait()
        return
    if args.classroom_only:
        for niceness in ("0", "10"):
            proc, port = start_server(scratch("neuronlab-bench-photos-class"), {"NEURONLAB_PHOTO_NICENESS": niceness})
            try:
                time.sleep(SETTLE_S)
                post_photo(port, encode(photo("coffee.png")), "imagenet")  # the network loaded
                print(f"\nphoto thread niceness {niceness}:", end="")
                classroom(port, args.students, args.seconds)
            finally:
                proc.terminate()
                proc.wait()
        return
    forward_pass(args.requests)
    data = DATA
    shutil.rmtree(data, ignore_errors=True)
    floor = __import__("subprocess").Popen([sys.executable, "-c", "import torch, time; time.sleep(120)"])
    proc, port = start_server(str(data))
    try:
        time.sleep(SETTLE_S)
        api(port, "GET", "/api/models")
        idle = memory_rows(proc, "idle server")
        server_photos(port, args.requests)
        loaded = memory_rows(proc, "after photos")
        base = memory(floor.pid)
        teach(port, per_class)
        print("\n4. memory, every process of the server (MB)")
        print(f"{'':>26} {'RSS':>6} {'PSS':>6}")
        print(f"{'python + torch (baseline)':>26} {base['Rss']:6.0f} {base['Pss']:6.0f}")
        for label, rss, pss in (idle, loaded):
            print(f"{label:>26} {rss:6.0f} {pss:6.0f}")
        classroom(port, args.students, args.seconds)
    finally:
        proc.terminate()
        proc.wait()
        floor.kill()


if __name__ == "__main__":
    main()
