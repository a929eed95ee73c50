"""Teach your own classes, measured: preparing a project's photos, training its CNN on one thread
(as the job worker does), its held-out accuracy, and classifying a 640x480 webcam frame with it
against the shipped digit model on the same frame (the baseline). Also clothing product photos
read by the Fashion-MNIST model against the 28x28 originals (the baseline).

    .venv/bin/python bench/bench_projects.py [--photos 20] [--epochs 40] [--items 1000] [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.bench_activations import timed  # noqa: E402
from bench.common import add_quick, object_photo, product_photo  # noqa: E402
from engine import datasets, inference, models  # noqa: E402
from engine.preprocess import prepare  # noqa: E402
from engine.stores import store  # noqa: E402
from engine.stores.projects import ProjectStore  # noqa: E402
from engine.training.train import TrainConfig, Trainer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=20, help="photos per class (2 classes)")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--items", type=int, default=1000, help="Fashion-MNIST test items shown as product photos")
    ap.add_argument("--repeat", type=int, default=50, help="timed classifications of the webcam frame")
    add_quick(ap)
    args = ap.parse_args()
    if args.quick:
        args.photos, args.epochs, args.items, args.repeat = 4, 1, 20, 3
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        projects = ProjectStore(Path(folder))
        p = projects.create("Ball or box", ["ball", "box"])
        for kind, c in enumerate(p["classes"]):
            for _ in range(args.photos):
                projects.add_sample(p["id"], c["id"], object_photo(kind, rng))
        t = time.perf_counter()
        data, held_out = projects.training_set(p["id"])
        prep = (time.perf_counter() - t) / (2 * args.photos) * 1000
        cfg = TrainConfig(architecture=models.PHOTO_LAYERS, dataset="project", epochs=args.epochs, batch_size=16,
                          optimizer="adam", learning_rate=0.003, weight_decay=1e-4, augment=True, bf16=False)
        trainer = Trainer(cfg, data)
        summary = trainer.run()
        print(f"project: 2 classes x {args.photos} photos, {len(held_out)} held out")
        print(f"  preparing the training set: {prep:.1f} ms per photo")
        print(f"  training {trainer.step_count} steps ({args.epochs} epochs) on 1 thread: {summary['seconds']:.1f} s")
        print(f"  held-out accuracy: {summary['test_accuracy']:.3f}")
        card = store.ModelCard(id="bench", name="bench", task="project", dataset="project", labels=["ball", "box"],
                               architecture="custom", preprocess="photo", layers=models.PHOTO_LAYERS,
                               input_shape=list(models.PHOTO_INPUT))
        photo_model = store.StoredModel(card, trainer.model.eval())
    digits = store.load(ROOT / "models" / "digits.json")
    frame = object_photo(1, rng, size=(640, 480))
    ours = statistics.median(timed(lambda: inference.classify(photo_model, frame), args.repeat)) * 1000
    base = statistics.median(timed(lambda: inference.classify(digits, frame), args.repeat)) * 1000
    print(f"classify a 640x480 webcam frame: project model {ours:.2f} ms, digit model (baseline) {base:.2f} ms, "
          f"ratio {ours / base:.2f}")

    fashion = datasets.load("fashion", ROOT / "data")
    model = store.load(ROOT / "models" / "fashion.json")
    idx = rng.choice(len(fashion.test), args.items, replace=False)
    inputs = np.stack([prepare(product_photo(fashion.test.images[i], rng), "object").input for i in idx])
    photos = (inference.probabilities(model, inputs).argmax(1) == fashion.test.labels[idx]).mean()
    originals = (inference.probabilities(model, fashion.test.images[idx] / 255).argmax(1) == fashion.test.labels[idx]).mean()
    print(f"clothing product photos ({args.items} test items): {photos:.3f} vs the 28x28 originals (baseline) "
          f"{originals:.3f}, ratio {photos / originals:.3f}")


if __name__ == "__main__":
    main()
