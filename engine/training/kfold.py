"""k-fold cross-validation, as the lesson's project evaluates its Keras recipe (KFold(n_folds=5,
shuffle=True)): the training images, shuffled once, are cut into k folds of (nearly) equal size;
each fold in turn is held out for validation while the model trains on the other k - 1. With MNIST's
60,000 training images and 5 folds, each model trains on 48,000 and is validated on 12,000
(1,500 mini-batches of 32 an epoch)."""
from __future__ import annotations

import math

import numpy as np

from engine import datasets


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
    lesson's numpy std)."""
    a = np.asarray(accuracies, dtype=float)
    return {"accuracies": [float(x) for x in a], "mean": float(a.mean()), "std": float(a.std())}
