"""Time to 99.0% MNIST test accuracy: the product's trainer on the default digit architecture
versus the lesson's recipe in plain PyTorch (SGD 0.01, momentum 0.9, batch 32, up to 10 epochs;
if it never reaches 99.0% its time is the 10 epochs). Training time counts evaluation: both
measure the test accuracy every quarter epoch, and the clock runs throughout.

    .venv/bin/python bench/bench_training.py [--recipe-epochs 10] [--product-epochs 1] [--float32 | --bf16] [--quick]

Both run in this one process with the same threads and the same (tuned) malloc settings. The
product is timed as it trains: with bfloat16 autocast where the CPU computes bf16 natively
(engine.training.train.native_bf16, the trainer's default), else in float32; --float32 or --bf16
force one for comparison. --quick: 1,000 training and 500 test images, one epoch each.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.training.train import MALLOC_TUNING  # noqa: E402

if any(k not in os.environ for k in MALLOC_TUNING):  # the same tuning the training worker gets
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **MALLOC_TUNING})

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench.common import add_quick  # noqa: E402
from engine import datasets, models  # noqa: E402
from engine.training.train import TrainConfig, Trainer, native_bf16  # noqa: E402

TARGET = 0.99


def test_accuracy(model, data) -> float:
    model.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(data.test), 2000):
            x = torch.from_numpy(data.test.images[i:i + 2000]).unsqueeze(1).float() / 255
            correct += (model(x).argmax(1).numpy() == data.test.labels[i:i + 2000]).sum()
    return correct / len(data.test)


def recipe(data, epochs: int) -> tuple[float | None, float, float]:
    """The slides' recipe, written as a plain PyTorch loop. Returns (time to target or None,
    total time, best accuracy)."""
    torch.manual_seed(0)
    model = models.build("mnist_recipe")
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x_all = torch.from_numpy(data.train.images).unsqueeze(1).float() / 255
    y_all = torch.from_numpy(data.train.labels).long()
    n, bs = len(y_all), 32
    check_every = n // bs // 4
    start, best, reached = time.perf_counter(), 0.0, None
    for epoch in range(epochs):
        order = torch.randperm(n)
        for b in range(n // bs):
            idx = order[b * bs:(b + 1) * bs]
            model.train()
            loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if (b + 1) % check_every == 0:
                acc = test_accuracy(model, data)
                best = max(best, acc)
                print(f"  recipe  epoch {epoch + 1} batch {b + 1}: test {acc:.4f} at {time.perf_counter() - start:.1f}s", flush=True)
                if acc >= TARGET and reached is None:
                    return time.perf_counter() - start, time.perf_counter() - start, best
    return reached, time.perf_counter() - start, best


def product(data, epochs: int, lr: float, bf16: bool = False, batch: int = 128) -> tuple[float | None, float, float]:
    """The product's trainer with the default digit architecture and its fast settings."""
    cfg = TrainConfig(architecture="digit_cnn", epochs=epochs, batch_size=batch, optimizer="momentum",
                      learning_rate=lr, schedule="onecycle", augment=False, bf16=bf16, seed=0,
                      weight_decay=5e-4)
    trainer = Trainer(cfg, data)
    check_every = trainer.steps_per_epoch // 4
    start, best = time.perf_counter(), 0.0
    while trainer.advance():
        if trainer.step_count % check_every == 0 or trainer.step_count == trainer.total_steps:
            acc = test_accuracy(trainer.model, data)
            best = max(best, acc)
            print(f"  product step {trainer.step_count}/{trainer.total_steps}: test {acc:.4f} "
                  f"at {time.perf_counter() - start:.1f}s", flush=True)
            if acc >= TARGET:
                return time.perf_counter() - start, time.perf_counter() - start, best
    return None, time.perf_counter() - start, best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe-epochs", type=int, default=10)
    p.add_argument("--product-epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.1, help="the product's peak (OneCycle) learning rate")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--bf16", action="store_true", help="bfloat16 autocast even without native bf16 (slower there)")
    precision.add_argument("--float32", action="store_true", help="float32 even where the product would use bf16")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--skip-recipe", action="store_true", help="the product only (no ratio)")
    add_quick(p)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = datasets.load("mnist", ROOT / "data")  # 55,000 train / 5,000 validation / 10,000 test
    if args.quick:
        data = datasets.Dataset(data.name, data.labels, *(datasets.Split(s.images[:n], s.labels[:n])
                                                          for s, n in ((data.train, 1000), (data.val, 500), (data.test, 500))))
        args.product_epochs = args.recipe_epochs = 1
    native = native_bf16()
    bf16 = args.bf16 or (native and not args.float32)
    why = "forced" if args.bf16 or args.float32 else f"the product's choice: this CPU {'has' if native else 'lacks'} native bf16"
    print(f"product: digit_cnn (the default digit architecture), batch {args.batch}, OneCycle over "
          f"{args.product_epochs} epochs, peak {args.lr}, {'bf16 autocast' if bf16 else 'float32'} ({why})")
    p_reach, p_total, p_best = product(data, args.product_epochs, args.lr, bf16, args.batch)
    if args.skip_recipe:
        return print(f"product: {p_reach or float('nan'):.1f}s to 99.0%, best {p_best:.4f}, "
                     f"{'bf16 autocast' if bf16 else 'float32'}")
    print("recipe: mnist_recipe, SGD 0.01 momentum 0.9, batch 32")
    r_reach, r_total, r_best = recipe(data, args.recipe_epochs)
    r_time = r_reach if r_reach is not None else r_total
    print(f"\n{'trainer':10} {'time to 99.0%':>14} {'best test acc':>14}")
    print(f"{'product':10} {p_reach if p_reach else float('nan'):13.1f}s {p_best:14.4f}")
    print(f"{'recipe':10} {r_time:13.1f}s{'' if r_reach else '*'} {r_best:13.4f}")
    if p_reach:
        print(f"ratio product / recipe: {p_reach / r_time:.3f} (goal <= 0.1)")
    print(f"* never reached 99.0% in {args.recipe_epochs} epochs: its time is the full run" if not r_reach else "")
    print(f"threads {args.threads}, torch {torch.__version__}, product in {'bf16 autocast' if bf16 else 'float32'} ({why})")


if __name__ == "__main__":
    main()
