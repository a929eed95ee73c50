"""The trainer: mini-batch training of a named architecture on a dataset, emitting events.

The trainer knows nothing about its listeners; it calls `on_event(dict)` after every batch
and epoch. Run as a command to train and save a model with its card:

    python -m engine.train --architecture compact_cnn --dataset mnist --epochs 15 --id digits
"""
from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from engine import choices, datasets, models
from engine.stores import store
from engine.training import kfold
from engine.training.augment import AugmentConfig, PhotoAugmentConfig, augment, augment_photos


@dataclass
class TrainConfig:
    architecture: str | list = "digit_cnn"  # a preset name (engine.models.PRESETS) or a layer list
    dataset: str = "mnist"             # "mnist" or "fashion"
    epochs: int = 3
    batch_size: int = 128
    optimizer: str = "momentum"        # "sgd", "momentum" or "adam"
    learning_rate: float = 0.05        # peak rate when schedule is "onecycle"
    momentum: float = 0.9              # for "momentum"
    weight_decay: float = 5e-4
    schedule: str = "onecycle"         # "onecycle" (warm up, then anneal) or "constant"
    augment: bool = True               # slant, size, position and stroke-width changes (photos:
                                       # zoom, turn, shift, mirror, light and colour changes)
    heavy_strokes: float = 0.0         # digits only: share of samples thickened as by a marker
    mirror: bool = True                # photos only: left-right flips are allowed
    train_size: int | None = None      # use only this many training images (None = all)
    val_size: int = 5000               # held out of the 60k training images
    seed: int = 0
    bf16: bool = field(default_factory=lambda: native_bf16())  # bfloat16 autocast for the forward
                                       # pass: only where the CPU computes bf16 itself (else it is slower)
    eval_batch: int = 1000
    dropout: float = 0.0               # a Dropout layer at this rate before the output layer (0: none)
    keep_best: bool = False            # end with the model of the epoch of lowest validation loss
    patience: int | None = None        # stop once this many epochs pass without a lower validation loss
    folds: int | None = None           # k-fold cross-validation: the train_size images in k folds ...
    fold: int = 0                      # ... and this one (0-based) is held out as the validation split


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX). Without it, autocast to
    bf16 converts every tensor and training is slower, not faster: bench/bench_training.py measured
    51 s to 99% with it and 32 s without on a 2-core AVX-512 machine that lacks BF16."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


DIVERGE_FACTOR = 100


class Diverged(RuntimeError):
    """The loss became NaN or infinite."""


Event = dict
Listener = Callable[[Event], None]


class Trainer:
    """Holds the model, optimizer and data order; `step()` trains exactly one mini-batch."""

    def __init__(self, config: TrainConfig, data: datasets.Dataset, on_event: Listener | None = None):
        self.config, self.data = config, data
        self.on_event = on_event or (lambda event: None)
        torch.manual_seed(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.input_shape = input_shape(data.train.images)
        self.architecture, init = with_dropout(config.architecture, config.dropout)
        self.model = (models.build(self.architecture, len(data.labels), self.input_shape) if init is None
                      else models.build_layers(self.architecture, len(data.labels), init, self.input_shape))
        train, self.val = data.train, data.val
        if config.folds:  # the pool of training (and validation) images, cut into folds
            train, self.val = kfold.fold_splits(data, config.folds, config.fold, config.train_size, config.seed)
        n = len(train) if config.train_size is None or config.folds else min(config.train_size, len(train))
        self.train_x = torch.from_numpy(train.images[:n])  # (N, 28, 28) or (N, C, H, W) uint8
        self.train_y = torch.from_numpy(train.labels[:n]).long()
        self.steps_per_epoch = math.ceil(n / config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.optimizer = make_optimizer(self.model, config)
        self.scheduler = (torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=config.learning_rate, total_steps=self.total_steps, pct_start=0.25)
            if config.schedule == "onecycle" else None)
        photos = self.input_shape[0] == 3
        self.augment_cfg = None if not config.augment else (
            PhotoAugmentConfig(mirror=config.mirror) if photos else AugmentConfig(heavy=config.heavy_strokes))
        self.augment_fn = augment_photos if photos else augment
        self.step_count = 0
        self.first_loss = 0.0
        self._order = self.batch_order(1)
        self.started = time.perf_counter()
        self.history: list[Event] = []
        self.epoch_loss = self.epoch_images = 0.0   # the training loss summed over this epoch's images
        self.losses: list[tuple[float, float]] = []  # (training, validation) loss of each epoch
        self.best_state: dict | None = None          # the model at the best epoch (keep_best)
        self.stopped_early: int | None = None        # the epoch patience ran out at
        self.kept_epoch: int | None = None           # the epoch whose model the trainer ended with

    def batch_order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.config.seed * 1000 + epoch)
        return torch.randperm(len(self.train_y), generator=g)

    def step(self, idx: torch.Tensor) -> tuple[float, float]:
        """One mini-batch: forward, loss, backward, optimizer update. Returns (loss, accuracy)."""
        self.model.train()
        x = as_input(self.train_x[idx])
        y = self.train_y[idx]
        if self.augment_cfg is not None:
            x = self.augment_fn(x, self.augment_cfg, self.generator)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.config.bf16):
            logits = self.model(x)
        loss = F.cross_entropy(logits.float(), y)
        self._check_divergence(loss.item())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.step_count += 1
        return loss.item(), (logits.argmax(1) == y).float().mean().item()

    def _check_divergence(self, loss: float) -> None:
        """NaN, infinite, or DIVERGE_FACTOR times the first loss: the run has diverged."""
        if not math.isfinite(loss):
            raise Diverged(f"the loss became {loss} at step {self.step_count + 1}")
        self.first_loss = self.first_loss or loss
        if loss > DIVERGE_FACTOR * max(self.first_loss, 1.0):
            raise Diverged(f"the loss reached {loss:.3g} at step {self.step_count + 1}, over "
                           f"{DIVERGE_FACTOR}x its first value ({self.first_loss:.3g}): the learning rate is too large")

    @torch.inference_mode()
    def evaluate(self, split: datasets.Split) -> tuple[float, float]:
        """(mean loss, accuracy) over a whole split."""
        self.model.eval()
        total_loss, correct = 0.0, 0
        for start in range(0, len(split), self.config.eval_batch):
            x = as_input(split.images[start:start + self.config.eval_batch])
            y = torch.from_numpy(split.labels[start:start + self.config.eval_batch]).long()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.config.bf16):
                logits = self.model(x).float()
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
        return total_loss / max(len(split), 1), correct / max(len(split), 1)

    def emit(self, event: Event) -> None:
        if event["type"] != "batch":  # batches are many: listeners get them, the history does not
            self.history.append(event)
        self.on_event(event)

    def advance(self) -> bool:
        """Train the next mini-batch (validating at the end of each epoch); False when done (all
        epochs, or patience ran out)."""
        if self.step_count >= self.total_steps or self.stopped_early:
            return False
        epoch, b = divmod(self.step_count, self.steps_per_epoch)
        if b == 0:
            self._order = self.batch_order(epoch + 1)
        size = self.config.batch_size
        idx = self._order[b * size:(b + 1) * size]
        loss, acc = self.step(idx)
        self.epoch_loss += loss * len(idx)
        self.epoch_images += len(idx)
        self.emit({"type": "batch", "epoch": epoch + 1, "batch": b + 1, "batches": self.steps_per_epoch,
                   "step": self.step_count, "total_steps": self.total_steps, "loss": loss,
                   "accuracy": acc, "size": len(idx),
                   "learning_rate": self.learning_rate})
        if b + 1 == self.steps_per_epoch:
            self.end_epoch(epoch + 1)
        return True

    def end_epoch(self, epoch: int) -> None:
        """Validate; note the epoch of lowest validation loss (its model too, with keep_best), and
        whether the model overfits since then; stop when `patience` epochs passed without a new low."""
        val_loss, val_acc = self.evaluate(self.val)
        train_loss = self.epoch_loss / max(self.epoch_images, 1)
        self.epoch_loss = self.epoch_images = 0.0
        self.losses.append((train_loss, val_loss))
        best = best_epoch([v for _, v in self.losses])
        if best == epoch and self.config.keep_best:
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if self.config.patience and epoch - best >= self.config.patience:
            self.stopped_early = epoch
        self.emit({"type": "epoch", "epoch": epoch, "val_loss": val_loss, "val_accuracy": val_acc,
                   "train_loss": train_loss, "best_epoch": best, "best_val_loss": self.losses[best - 1][1],
                   "overfitting_from": overfitting_from(self.losses), "stopped_early": self.stopped_early is not None,
                   "seconds": time.perf_counter() - self.started})

    def use_best(self) -> int | None:
        """With keep_best, go back to the model of the epoch of lowest validation loss; the epoch
        whose model the trainer holds now (None before the first epoch ends)."""
        if not self.losses:
            return None
        if self.config.keep_best and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
            self.kept_epoch = best_epoch([v for _, v in self.losses])
        else:
            self.kept_epoch = len(self.losses)
        return self.kept_epoch

    @property
    def learning_rate(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def set_learning_rate(self, lr: float) -> None:
        """Use this rate from the next batch on (a schedule, if any, is switched off)."""
        self.scheduler = None
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def run(self) -> dict:
        """Train all epochs; returns a summary with the test accuracy."""
        start = time.perf_counter()
        while self.advance():
            pass
        self.use_best()
        test_loss, test_acc = self.evaluate(self.data.test)
        summary = {"type": "done", "test_loss": test_loss, "test_accuracy": test_acc,
                   "seconds": time.perf_counter() - start, "steps": self.step_count, "kept_epoch": self.kept_epoch}
        self.emit(summary)
        return summary


def best_epoch(val_losses: list[float]) -> int:
    """The epoch (1-based) of the lowest validation loss; the first of equals."""
    return min(range(len(val_losses)), key=lambda i: (val_losses[i], i)) + 1


def overfitting_from(losses: list[tuple[float, float]]) -> int | None:
    """The epoch the model overfits from, or None: the epoch of lowest validation loss, when since
    then the validation loss has risen while the training loss fell (the last epoch against it)."""
    if len(losses) < 2:
        return None
    best = best_epoch([v for _, v in losses])
    (train_best, val_best), (train_now, val_now) = losses[best - 1], losses[-1]
    return best if best < len(losses) and val_now > val_best and train_now < train_best else None


def with_dropout(architecture: str | list, rate: float) -> tuple[str | list, str | None]:
    """The architecture with a Dropout layer at `rate` before its output layer, as a layer list,
    and the preset's initialisation (None: the architecture as it is, built as usual)."""
    if not rate:
        return architecture, None
    preset = models.PRESETS[architecture] if isinstance(architecture, str) else None
    layers = list(preset.layers if preset else architecture)
    return layers + [{"type": "dropout", "rate": float(rate)}], preset.init if preset else "default"


@torch.inference_mode()
def predict_classes(model: torch.nn.Module, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Class indices (N,) for uint8 images, in eval mode."""
    model.eval()
    return np.concatenate([model(as_input(images[i:i + batch])).argmax(1).numpy() for i in range(0, len(images), batch)]) \
        if len(images) else np.zeros(0, dtype=int)


def input_shape(images: np.ndarray) -> tuple[int, int, int]:
    """(C, H, W) of a stack of images (N, H, W) or (N, C, H, W)."""
    return (1, *images.shape[1:]) if images.ndim == 3 else tuple(images.shape[1:])


def as_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 images (N, H, W) or (N, C, H, W) as the floats 0..1 (N, C, H, W) a network reads."""
    x = torch.as_tensor(images)
    return (x.unsqueeze(1) if x.ndim == 3 else x).float().div_(255)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    return choices.make_optimizer(cfg.optimizer, model.parameters(), cfg.learning_rate, cfg.momentum, cfg.weight_decay)


# --- command line -------------------------------------------------------------------------

MALLOC_TUNING = {  # glibc returns memory to the OS after every step otherwise (PERFORMANCE.md)
    "MALLOC_MMAP_THRESHOLD_": "1000000000",
    "MALLOC_TRIM_THRESHOLD_": "1000000000",
    "MALLOC_TOP_PAD_": "1000000000",
}


def _print_event(event: Event) -> None:
    if event["type"] == "batch" and event["batch"] % 100 == 0:
        print(f"epoch {event['epoch']} batch {event['batch']}/{event['batches']} "
              f"loss {event['loss']:.4f} lr {event['learning_rate']:.4f}", flush=True)
    elif event["type"] == "epoch":
        print(f"epoch {event['epoch']} val_accuracy {event['val_accuracy']:.4f} "
              f"val_loss {event['val_loss']:.4f} at {event['seconds']:.1f}s", flush=True)
    elif event["type"] == "done":
        print(f"test_accuracy {event['test_accuracy']:.4f} in {event['seconds']:.1f}s", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(k not in os.environ for k in MALLOC_TUNING):  # re-exec once with malloc tuned
        os.execve(sys.executable, [sys.executable, "-m", "engine.train", *argv], {**os.environ, **MALLOC_TUNING})
    p = argparse.ArgumentParser(description="Train a NeuronLab model and save it with a model card.")
    defaults = TrainConfig()
    p.add_argument("--architecture", default=defaults.architecture, choices=sorted(models.ARCHITECTURES))
    p.add_argument("--dataset", default=defaults.dataset, choices=sorted(datasets.SPECS))
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--optimizer", default=defaults.optimizer, choices=choices.OPTIMIZERS)
    p.add_argument("--lr", type=float, default=defaults.learning_rate)
    p.add_argument("--momentum", type=float, default=defaults.momentum)
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    p.add_argument("--dropout", type=float, default=defaults.dropout, help="a Dropout layer before the output")
    p.add_argument("--keep-best", action="store_true", help="save the epoch of lowest validation loss")
    p.add_argument("--patience", type=int, help="stop after this many epochs without a lower validation loss")
    p.add_argument("--schedule", default=defaults.schedule, choices=["onecycle", "constant"])
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--heavy-strokes", type=float, default=defaults.heavy_strokes,
                   help="share of training digits thickened as by a marker (measured: docs/benchmarks.md, Thick markers)")
    p.add_argument("--no-bf16", action="store_true", help="no bfloat16 autocast even on a CPU with native bf16")
    p.add_argument("--train-size", type=int)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--data-dir", type=Path, default=Path("data"))
    p.add_argument("--out", type=Path, default=Path("models"))
    p.add_argument("--id", required=True, help="model id, e.g. digits")
    p.add_argument("--name", help="display name")
    p.add_argument("--task", help="digits or fashion (default: from the dataset)")
    p.add_argument("--preprocess", help="digit or object (default: from the dataset)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(architecture=args.architecture, dataset=args.dataset, epochs=args.epochs,
                      batch_size=args.batch_size, optimizer=args.optimizer, learning_rate=args.lr,
                      momentum=args.momentum, weight_decay=args.weight_decay, schedule=args.schedule,
                      dropout=args.dropout, keep_best=args.keep_best, patience=args.patience,
                      augment=not args.no_augment, heavy_strokes=args.heavy_strokes, train_size=args.train_size, seed=args.seed,
                      bf16=native_bf16() and not args.no_bf16)
    try:
        data = datasets.load(cfg.dataset, args.data_dir, val_size=cfg.val_size)
    except datasets.DatasetUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    trainer = Trainer(cfg, data, on_event=_print_event)
    summary = trainer.run()
    card = store.new_card(
        args.id, args.name or args.id, trainer.architecture, cfg.dataset, data.labels, trainer.model,
        summary["test_accuracy"], task=args.task, preprocess=args.preprocess,
        training={**asdict(cfg), "train_images": len(trainer.train_y), "steps": summary["steps"],
                  "seconds": round(summary["seconds"], 1), "threads": args.threads,
                  "torch": torch.__version__, "test_images": len(data.test),
                  "val_accuracy": [round(e["val_accuracy"], 4) for e in trainer.history if e["type"] == "epoch"],
                  "command": "python -m engine.train " + shlex.join(argv)},
    )
    print("saved", store.save(args.out, card, trainer.model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
