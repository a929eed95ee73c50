"""Overfitting and what fights it (lessons 003 and 004): the epoch of lowest validation loss, the
"overfitting from here" mark, keep-the-best-epoch with patience, L2 weight decay and dropout; and the
lesson's project (000) evaluated by k-fold cross-validation."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.training import kfold
from engine.training.train import TrainConfig, Trainer, best_epoch, overfitting_from, with_dropout
from engine.training.worker import WITHOUT, JobSpec

# The lab's ready comparison: a small-data run that overfits within a few seconds
SMALL = {"architecture": "mlp_512_128", "train_size": 500, "batch_size": 32, "optimizer": "momentum",
         "learning_rate": 0.1, "schedule": "constant", "augment": False, "bf16": False, "weight_decay": 0.0}


def config(**kw) -> TrainConfig:
    return TrainConfig(**{**SMALL, **kw})


# --- the marks on the curves, by hand -------------------------------------------------------

def test_the_lowest_validation_loss_and_where_overfitting_starts_by_hand():
    val = [0.9, 0.5, 0.4, 0.45, 0.6]
    train = [1.0, 0.6, 0.4, 0.3, 0.2]
    assert best_epoch(val) == 3
    assert overfitting_from(list(zip(train, val))) == 3  # validation rises (0.6 > 0.4), training falls (0.2 < 0.4)
    assert overfitting_from(list(zip(train[:3], val[:3]))) is None  # still the lowest: no overfitting
    # validation rises but training rises too: that is not overfitting (a bad step, a too-large rate)
    assert overfitting_from([(1.0, 0.9), (0.5, 0.4), (0.7, 0.6)]) is None
    assert best_epoch([0.3, 0.2, 0.2]) == 2  # the first of equals
    assert overfitting_from([(1.0, 0.5)]) is None


def test_a_small_data_run_is_marked_where_it_starts_to_overfit(mnist):
    events = []
    trainer = Trainer(config(epochs=12), mnist, on_event=events.append)
    trainer.run()
    epochs = [e for e in events if e["type"] == "epoch"]
    last = epochs[-1]
    val = [e["val_loss"] for e in epochs]
    assert last["best_epoch"] == int(np.argmin(val)) + 1 < 12
    assert last["best_val_loss"] == min(val)
    assert last["overfitting_from"] == last["best_epoch"]  # later the validation loss rose, the training loss fell
    assert last["val_loss"] > last["best_val_loss"] and last["train_loss"] < epochs[last["best_epoch"] - 1]["train_loss"]
    # the epoch's training loss is the mean over its images of each batch's loss
    batches = [e for e in events if e["type"] == "batch" and e["epoch"] == 1]
    mean = sum(b["loss"] * b["size"] for b in batches) / sum(b["size"] for b in batches)
    assert epochs[0]["train_loss"] == pytest.approx(mean)


# --- keep the best epoch (early stopping with patience) -------------------------------------------

def test_keep_best_ends_with_the_model_of_the_lowest_validation_loss(mnist):
    states = {}

    def remember(event):
        if event["type"] == "epoch":
            states[event["epoch"]] = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer = Trainer(config(epochs=10, keep_best=True), mnist, on_event=remember)
    summary = trainer.run()
    best = best_epoch([v for _, v in trainer.losses])
    assert summary["kept_epoch"] == best < 10
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, states[best][name]), name
    assert trainer.evaluate(trainer.val)[0] == pytest.approx(min(v for _, v in trainer.losses), rel=1e-5)


def test_patience_stops_that_many_epochs_after_the_lowest_validation_loss(mnist):
    events = []
    trainer = Trainer(config(epochs=20, keep_best=True, patience=2), mnist, on_event=events.append)
    summary = trainer.run()
    epochs = [e for e in events if e["type"] == "epoch"]
    best = epochs[-1]["best_epoch"]
    assert len(epochs) == best + 2 == trainer.stopped_early < 20
    assert epochs[-1]["stopped_early"] and not any(e["stopped_early"] for e in epochs[:-1])
    assert summary["kept_epoch"] == best
    assert not trainer.advance()  # nothing more is trained


def test_without_keep_best_the_last_epoch_is_kept(mnist):
    trainer = Trainer(config(epochs=2), mnist)
    assert trainer.run()["kept_epoch"] == 2


# --- L2 weight decay and dropout ----------------------------------------------------------

def test_weight_decay_is_the_gradient_of_an_l2_penalty(mnist):
    """One plain SGD step with weight decay wd = one step on loss + wd/2 * (sum of squared weights)."""
    lr, wd = 0.1, 0.01
    trainer = Trainer(config(optimizer="sgd", learning_rate=lr, weight_decay=wd, train_size=64), mnist)
    twin = Trainer(config(optimizer="sgd", learning_rate=lr, train_size=64), mnist).model
    twin.load_state_dict(trainer.model.state_dict())
    x = torch.from_numpy(mnist.train.images[:32]).unsqueeze(1).float() / 255
    y = torch.from_numpy(mnist.train.labels[:32]).long()
    penalty = sum((p ** 2).sum() for p in twin.parameters())
    (F.cross_entropy(twin(x), y) + wd / 2 * penalty).backward()
    before = {k: v.clone() for k, v in trainer.model.named_parameters()}
    trainer.step(torch.arange(32))
    for name, p in trainer.model.named_parameters():
        grad = dict(twin.named_parameters())[name].grad
        assert torch.allclose(p, before[name] - lr * grad, atol=1e-6), name


def test_dropout_is_a_layer_before_the_output(mnist):
    trainer = Trainer(config(dropout=0.5, train_size=64), mnist)
    layers = list(trainer.model)
    assert isinstance(layers[-2], torch.nn.Dropout) and layers[-2].p == 0.5
    assert isinstance(layers[-1], torch.nn.Linear)
    assert trainer.architecture[-1] == {"type": "dropout", "rate": 0.5}
    assert with_dropout("mlp_16", 0.0) == ("mlp_16", None)
    assert with_dropout("mnist_recipe", 0.3)[1] == "he_uniform"  # the preset's own initialisation
    # the saved architecture builds the same network (a card's model loads back)
    from engine import models
    models.build(trainer.architecture).load_state_dict(trainer.model.state_dict())


def test_a_comparison_is_two_runs_the_same_but_for_what_fights_overfitting():
    spec = JobSpec(**{k: v for k, v in SMALL.items() if k not in ("learning_rate", "weight_decay")},
                   weight_decay=0.005, dropout=0.5,
                   keep_best=True, patience=3, compare=True, learning_rates=[0.1, 0.1])
    without, with_ = spec.config(0.1, 0), spec.config(0.1, 1)
    assert {k: getattr(without, k) for k in WITHOUT} == WITHOUT
    assert (with_.weight_decay, with_.dropout, with_.keep_best, with_.patience) == (0.005, 0.5, True, 3)
    same = lambda c: {k: v for k, v in vars(c).items() if k not in WITHOUT}
    assert same(without) == same(with_)
    assert [spec.run_label(i) for i in (0, 1)] == ["without", "with"]


# --- k-fold cross-validation: the lesson's project (000) -------------------------------------------

def test_sixty_thousand_images_in_five_folds_train_on_48000_and_test_on_12000():
    """Slide: evaluate_model(x_data, y_data, n_folds=5); "Epoch 1/10  1500/1500" at batch 32."""
    folds = [kfold.fold_indices(60000, 5, i, seed=1) for i in range(5)]
    assert all((len(train), len(test)) == (48000, 12000) for train, test in folds)
    held = np.concatenate([test for _, test in folds])
    assert np.array_equal(np.sort(held), np.arange(60000))  # each image held out exactly once
    for train, test in folds:
        assert not np.intersect1d(train, test).size and len(np.union1d(train, test)) == 60000
    assert kfold.batches_per_epoch(60000, 5, 32) == 1500 == 48000 // 32


def test_uneven_folds_differ_by_one_image():
    assert kfold.fold_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert kfold.batches_per_epoch(10, 3, 2) == 4  # the largest training part: 10 - 3 = 7 images
    with pytest.raises(ValueError):
        kfold.fold_bounds(10, 1)


def test_a_fold_trainer_trains_on_the_other_folds_of_the_60000(mnist):
    """MNIST's training and validation images together are the lesson's 60,000 (its test set, 10,000, apart)."""
    assert len(kfold.pool(mnist)) == 60000 and len(mnist.test) == 10000  # "Using 10000 testing data."
    trainer = Trainer(config(folds=5, fold=2, train_size=None, epochs=10), mnist)
    assert (len(trainer.train_y), len(trainer.val)) == (48000, 12000)
    assert trainer.steps_per_epoch == 1500  # "1500/1500"
    train, held = kfold.fold_splits(mnist, 5, 2, None, 0)
    assert np.array_equal(trainer.train_y.numpy(), train.labels) and np.array_equal(trainer.val.labels, held.labels)
    spec = JobSpec(folds=5, learning_rates=[0.01] * 5)
    assert [spec.config(0.01, i).fold for i in range(5)] == [0, 1, 2, 3, 4]
    assert spec.run_label(4) == "fold 5"


def test_fold_summary_is_the_mean_and_spread_by_hand():
    s = kfold.summary([0.98, 0.99, 0.97, 0.98, 0.98])
    assert s["mean"] == pytest.approx(0.98)
    assert s["std"] == pytest.approx(np.sqrt((0 + 0.0001 + 0.0001 + 0 + 0) / 5))


# --- the lab's ready comparison tells the lesson truthfully ------------------------------------------

READY = {"architecture": "mlp_512_128", "dataset": "mnist", "train_size": 500, "val_size": 1000, "optimizer": "momentum",
         "batch_size": 32, "epochs": 40, "weight_decay": 0.005, "dropout": 0.5, "keep_best": True,
         "augment": False, "bf16": False}  # static/js/train.js READY_COMPARISON (learning rate 0.1)


def test_the_ready_comparison_overfits_without_and_validates_better_with():
    """What holds on any CPU: the run without overfits (validation loss rises from its lowest while
    the training loss falls) and the run with them reaches a lower validation loss. (Which tests
    better is measured, not asserted: docs/benchmarks.md.)"""
    from app.settings import ROOT
    from engine import datasets
    data = datasets.load("mnist", ROOT / "data", val_size=READY["val_size"])
    spec = JobSpec(**READY, compare=True, learning_rates=[0.1, 0.1])
    runs = []
    for run in (0, 1):
        trainer = Trainer(spec.config(0.1, run), data)
        while trainer.advance():
            pass
        runs.append(trainer.losses)
    without, with_ = runs
    assert overfitting_from(without) is not None, without
    assert min(v for _, v in with_) < min(v for _, v in without)


# --- a k-fold job in the worker: folds one after the other, its own time limit -----------------------

def fold_job(tmp_path, stop_after_fold: int | None = None, **spec):
    import queue

    from app.settings import ROOT
    from engine.training.worker import JobRunner
    spec = JobSpec(**{"architecture": "mlp_16", "folds": 3, "train_size": 300, "epochs": 1, "batch_size": 50,
                      "learning_rates": [0.1] * 3, "val_size": 1000, **spec})
    commands, events = queue.Queue(), []

    def emit(event):
        events.append(event)
        if stop_after_fold is not None and event["type"] == "epoch" and event["run"] == stop_after_fold:
            commands.put({"action": "stop"})
    JobRunner("ef" * 16, spec, ROOT / "data", tmp_path, commands, emit, 600).run()
    return events


def test_the_folds_train_one_after_the_other_with_an_eta_for_them_all(tmp_path):
    events = fold_job(tmp_path)
    progress = [e for e in events if e["type"] == "progress"]
    assert [e["run"] for e in progress] == sorted(e["run"] for e in progress)  # fold 1's, then fold 2's, ...
    assert {e["run"] for e in progress} == {0, 1, 2}
    first = next(e for e in progress if e["eta"] is not None)
    assert first["run"] == 0 and first["eta"] > 0  # the time left counts the folds still to come
    assert events[0]["folds"] == 3
    done = events[-1]
    assert done["type"] == "done" and done["folds"]["n"] == 3 and done["folds"]["runs"] == [0, 1, 2]


def test_a_stopped_kfold_job_sums_up_the_folds_trained_to_the_end(tmp_path):
    done = fold_job(tmp_path, stop_after_fold=0)[-1]
    assert done["status"] == "stopped"
    assert [r["label"] for r in done["results"]] == ["fold 1"]  # the folds not begun are not saved
    assert done["folds"]["n"] == 1 and done["folds"]["of"] == 3 and done["folds"]["runs"] == [0]


def test_a_job_spec_brings_its_own_time_limit_to_the_worker(tmp_path):
    import queue

    from app.settings import ROOT
    from engine.training.worker import worker_main
    spec = {"architecture": "mlp_16", "folds": 2, "train_size": 200, "epochs": 50, "batch_size": 50,
            "learning_rates": [0.1, 0.1], "time_limit": 1e-6}
    events = queue.Queue()
    worker_main("0a" * 16, spec, str(ROOT / "data"), str(tmp_path), queue.Queue(), events,
                threads=torch.get_num_threads(), niceness=0, time_limit=3600)  # (this process keeps its priority)
    seen = []
    while not events.empty():
        seen.append(events.get_nowait())
    done = seen[-1]
    assert done["type"] == "done" and done["status"] == "stopped" and "time limit" in done["reason"]


def test_the_estimate_counts_every_folds_batches_and_evaluations():
    speed = {"step": 0.01, "image": 0.0001, "batch_size": 32, "threads": 1}
    seconds = kfold.estimate(speed, 60000, 5, 10, 32)
    # 5 folds x (10 epochs x (1,500 batches x 10 ms + 12,000 held-out images x 0.1 ms) + 10,000 test images x 0.1 ms)
    assert seconds == pytest.approx(kfold.START_SECONDS + 5 * (10 * (15 + 1.2) + 1.0))
    assert kfold.epochs_within(speed, 60000, 5, 32, seconds) == 10
    assert kfold.epochs_within(speed, 60000, 5, 32, seconds - 1) == 9
    assert kfold.epochs_within(speed, 60000, 5, 32, 10) == 0
    measured = kfold.measure_speed("mlp_16", 32)
    assert measured["step"] > 0 and measured["image"] > 0 and kfold.measure_speed("mlp_16", 32) is measured  # kept
