"""One training job, run inside its own process: builds a Trainer per learning rate (more than
one is a learning-rate race), obeys commands between mini-batches, reports events.

Commands (from the manager): {"action": "pause" | "resume" | "step" | "stop"} and
{"action": "lr", "value": float, "run": int | None}. Events (to the manager) are dicts with
"type": status, progress, epoch, samples, run_status, done.
"""
from __future__ import annotations

import ctypes
import math
import os
import queue
import re
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from engine import datasets, models, scores
from engine.imageio import diverging, encode
from engine.stores import files, store
from engine.training import kfold
from engine.training.failures import failure_reason
from engine.training.train import Diverged, TrainConfig, Trainer, as_input, best_epoch, predict_classes

PROGRESS_EVERY = 0.1   # seconds between progress events per run
PROGRESS_POINTS = 50   # and at least this many a run, however fast it trains (a short run's curve
                       # is more than the one or two means of its whole length)
SAMPLES_EVERY = 1.5    # seconds between streams of test images with guesses
MISTAKES_PER_CELL = 16
SNAPSHOTS = 60         # at most this many filter snapshots a run (four an epoch, fewer on long runs)


@dataclass
class JobSpec(TrainConfig):
    """A job of the live training lab: a TrainConfig (its lesson-sized defaults below) trained once
    per learning rate (more than one is a race), with what the server needs to know about it."""
    architecture: str | list = "mnist_recipe"
    epochs: int = 1
    batch_size: int = 64
    weight_decay: float = 0.0
    schedule: str = "constant"
    augment: bool = False
    train_size: int | None = 5000
    bf16: bool = False             # the lab's numbers must match what a page recomputes
    learning_rates: list[float] = field(default_factory=lambda: [0.01])
    name: str | None = None
    start_paused: bool = False
    project: str | None = None     # a project's own classes: data_file holds its photos
    data_file: str | None = None   # a .npz written by datasets.save_arrays
    owner: str | None = None       # the owner's token hash: models the job saves are theirs
    compare: bool = False          # two runs, the same but for what fights overfitting: run 0 without
                                   # weight decay, dropout and keep-best, run 1 with this spec's
    time_limit: float | None = None  # seconds this job may train, when the server allows it more than
                                     # its jobs' usual limit (a k-fold job: settings.kfold_time_limit)

    def config(self, lr: float, run: int = 0) -> TrainConfig:
        """The trainer's config for run `run`, at learning rate `lr`: in a comparison run 0 goes
        without what fights overfitting; in a k-fold job run i holds fold i out."""
        config = {f.name: getattr(self, f.name) for f in fields(TrainConfig)} | {"learning_rate": lr}
        if self.compare and run == 0:
            config |= WITHOUT
        if self.folds:
            config["fold"] = run
        return TrainConfig(**config)

    def run_label(self, run: int) -> str | None:
        """How pages and names tell this run from the job's others (None: a job of one run)."""
        if self.compare:
            return ("without", "with")[run]
        if self.folds:
            return f"fold {run + 1}"
        return f"lr {self.learning_rates[run]:g}" if len(self.learning_rates) > 1 else None

    def public(self) -> dict:
        """What clients may see (no server paths, no owner; each run's rate is in learning_rates)."""
        return {k: v for k, v in asdict(self).items() if k not in ("data_file", "owner", "learning_rate")}


WITHOUT = {"weight_decay": 0.0, "dropout": 0.0, "keep_best": False, "patience": None}  # a comparison's run 0

DATA_NAMES = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}


def default_name(spec: JobSpec, accuracy: float, lr: float | None = None) -> tuple[str, dict]:
    """A name that tells one trained model from the next in a list: its network, its data, its
    test accuracy and when it was trained, e.g. "Digit CNN · MNIST · 98.7% · 23 Nov 14:05"
    (plus " (lr 0.01)" in a race); and its parts, from which pages say it in their own language."""
    preset = models.PRESETS.get(spec.architecture) if isinstance(spec.architecture, str) else None
    n = 0 if preset else len(spec.architecture)
    network = preset.title.split(" (")[0] if preset else f"Custom network ({n} layer{'' if n == 1 else 's'})"
    data = "photos" if spec.project else DATA_NAMES.get(spec.dataset, spec.dataset)
    now = time.time()
    name = f"{network} · {data} · {accuracy * 100:.1f}% · {time.strftime('%d %b %H:%M', time.localtime(now))}"
    parts = {"network": network if preset else None, "layers": n, "data": data, "accuracy": round(accuracy, 4),
             "trained": round(now), "lr": lr}
    return name + (f" (lr {lr:g})" if lr is not None else ""), parts


def encode_all(images: np.ndarray) -> list[dict]:
    """Each uint8 image (H, W) or (C, H, W) in the one image form (engine.imageio.encode): how job
    events and records carry test images."""
    return [encode(im) for im in images]


class Run:
    """One trainer plus the running means it reports between progress events. `clock()`: the job's
    (seconds trained, seconds left or None) that each progress event carries."""

    def __init__(self, index: int, trainer: Trainer, clock=None):
        self.index, self.trainer = index, trainer
        self.clock = clock or (lambda: (0.0, None))
        self.status = "running"  # running | finished | diverged
        self.loss_sum = self.acc_sum = 0.0
        self.count = self.images = 0
        self.last: dict = {}
        self.sent = 0.0
        self.history: list[dict] = []   # the first conv layer's filters (and one image's maps) over time
        self.next_snapshot = 0

    def on_event(self, event: dict, emit) -> None:
        if event["type"] == "batch":
            size = event.get("size", 1)  # means are per image: a short last batch weighs less
            self.loss_sum += event["loss"] * size
            self.acc_sum += event["accuracy"] * size
            self.count += 1
            self.images += size
            self.last = event
        elif event["type"] == "epoch":
            self.flush(emit)
            emit({**event, "run": self.index})

    def trained(self) -> bool:
        """Whether the run trained to its end: every epoch, or until its patience ran out."""
        t = self.trainer
        return self.status == "finished" or t.step_count >= t.total_steps or t.stopped_early is not None

    def flush(self, emit) -> None:
        if not self.count:
            return
        e = self.last
        elapsed, eta = self.clock()
        emit({"type": "progress", "run": self.index, "epoch": e["epoch"], "batch": e["batch"],
              "batches": e["batches"], "step": e["step"], "total_steps": e["total_steps"],
              "loss": self.loss_sum / self.images, "accuracy": self.acc_sum / self.images,
              "images": self.images,  # how many training images the means are over (pages smooth by images)
              "learning_rate": e["learning_rate"], "elapsed": elapsed, "eta": eta})
        self.loss_sum = self.acc_sum = 0.0
        self.count = self.images = 0
        self.sent = time.monotonic()


def worker_main(job_id: str, spec: dict, data_dir: str, models_dir: str, commands, events,
                threads: int = 1, niceness: int = 10, time_limit: float = 1800.0, server: int | None = None,
                parent_death: int | None = None) -> None:
    """Process entry point. `server`: the pid of the process that started this one (given by it:
    os.getppid() asked here would say init if the server was killed while this one started).
    `parent_death`: the signal this process gets the moment its server dies (Linux), whatever it
    is doing then: between mini-batches the server's pid is checked too, but a job that ends as
    its server is killed would otherwise wait forever to hand its last events to nobody."""
    emit = lambda event: events.put({"job": job_id, **event})
    server = server or os.getppid()
    if parent_death:
        die_with_parent(parent_death)
    if os.getppid() != server:
        return  # the server is already gone (perhaps before the signal above was asked for)
    try:
        lower_priority(niceness, threads)
        JobRunner(job_id, JobSpec(**spec), Path(data_dir), Path(models_dir), commands, emit,
                  spec.get("time_limit") or time_limit, server).run()
    except Exception as exc:  # the job fails; the server goes on
        emit({"type": "done", "status": "failed", "error": failure_reason(exc, spec.get("project"))})


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(sig: int) -> bool:
    """Ask Linux to send this process `sig` when its parent ends (strictly: when the thread that
    started it ends). Call it first thing in the child, then compare os.getppid() with the parent's
    pid: a parent that died before this call sends nothing. False where it is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def lower_priority(niceness: int, threads: int) -> None:
    """This process trains behind the server's live inference (niceness 0: at normal priority),
    with `threads` torch threads."""
    if niceness:
        os.nice(niceness)
        _idle_policy()
    torch.set_num_threads(threads)


def _idle_policy() -> None:
    """Linux's SCHED_IDLE for this process's threads and every thread they start (torch's among them): the job
    trains on whatever CPU the server leaves, and a frame the reader wakes up for takes a core at
    once (a niced job still holds it until the scheduler's next turn: the classroom bench's p99
    while training). Where the policy is missing, the nice value alone."""
    try:
        threads = [int(t) for t in os.listdir("/proc/self/task")]  # those started already, too
    except OSError:
        threads = [0]
    for thread in threads:
        try:
            os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))
        except (AttributeError, OSError):
            pass


class JobRunner:
    def __init__(self, job_id, spec: JobSpec, data_dir: Path, models_dir: Path, commands, emit, time_limit,
                 server: int | None = None):
        self.job_id, self.spec, self.models_dir = job_id, spec, models_dir
        self.commands, self.emit, self.deadline = commands, emit, time.monotonic() + time_limit
        self.data = (datasets.load_arrays(Path(spec.data_file)) if spec.data_file
                     else datasets.load(spec.dataset, data_dir, val_size=spec.val_size))
        self.runs = []
        for i, lr in enumerate(spec.learning_rates):
            run = Run(i, None, self.clock)
            run.trainer = Trainer(spec.config(lr, i), self.data, on_event=lambda e, r=run: r.on_event(e, self.emit))
            self.runs.append(run)
        self.paused, self.step_once, self.active_time = spec.start_paused, False, 0.0
        self.parent = server or os.getppid()
        self.rng = np.random.default_rng(spec.seed)
        self.samples_at = 0.0
        self.shown: np.ndarray | None = None  # the test images the page shows now
        self.finishing = False

    def clock(self) -> tuple[float, float | None]:
        """(seconds trained so far, seconds left at that pace or None): over all the job's runs, as
        the folds of a k-fold job train one after the other."""
        done = sum(r.trainer.step_count for r in self.runs)
        left = sum(r.trainer.total_steps - r.trainer.step_count for r in self.runs if r.status == "running")
        return self.active_time, (self.active_time / done * left if done else None)

    def training_now(self) -> list[Run]:
        """The runs the next turn steps: every run of a race or a comparison side by side; the folds
        of a k-fold job one after the other, as the lesson's loop trains them ("fold 2/5")."""
        running = [r for r in self.runs if r.status == "running"]
        return running[:1] if self.spec.folds else running

    def run(self) -> None:
        t0 = self.runs[0].trainer
        self.emit({"type": "status", "status": "paused" if self.paused else "running", "folds": self.spec.folds,
                   "total_steps": t0.total_steps, "batches": t0.steps_per_epoch, "runs": len(self.runs),
                   "learning_rates": self.spec.learning_rates, "parameters": models.count_parameters(t0.model)})
        while any(r.status == "running" for r in self.runs):
            if os.getppid() != self.parent:  # the server is gone: nobody will ever resume us
                return
            if not self.obey(self.next_command()):
                return self.finish("stopped")
            if time.monotonic() > self.deadline:
                return self.finish("stopped", "the time limit for one job was reached")
            if self.paused and not self.step_once:
                continue
            started = time.monotonic()
            for run in self.training_now():
                self.advance(run)
            self.active_time += time.monotonic() - started
            self.report(force=self.step_once, samples=self.step_once)  # after a STEP: that model's answers
            if self.step_once:
                self.step_once, self.paused = False, True
                self.emit({"type": "status", "status": "paused"})
        self.report(force=True)
        self.finish("done" if any(r.status == "finished" for r in self.runs) else "diverged")

    def next_command(self) -> dict | None:
        try:
            return self.commands.get(timeout=0.2) if self.paused and not self.step_once else self.commands.get_nowait()
        except queue.Empty:
            return None

    def obey(self, command: dict | None) -> bool:
        """Apply a command; False means stop."""
        if command is None:
            return True
        action = command["action"]
        if action == "stop":
            return False
        if action in ("pause", "resume"):
            self.report(force=True, samples=action == "pause")  # the view shows exactly where it paused
            self.paused = action == "pause"
            self.emit({"type": "status", "status": "paused" if self.paused else "running"})
        elif action == "step":
            self.step_once = True
        elif action == "lr":
            targets = self.runs if command.get("run") is None else [self.runs[command["run"]]]
            for run in targets:
                run.trainer.set_learning_rate(command["value"])
            self.emit({"type": "learning_rate", "value": command["value"], "run": command.get("run")})
        return True

    @torch.no_grad()
    def snapshot(self, run: Run) -> None:
        """Keep the first conv layer's filters, and its feature maps of one fixed test image, at
        the start and every quarter epoch (the filters page plays them back)."""
        trainer = run.trainer
        if trainer.step_count < run.next_snapshot:
            return
        every = max(1, trainer.steps_per_epoch // 4, math.ceil(trainer.total_steps / SNAPSHOTS))
        run.next_snapshot = trainer.step_count + every
        model = trainer.model
        conv = next((m for m in model if isinstance(m, torch.nn.Conv2d)), None)
        if conv is None:
            return
        x = as_input(self.data.test.images[:1])
        for m in model:
            x = m.eval()(x)
            if m is conv:
                break
        model.train()
        maps = x[0].float()                                  # (C, H, W)
        run.history.append({
            "step": trainer.step_count, "epoch": round(trainer.step_count / trainer.steps_per_epoch, 3),
            "weights": np.round(conv.weight.detach().float().numpy(), 4).tolist(),
            "maps": diverging(maps.numpy())})

    def advance(self, run: Run) -> None:
        if run.status != "running":
            return
        self.snapshot(run)
        try:
            if not run.trainer.advance():
                run.status = "finished"
        except Diverged as exc:
            run.status = "diverged"
            self.emit({"type": "run_status", "run": run.index, "status": "diverged", "message": str(exc)})

    def report(self, force: bool = False, samples: bool = False) -> None:
        """Progress of each run (every PROGRESS_EVERY s, or now when `force`) and test images with
        guesses (new ones every SAMPLES_EVERY s; with `samples`, the ones shown, answered again by
        the model as it is now: at a pause and after a step the page never shows older answers)."""
        now = time.monotonic()
        for run in self.runs:
            every = max(1, run.trainer.total_steps // PROGRESS_POINTS)
            if force or now - run.sent >= PROGRESS_EVERY or run.count >= every:
                run.flush(self.emit)
        if samples:
            self.samples_at = now
            self.emit_samples(self.live_run(), again=True)
        elif now - self.samples_at >= SAMPLES_EVERY:
            self.samples_at = now
            self.emit_samples(self.live_run())

    def live_run(self) -> Run:
        """The run whose guesses the page shows: the first that has not diverged (a k-fold job's:
        the fold training now)."""
        if self.spec.folds:
            return next(iter(self.training_now()), self.runs[-1])
        return next((r for r in self.runs if r.status != "diverged"), self.runs[0])

    @torch.inference_mode()
    def emit_samples(self, run: Run, n: int = 8, again: bool = False) -> None:
        """`n` test images with `run`'s guesses now: new ones, or `again` the ones shown last."""
        if not (again and self.shown is not None):
            self.shown = self.rng.choice(len(self.data.test), min(n, len(self.data.test)), replace=False)
        idx = self.shown
        model = run.trainer.model
        model.eval()
        guesses = model(as_input(self.data.test.images[idx])).argmax(1).tolist()
        model.train()
        self.emit({"type": "samples", "images": encode_all(self.data.test.images[idx]), "indices": idx.tolist(),
                   "run": run.index, "step": run.trainer.step_count, "final": self.finishing,
                   "labels": self.data.test.labels[idx].tolist(), "guesses": guesses})

    def finish(self, status: str, reason: str | None = None) -> None:
        # a k-fold job stopped early: the folds not yet begun are neither saved nor summed up, and
        # the summary is over the folds trained to the end
        results = [self.evaluate(run) for run in self.runs
                   if run.status != "diverged" and not (self.spec.folds and run.trainer.step_count == 0)]
        whole = [r for r in results if self.runs[r["run"]].trained()]
        folds = ({**kfold.summary([r["val_accuracy"] for r in whole]), "runs": [r["run"] for r in whole],
                  "of": len(self.runs)} if self.spec.folds and whole else None)
        self.finishing = True
        if results:  # the test images shown, answered by the saved model (the best of a race)
            best = max(results, key=lambda r: r["test_accuracy"])
            self.emit_samples(self.runs[best["run"]], again=True)
        self.emit({"type": "done", "status": status, "reason": reason, "results": results, "folds": folds,
                   "runs_diverged": [r.index for r in self.runs if r.status == "diverged"]})

    @torch.inference_mode()
    def evaluate(self, run: Run) -> dict:
        """Test accuracy, confusion matrix and examples of mistakes; the model is saved."""
        trainer, test = run.trainer, self.data.test
        kept = trainer.use_best()  # with keep_best: the model of the epoch of lowest validation loss
        best = trainer.losses and best_epoch([v for _, v in trainer.losses])
        val_loss, val_accuracy = trainer.evaluate(trainer.val)
        preds = predict_classes(trainer.model, test.images)
        scored = scores.report(test.labels, preds, len(self.data.labels), MISTAKES_PER_CELL)
        mistakes = {cell: {"indices": where, "images": encode_all(test.images[where])} for cell, where in scored["mistakes"].items()}
        accuracy, confusion, per_class = scored["accuracy"], scored["confusion"], scored["per_class"]
        model_id, name, made_name = self.save(run, accuracy)
        return {"run": run.index, "learning_rate": trainer.learning_rate, "test_accuracy": accuracy, "name": name,
                "made_name": made_name,
                "steps": trainer.step_count, "confusion": confusion, "per_class": per_class,
                "mistakes": mistakes, "model_id": model_id, "seconds": round(self.active_time, 1),
                "val_accuracy": val_accuracy, "val_loss": val_loss, "epochs_trained": len(trainer.losses),
                "kept_epoch": kept, "best_epoch": best or None, "stopped_early": trainer.stopped_early,
                "label": self.spec.run_label(run.index)}

    def save(self, run: Run, accuracy: float) -> tuple[str, str, dict | None]:
        """Save the run's model with its card: (its id, its name, the parts of a name made here)."""
        spec, trainer = self.spec, run.trainer
        base = re.sub(r"[^a-z0-9]+", "-", (spec.name or "trained").lower()).strip("-")[:40] or "trained"
        base = base[:24].strip("-") or "trained"
        model_id = f"{base}-{self.job_id}" + (f"-{run.index + 1}" if len(self.runs) > 1 else "")  # 128 random bits
        race = len(self.runs) > 1 and not (spec.compare or spec.folds)
        lr = trainer.config.learning_rate if race else None
        label = "" if race or len(self.runs) == 1 else f" ({spec.run_label(run.index)})"
        name, made = (spec.name + (f" (lr {lr:g})" if lr is not None else "") + label, None) if spec.name \
            else default_name(spec, accuracy, lr)
        if made is not None and label:
            name, made = name + label, {**made, "run": spec.run_label(run.index)}
        card = store.new_card(
            model_id, name,
            trainer.architecture, f"project:{spec.project}" if spec.project else spec.dataset, self.data.labels,
            trainer.model, accuracy, owner=spec.owner, input_shape=trainer.input_shape,
            training={**{k: v for k, v in trainer.config.__dict__.items() if k != "architecture"},
                      "steps": trainer.step_count, "seconds": round(self.active_time, 1),
                      "final_learning_rate": trainer.learning_rate, "job": self.job_id,
                      "command": f"POST /api/projects/{spec.project}/train" if spec.project
                      else "POST /api/train (the live training lab)"}, made_name=made)
        store.save(self.models_dir, card, trainer.model)
        self.snapshot(run)  # and the filters at the end
        if run.history:
            files.write_json(self.models_dir / f"{model_id}.history.json",
                             {"snapshots": run.history, "image": encode(self.data.test.images[0])})
        return model_id, card.name, card.made_name
