"""Transfer learning, as Teachable Machine does it: a network pretrained on ImageNet is frozen, each
photo goes through it once to give 1280 features (what the network "sees"), and only a new output
layer (softmax regression: 1280 x k weights + k biases) is trained on those features. With a
handful of photos a class this learns what a small CNN trained from scratch cannot.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from engine import models, photonet, scores


@dataclass
class HeadConfig:
    steps: int = 300            # full-batch Adam steps (features are few: all fit in one batch)
    learning_rate: float = 0.01
    weight_decay: float = 1e-3  # keeps the weights small: few photos, many features
    seed: int = 0


@torch.inference_mode()
def features(body: nn.Module, inputs: np.ndarray, batch: int = 8) -> np.ndarray:
    """(N, 1280) float32 features of prepared photos (N, 3, 224, 224) in 0..1."""
    out = [body(torch.from_numpy(np.ascontiguousarray(inputs[i:i + batch], dtype=np.float32))).float().numpy()
           for i in range(0, len(inputs), batch)]
    return np.concatenate(out) if out else np.zeros((0, photonet.FEATURES), np.float32)


def new_head(classes: int) -> nn.Sequential:
    """The trained part: one dense layer from the features to the classes (engine.models' output layer)."""
    return models.build_layers([], classes, input_shape=(photonet.FEATURES,))


def train_head(x: np.ndarray, y: np.ndarray, classes: int, config: HeadConfig | None = None) -> nn.Sequential:
    """Softmax regression on features x (N, F) with labels y (N,), by full-batch Adam (written out
    here: torch.optim's first use in a process costs a second of imports; tests hold it to it)."""
    config = config or HeadConfig()
    torch.manual_seed(config.seed)
    head = new_head(classes)
    params = [head[-1].weight, head[-1].bias]
    for p in params:
        nn.init.zeros_(p)
    xs, ys = torch.from_numpy(np.asarray(x, np.float32)), torch.from_numpy(np.asarray(y, np.int64))
    with torch.enable_grad():
        adam(params, lambda: nn.functional.cross_entropy(head(xs), ys), config)
    return head.eval()


def adam(params: list[torch.Tensor], loss_fn, config: HeadConfig, betas=(0.9, 0.999), eps=1e-8) -> None:
    """`config.steps` steps of Adam with L2 weight decay, as torch.optim.Adam computes them."""
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    for step in range(1, config.steps + 1):
        grads = torch.autograd.grad(loss_fn(), params)
        with torch.no_grad():
            for p, g, (m, v) in zip(params, grads, moments):
                g = g + config.weight_decay * p
                m.mul_(betas[0]).add_(g, alpha=1 - betas[0])
                v.mul_(betas[1]).addcmul_(g, g, value=1 - betas[1])
                m_hat, v_hat = m / (1 - betas[0] ** step), v / (1 - betas[1] ** step)
                p.sub_(config.learning_rate * m_hat / (v_hat.sqrt() + eps))


@torch.inference_mode()
def predict(head: nn.Module, x: np.ndarray) -> np.ndarray:
    """Class indices (N,) for features (N, F)."""
    if len(x) == 0:
        return np.zeros(0, dtype=int)
    return head(torch.from_numpy(np.asarray(x, np.float32))).argmax(1).numpy()


def fit_and_score(train_x, train_y, test_x, test_y, classes: int, config: HeadConfig | None = None) -> tuple[nn.Module, dict]:
    """Train a head on one split and score it on the other (engine.scores.report)."""
    head = train_head(train_x, train_y, classes, config)
    return head, scores.report(test_y, predict(head, test_x), classes)


def trained_parameters(classes: int) -> int:
    return photonet.FEATURES * classes + classes


CURVE_SIZES = (2, 5, 10, 20)  # photos a class, for the learning curve of the lesson


def first_of_each(labels: np.ndarray, n: int, classes: int) -> np.ndarray | None:
    """Indices of the first `n` examples of each class (in order), or None when a class has fewer."""
    labels = np.asarray(labels)
    picked = [np.nonzero(labels == c)[0][:n] for c in range(classes)]
    if any(len(p) < n for p in picked):
        return None
    return np.sort(np.concatenate(picked))


def learning_curve(labels: np.ndarray, test_labels: np.ndarray, classes: int, ways: dict, sizes=CURVE_SIZES) -> dict:
    """Held-out accuracy after learning from n photos a class, for each n in `sizes` and each way
    of learning: `ways` maps a name to fit(indices into the training examples) -> predictions of
    the held-out ones. A size the photos cannot give (a class has fewer) is None."""
    curve = {name: [] for name in ways}
    for n in sizes:
        chosen = first_of_each(labels, n, classes)
        for name, fit in ways.items():
            curve[name].append(None if chosen is None else float((fit(chosen) == np.asarray(test_labels)).mean()))
    return {"sizes": list(sizes), **curve}
