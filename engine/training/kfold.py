"""k-fold cross-validation, as the lesson's project evaluates its Keras recipe (KFold(n_folds=5,
shuffle=True)): the training images, shuffled once, are cut into k folds of (nearly) equal size;
each fold in turn is held out for validation while the model trains on the other k - 1. With MNIST's
60,000 training images and 5 folds, each model trains on 48,000 and is validated on 12,000
(1,500 mini-batches of 32 an epoch)."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from engine import choices, datasets, models


def fold_bounds(n: int, k: int) -> list[tuple[int, int]]:
    """Where each of k folds starts and ends among n shuffled images: the first n % k folds hold
    one image more than the others."""
    if not 2 <= k <= n:
        raise ValueError(f"k-fold needs from 2 to {n} folds, not {k}")
    size, extra = divmod(n, k)
    bounds, start = [], 0
    for i in range(k):
        end = start + size + (i < extra)
        bounds.append((start, end))
        start = end
    return bounds


def fold_indices(n: int, k: int, fold: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, held-out indices) of fold `fold` (0-based) of n images in k folds; the
    order is shuffled once by `seed`, the same for every fold, so the held-out parts never overlap."""
    if not 0 <= fold < k:
        raise ValueError(f"fold must be from 0 to {k - 1}, not {fold}")
    order = np.random.default_rng(seed).permutation(n)
    start, end = fold_bounds(n, k)[fold]
    return np.sort(np.concatenate([order[:start], order[end:]])), np.sort(order[start:end])


def pool(data: datasets.Dataset) -> datasets.Split:
    """All the images a dataset has for training: its training and validation splits together
    (MNIST's 60,000); the test split stays apart."""
    return datasets.Split(np.concatenate([data.train.images, data.val.images]),
                          np.concatenate([data.train.labels, data.val.labels]))


def fold_splits(data: datasets.Dataset, k: int, fold: int, n: int | None = None,
                seed: int = 0) -> tuple[datasets.Split, datasets.Split]:
    """(training split, held-out split) of fold `fold`: the first n of the pool's images (all
    when n is None) in k folds."""
    images = pool(data)
    n = len(images) if n is None else min(n, len(images))
    train, held = fold_indices(n, k, fold, seed)
    return (datasets.Split(images.images[train], images.labels[train]),
            datasets.Split(images.images[held], images.labels[held]))


def batches_per_epoch(n: int, k: int, batch_size: int) -> int:
    """Mini-batches an epoch of each fold's training (the largest fold's, when they differ)."""
    return math.ceil(max(n - (end - start) for start, end in fold_bounds(n, k)) / batch_size)


def summary(accuracies: list[float]) -> dict:
    """Per-fold accuracies, their mean and spread (the population standard deviation, as the
    lesson's numpy std) and how many folds (the lesson's "Accuracy: mean=... std=..., n=5")."""
    a = np.asarray(accuracies, dtype=float)
    return {"accuracies": [float(x) for x in a], "mean": float(a.mean()), "std": float(a.std()), "n": len(a)}


# --- how long a k-fold job takes on this machine, said before it starts ------------------------------

TEST_IMAGES = 10000   # each fold's model is also tested on the dataset's test images at the end
START_SECONDS = 5.0   # a worker process starts and loads the data
TIMED_STEPS = 8       # mini-batches timed (after WARM_STEPS that are not)
WARM_STEPS = 2
EVAL_IMAGES = 500     # images one timed evaluation reads
_speeds: dict[tuple, dict] = {}


def measure_speed(architecture: str | list, batch_size: int, optimizer: str = "momentum",
                  input_shape: tuple = (1, 28, 28), classes: int = 10) -> dict:
    """How fast this machine trains `architecture` now, with the threads torch has here: the median
    of TIMED_STEPS mini-batches of `batch_size` random images (forward, backward, optimizer step)
    and the seconds an image takes to evaluate (a forward pass in batches). Kept per architecture,
    batch size and optimizer, as long as this process runs."""
    key = (json.dumps(architecture, sort_keys=True), batch_size, optimizer, tuple(input_shape), classes)
    if key in _speeds:
        return _speeds[key]
    generator = torch.Generator().manual_seed(0)
    model = models.build(architecture, classes, tuple(input_shape))
    opt = choices.make_optimizer(optimizer, model.parameters(), 0.001)
    x = torch.rand((batch_size, *input_shape), generator=generator)
    y = torch.randint(0, classes, (batch_size,), generator=generator)
    times = []
    model.train()
    for i in range(WARM_STEPS + TIMED_STEPS):
        started = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= WARM_STEPS:
            times.append(time.perf_counter() - started)
    model.eval()
    images = torch.rand((EVAL_IMAGES, *input_shape), generator=generator)
    with torch.inference_mode():
        model(images[:50])
        started = time.perf_counter()
        model(images)
        per_image = (time.perf_counter() - started) / EVAL_IMAGES
    speed = {"step": float(np.median(times)), "image": per_image, "batch_size": batch_size,
             "threads": torch.get_num_threads()}
    if len(_speeds) > 64:
        _speeds.clear()
    _speeds[key] = speed
    return speed


def estimate(speed: dict, n: int, k: int, epochs: int, batch_size: int) -> float:
    """Seconds a k-fold job takes at `speed` (measure_speed): each of the k folds trains `epochs`
    epochs of mini-batches on the other folds and evaluates its held-out fold after each, then its
    model is tested on TEST_IMAGES; plus the worker's start."""
    held = math.ceil(n / k)
    per_fold = epochs * (batches_per_epoch(n, k, batch_size) * speed["step"] + held * speed["image"]) \
        + TEST_IMAGES * speed["image"]
    return START_SECONDS + k * per_fold


def epochs_within(speed: dict, n: int, k: int, batch_size: int, seconds: float) -> int:
    """The most epochs a k-fold job of n images trains within `seconds` at `speed` (0: not one)."""
    one, two = (estimate(speed, n, k, e, batch_size) for e in (1, 2))
    return max(0, int((seconds - one) // (two - one)) + 1) if seconds >= one else 0
